//! `regression`: few-shot online regression of a function drawn from a Gaussian
//! process, the kind of task meta-learners are tried on (Finn et al. 2017, "Model-
//! agnostic meta-learning for fast adaptation of deep networks", ICML; the GP-drawn
//! functions of Garnelo et al. 2018, "Conditional neural processes", ICML), in spikes.
//!
//! Per episode, a function `f` drawn from a Gaussian process with a squared-exponential
//! (RBF) kernel `k(a, b) = exp(-(a - b)² / (2 length²))` (length scale `length`, 0.3;
//! variance 1; mean 0) on `x ∈ [-1, 1]`. The episode shows `examples` (10) pairs
//! `(x, f(x))`, `x` uniform in `[-1, 1]`, one after the other; then asks `queries` (10)
//! new points (uniform too): the network answers `f(x)` with its readout (one value),
//! averaged over the response window. No reward is given.
//!
//! Coding: `x` is population-coded on `xs` (20) channels with Gaussian tuning curves,
//! their centres evenly spaced over `[-1, 1]` and their width (standard deviation) the
//! spacing of the centres: channel `j` fires with probability `high exp(-(x - c_j)² /
//! (2 w²))` per step. `f(x)` is population-coded the same way on `ys` (20) further
//! channels, the centres spanning `[-span, span]` (a value beyond is coded as the end
//! it is beyond). Then a go population of `size` channels fires at `high` in the
//! response windows. The `reward` signal is always 0.
//!
//! Layout, one window (`window` steps, 20 ms) each: `examples` example windows (`x` and
//! `f(x)`), then per query a query window (`x` alone) and a response window (the go
//! population alone).
//!
//! Loss: the squared error of the response window's mean readout against `f(x)`,
//! averaged over the queries (its gradient is spread evenly over the window's steps).
//! Metric: the mean squared error over the queries divided by the variance of `f` at
//! the query points (at least 0.05, so that a nearly flat function cannot blow it up):
//! **lower is better**; 0 is perfect, answering the queries' mean value scores 1. The
//! network needs an input of `xs + ys + size` channels (44) and a readout of 1 value.
//! Default episode: 30 windows, 600 steps.
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `examples` | 10 | `(x, f(x))` examples shown per episode |
//! | `queries` | 10 | points asked per episode |
//! | `length` | 0.3 | the kernel's length scale |
//! | `xs` | 20 | channels coding `x`, at least 2 |
//! | `ys` | 20 | channels coding `f(x)`, at least 2 |
//! | `span` | 3 | the `f(x)` code's centres span `[-span, span]` |
//! | `window` | 20 | steps per window (example, query, response) |
//! | `size` | 4 | channels of the go population |
//! | `high` | 0.2 | spike probability per step at a tuning curve's peak (and of go) |
//! | `input` | the network's one `input` | the input that receives the spikes |
//! | `readout` | the network's first readout | it must have 1 value |

use super::env::{spike, Env, EnvTask, Options};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use search::train::TrainError;
use serde_json::{json, Value};
use std::sync::Arc;

/// The metric's floor on the variance it divides by.
const MIN_VARIANCE: f64 = 0.05;

/// The task's options.
#[derive(Clone, Debug, PartialEq)]
pub struct Regression {
    /// Examples per episode.
    pub examples: usize,
    /// Queries per episode.
    pub queries: usize,
    /// The kernel's length scale.
    pub length: f64,
    /// Channels coding `x`.
    pub xs: usize,
    /// Channels coding `f(x)`.
    pub ys: usize,
    /// The `f(x)` code spans `[-span, span]`.
    pub span: f64,
    /// Steps per window.
    pub window: usize,
    /// Channels of the go population.
    pub size: usize,
    /// Spike probability per step at a tuning curve's peak.
    pub high: f64,
}

impl Default for Regression {
    fn default() -> Self {
        Regression {
            examples: 10,
            queries: 10,
            length: 0.3,
            xs: 20,
            ys: 20,
            span: 3.0,
            window: 20,
            size: 4,
            high: 0.2,
        }
    }
}

/// Where a step is in its episode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Step `k` of example `e`.
    Example(usize, usize),
    /// Step `k` of query `q`'s `x`.
    Query(usize, usize),
    /// Step `k` of query `q`'s response window.
    Respond(usize, usize),
}

/// The Cholesky factor `L` (row-major, lower triangular, `L Lᵀ = a`) of the `n × n`
/// symmetric matrix `a` (row-major), or `None` if `a` is not positive definite.
pub fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s = a[i * n + j] - (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum::<f64>();
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    Some(l)
}

/// The Cholesky factor of `a + jitter I`, the jitter the least of 1e-8, 1e-7, ... that
/// makes it positive definite.
pub fn cholesky_jittered(a: &[f64], n: usize) -> Vec<f64> {
    let mut jitter = 1e-8;
    loop {
        let mut b = a.to_vec();
        for i in 0..n {
            b[i * n + i] += jitter;
        }
        if let Some(l) = cholesky(&b, n) {
            return l;
        }
        jitter *= 10.0;
    }
}

impl Regression {
    /// The task with `options` (a JSON object; unknown fields are errors).
    pub fn task(options: &Value) -> Result<EnvTask, TrainError> {
        let d = Regression::default();
        let mut o = Options::new("regression", options)?;
        let c = Regression {
            examples: o.count("examples", d.examples)?,
            queries: o.count("queries", d.queries)?,
            length: o.number("length", d.length, 1e-3, 1e3)?,
            xs: o.count("xs", d.xs)?,
            ys: o.count("ys", d.ys)?,
            span: o.number("span", d.span, 1e-3, 1e3)?,
            window: o.count("window", d.window)?,
            size: o.count("size", d.size)?,
            high: o.number("high", d.high, 0.0, 1.0)?,
        };
        let (input, readout) = (o.name("input")?, o.name("readout")?);
        if c.xs < 2 || c.ys < 2 {
            return Err(o.error("`xs` and `ys` must be at least 2".into()));
        }
        o.finish()?;
        let opts = json!({
            "examples": c.examples, "queries": c.queries, "length": c.length, "xs": c.xs,
            "ys": c.ys, "span": c.span, "window": c.window, "size": c.size, "high": c.high,
            "input": input, "readout": readout,
        });
        Ok(EnvTask {
            name: "regression".into(),
            options: opts,
            metric: "normalised-mse".into(),
            higher_is_better: false,
            steps: c.steps(),
            channels: Some(c.channels()),
            classes: Some(1),
            input,
            readout,
            make: Arc::new(move |seed, _, _| Box::new(c.episode(seed)) as Box<dyn Env>),
        })
    }

    /// Input channels the network needs.
    pub fn channels(&self) -> usize {
        self.xs + self.ys + self.size
    }

    /// Steps per episode.
    pub fn steps(&self) -> usize {
        (self.examples + 2 * self.queries) * self.window
    }

    /// Where step `t` is.
    pub fn phase(&self, t: usize) -> Phase {
        let w = self.window;
        if t < self.examples * w {
            return Phase::Example(t / w, t % w);
        }
        let u = t - self.examples * w;
        let (q, k) = (u / (2 * w), u % w);
        if (u / w) % 2 == 1 {
            Phase::Respond(q, k)
        } else {
            Phase::Query(q, k)
        }
    }

    /// The kernel.
    pub fn kernel(&self, a: f64, b: f64) -> f64 {
        (-(a - b).powi(2) / (2.0 * self.length * self.length)).exp()
    }

    /// The spike probability per step of channel `j` of a code of `n` channels whose
    /// centres span `[-r, r]`, coding `v`.
    pub fn tuning(&self, v: f64, j: usize, n: usize, r: f64) -> f64 {
        let w = 2.0 * r / (n - 1) as f64;
        let c = -r + w * j as f64;
        let v = v.clamp(-r, r);
        self.high * (-(v - c).powi(2) / (2.0 * w * w)).exp()
    }

    /// A new episode drawn from `seed`.
    pub fn episode(&self, seed: u64) -> RegressionEpisode {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = self.examples + self.queries;
        let xs: Vec<f64> = (0..n).map(|_| rng.gen_range(-1.0..=1.0)).collect();
        let k: Vec<f64> = (0..n * n)
            .map(|ij| self.kernel(xs[ij / n], xs[ij % n]))
            .collect();
        let l = cholesky_jittered(&k, n);
        // Standard normals by Box-Muller.
        let z: Vec<f64> = (0..n)
            .map(|_| {
                let u: f64 = 1.0 - rng.gen::<f64>();
                let v: f64 = rng.gen();
                (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
            })
            .collect();
        let ys = (0..n)
            .map(|i| (0..=i).map(|j| l[i * n + j] * z[j]).sum())
            .collect();
        RegressionEpisode {
            task: self.clone(),
            xs,
            ys,
            rng,
            sum: 0.0,
            steps: Vec::new(),
            errors: Vec::new(),
            loss: 0.0,
        }
    }
}

/// One episode of [`Regression`].
pub struct RegressionEpisode {
    task: Regression,
    /// The examples' points, then the queries'.
    xs: Vec<f64>,
    /// `f` at `xs`.
    ys: Vec<f64>,
    rng: ChaCha8Rng,
    /// The readout summed over the current response window, and its steps.
    sum: f64,
    steps: Vec<usize>,
    /// Per query so far, the signed error of the answer.
    errors: Vec<f64>,
    loss: f64,
}

impl RegressionEpisode {
    /// `(x, f(x))` of query `q`.
    pub fn query(&self, q: usize) -> (f64, f64) {
        let i = self.task.examples + q;
        (self.xs[i], self.ys[i])
    }

    /// The variance of `f` at the query points.
    pub fn query_variance(&self) -> f64 {
        let y = &self.ys[self.task.examples..];
        let n = y.len() as f64;
        let mean = y.iter().sum::<f64>() / n;
        y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n
    }

    /// Codes `v` on the `n` channels of `x` from `from`, centres over `[-r, r]`.
    fn code(&mut self, x: &mut [f64], v: f64, from: usize, n: usize, r: f64) {
        for j in 0..n {
            x[from + j] = spike(&mut self.rng, self.task.tuning(v, j, n, r));
        }
    }
}

impl Env for RegressionEpisode {
    fn steps(&self) -> usize {
        self.task.steps()
    }

    fn input(&mut self, t: usize, x: &mut [f64]) -> f64 {
        let (xs, ys) = (self.task.xs, self.task.ys);
        match self.task.phase(t) {
            Phase::Example(e, _) => {
                let (v, y) = (self.xs[e], self.ys[e]);
                self.code(x, v, 0, xs, 1.0);
                self.code(x, y, xs, ys, self.task.span);
            }
            Phase::Query(q, _) => {
                let v = self.query(q).0;
                self.code(x, v, 0, xs, 1.0);
            }
            Phase::Respond(..) => {
                for xj in &mut x[xs + ys..xs + ys + self.task.size] {
                    *xj = spike(&mut self.rng, self.task.high);
                }
            }
        }
        0.0
    }

    fn output(&mut self, t: usize, y: &[f64]) -> Vec<(usize, Vec<f64>)> {
        let Phase::Respond(q, k) = self.task.phase(t) else {
            return Vec::new();
        };
        self.sum += y.first().copied().unwrap_or(0.0);
        self.steps.push(t);
        if k + 1 < self.task.window {
            return Vec::new();
        }
        // L = mean over queries of (m - f(x))², m the window's mean readout:
        // dL/dy(t) = 2 (m - f(x)) / (steps × queries) at each of its steps.
        let n = self.steps.len() as f64;
        let err = self.sum / n - self.query(q).1;
        let queries = self.task.queries as f64;
        self.loss += err * err / queries;
        self.errors.push(err);
        self.sum = 0.0;
        let g = 2.0 * err / (n * queries);
        std::mem::take(&mut self.steps)
            .into_iter()
            .map(|s| (s, vec![g]))
            .collect()
    }

    fn loss(&self) -> f64 {
        self.loss
    }

    fn metric(&self) -> f64 {
        let mse = self.errors.iter().map(|e| e * e).sum::<f64>() / self.errors.len().max(1) as f64;
        mse / self.query_variance().max(MIN_VARIANCE)
    }

    fn trial_rewards(&self) -> Vec<f64> {
        self.errors.iter().map(|e| -e * e).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::env::{mean_policy_metric, Policy, RandomPolicy};
    use super::*;

    /// The most likely value coded by spike counts `counts` (over `steps` steps) on `n`
    /// channels with centres over `[-r, r]`: the best of a coarse grid, refined.
    fn decode(task: &Regression, counts: &[f64], steps: f64, r: f64) -> f64 {
        let n = counts.len();
        let w = 2.0 * r / (n - 1) as f64;
        // ln P(counts | v) up to a constant: sum_j counts_j ln p_j(v) - steps p_j(v).
        let log_lik = |v: f64| {
            (0..n)
                .map(|j| {
                    let d = (v - (-r + w * j as f64)) / w;
                    -counts[j] * d * d / 2.0 - steps * task.tuning(v, j, n, r)
                })
                .sum::<f64>()
        };
        let best = |from: f64, step: f64| {
            (0..=40)
                .map(|i| (from + step * i as f64).clamp(-r, r))
                .map(|v| (v, log_lik(v)))
                .fold(
                    (0.0, f64::NEG_INFINITY),
                    |b, c| if c.1 > b.1 { c } else { b },
                )
                .0
        };
        let coarse = best(-r, r / 20.0);
        best(coarse - r / 20.0, r / 400.0)
    }

    /// Solves `(L Lᵀ) a = b` for `a`.
    fn solve(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
        let mut z = vec![0.0; n];
        for i in 0..n {
            z[i] = (b[i] - (0..i).map(|k| l[i * n + k] * z[k]).sum::<f64>()) / l[i * n + i];
        }
        let mut a = vec![0.0; n];
        for i in (0..n).rev() {
            a[i] = (z[i] - (i + 1..n).map(|k| l[k * n + i] * a[k]).sum::<f64>()) / l[i * n + i];
        }
        a
    }

    /// The oracle's observation noise variance (the spikes' decoding error).
    const NOISE: f64 = 0.04;

    /// Decodes each example's `x` and `f(x)` from the spikes (maximum likelihood under
    /// the tuning curves) and each query's `x`, and answers the Gaussian-process
    /// posterior mean given the decoded examples (observation noise variance 0.01).
    struct Oracle {
        task: Regression,
        counts: Vec<f64>,
        seen: Vec<(f64, f64)>,
        answer: f64,
    }

    impl Oracle {
        fn new(task: &Regression) -> Oracle {
            Oracle {
                task: task.clone(),
                counts: vec![0.0; task.channels()],
                seen: Vec::new(),
                answer: 0.0,
            }
        }

        fn posterior_mean(&self, x: f64) -> f64 {
            let n = self.seen.len();
            if n == 0 {
                return 0.0;
            }
            let mut k: Vec<f64> = (0..n * n)
                .map(|ij| self.task.kernel(self.seen[ij / n].0, self.seen[ij % n].0))
                .collect();
            for i in 0..n {
                k[i * n + i] += NOISE;
            }
            let l = cholesky(&k, n).expect("K + 0.01 I is positive definite");
            let y: Vec<f64> = self.seen.iter().map(|s| s.1).collect();
            let alpha = solve(&l, n, &y);
            self.seen
                .iter()
                .zip(&alpha)
                .map(|(s, a)| self.task.kernel(x, s.0) * a)
                .sum()
        }
    }

    impl Policy for Oracle {
        fn act(&mut self, t: usize, x: &[f64], _: f64) -> Vec<f64> {
            let (w, xs, ys) = (self.task.window, self.task.xs, self.task.ys);
            for (c, v) in self.counts.iter_mut().zip(x) {
                *c += v;
            }
            let steps = w as f64;
            match self.task.phase(t) {
                Phase::Example(_, k) if k + 1 == w => {
                    let c = std::mem::replace(&mut self.counts, vec![0.0; x.len()]);
                    let v = decode(&self.task, &c[..xs], steps, 1.0);
                    let y = decode(&self.task, &c[xs..xs + ys], steps, self.task.span);
                    self.seen.push((v, y));
                }
                Phase::Query(_, k) if k + 1 == w => {
                    let c = std::mem::replace(&mut self.counts, vec![0.0; x.len()]);
                    let v = decode(&self.task, &c[..xs], steps, 1.0);
                    self.answer = self.posterior_mean(v);
                }
                Phase::Respond(..) => self.counts.iter_mut().for_each(|v| *v = 0.0),
                _ => {}
            }
            vec![self.answer]
        }
    }

    fn mean_metric(policy: &mut dyn FnMut() -> Box<dyn Policy>, episodes: u64) -> f64 {
        let task = Regression::default();
        mean_policy_metric(episodes, task.channels(), |s| task.episode(s), policy)
    }

    #[test]
    fn the_posterior_mean_from_the_spikes_is_far_better_than_chance() {
        let task = Regression::default();
        let oracle = mean_metric(&mut || Box::new(Oracle::new(&task)), 200);
        // With the exact examples the posterior mean scores 0.05; decoding them
        // from 20 ms of spikes costs the rest.
        assert!(oracle < 0.25, "oracle {oracle}");
        let mut seed = 0;
        let random = mean_metric(
            &mut || {
                seed += 1;
                Box::new(RandomPolicy {
                    rng: ChaCha8Rng::seed_from_u64(seed),
                    classes: 1,
                })
            },
            200,
        );
        assert!(random > 1.0, "random {random}");
    }

    /// The loss's seeds are its gradient with respect to the readout of every step.
    #[test]
    fn the_gradient_seeds_match_finite_differences() {
        let task = Regression {
            examples: 3,
            queries: 4,
            window: 5,
            ..Regression::default()
        };
        let steps = task.steps();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let ys: Vec<f64> = (0..steps).map(|_| rng.gen_range(-2.0..2.0)).collect();
        let run = |ys: &[f64]| {
            let mut ep = task.episode(4);
            let mut x = vec![0.0; task.channels()];
            let mut seeds = vec![0.0; steps];
            for (t, &y) in ys.iter().enumerate() {
                ep.input(t, &mut x);
                for (s, g) in ep.output(t, &[y]) {
                    seeds[s] += g[0];
                }
            }
            (ep.loss(), seeds)
        };
        let (loss, seeds) = run(&ys);
        assert!(loss > 0.0);
        let h = 1e-6;
        for t in 0..steps {
            let (mut a, mut b) = (ys.clone(), ys.clone());
            a[t] += h;
            b[t] -= h;
            let fd = (run(&a).0 - run(&b).0) / (2.0 * h);
            assert!(
                (fd - seeds[t]).abs() < 1e-7,
                "step {t}: {fd} vs {}",
                seeds[t]
            );
        }
        // Only the response windows' steps have seeds.
        for (t, &g) in seeds.iter().enumerate() {
            assert_eq!(g != 0.0, matches!(task.phase(t), Phase::Respond(..)), "{t}");
        }
    }

    #[test]
    fn episodes_are_what_the_module_doc_says() {
        let task = Regression::default();
        assert_eq!(task.steps(), 600);
        assert_eq!(task.channels(), 44);
        assert_eq!(task.phase(199), Phase::Example(9, 19));
        assert_eq!(task.phase(200), Phase::Query(0, 0));
        assert_eq!(task.phase(220), Phase::Respond(0, 0));
        assert_eq!(task.phase(599), Phase::Respond(9, 19));
        // The functions' values have the prior's variance 1 and the kernel's
        // correlation: f(a) f(b) averages exp(-(a - b)² / 0.18).
        let (mut var, mut near, mut pairs) = (0.0, 0.0, 0.0);
        let mut flat = 0;
        for seed in 0..400 {
            let ep = task.episode(seed);
            assert_eq!(ep.xs.len(), 20);
            assert!(ep.xs.iter().all(|x| (-1.0..=1.0).contains(x)));
            var += ep.ys.iter().map(|y| y * y).sum::<f64>() / 20.0;
            for i in 0..20 {
                for j in 0..i {
                    let k = task.kernel(ep.xs[i], ep.xs[j]);
                    near += ep.ys[i] * ep.ys[j] - k;
                    pairs += 1.0;
                }
            }
            flat += usize::from(ep.query_variance() < MIN_VARIANCE);
        }
        assert!((var / 400.0 - 1.0).abs() < 0.1, "{}", var / 400.0);
        assert!((near / pairs).abs() < 0.05, "{}", near / pairs);
        assert!(flat <= 8, "{flat} nearly flat functions of 400");
        // Examples drive the x and y codes around the coded values; queries the x
        // code; response windows the go population alone.
        let mut ep = task.episode(2);
        let mut x = vec![0.0; 44];
        let mut counts = [[0.0; 44]; 3];
        for t in 0..task.steps() {
            x.iter_mut().for_each(|v| *v = 0.0);
            assert_eq!(ep.input(t, &mut x), 0.0);
            let p = match task.phase(t) {
                Phase::Example(..) => 0,
                Phase::Query(..) => 1,
                Phase::Respond(..) => 2,
            };
            counts[p].iter_mut().zip(&x).for_each(|(c, v)| *c += v);
            ep.output(t, &[0.0]);
        }
        let sum = |c: &[f64]| c.iter().sum::<f64>();
        assert!(sum(&counts[0][..20]) > 0.0 && sum(&counts[0][20..40]) > 0.0);
        assert_eq!(sum(&counts[0][40..]), 0.0);
        assert!(
            counts[1][20..].iter().sum::<f64>() == 0.0 && counts[1][..20].iter().sum::<f64>() > 0.0
        );
        assert!(counts[2][..40].iter().sum::<f64>() == 0.0);
        assert!((counts[2][40..].iter().sum::<f64>() - 200.0 * 4.0 * 0.2).abs() < 60.0);
        // One example: its spikes decode near its values.
        let mut ep = task.episode(2);
        let mut c = [0.0; 44];
        for t in 0..20 {
            x.iter_mut().for_each(|v| *v = 0.0);
            ep.input(t, &mut x);
            c.iter_mut().zip(&x).for_each(|(c, v)| *c += v);
        }
        let (x0, y0) = (ep.xs[0], ep.ys[0]);
        assert!((decode(&task, &c[..20], 20.0, 1.0) - x0).abs() < 0.15);
        assert!((decode(&task, &c[20..40], 20.0, 3.0) - y0.clamp(-3.0, 3.0)).abs() < 0.5);
        // The metric is the MSE over the query values' variance: answering their
        // mean scores 1.
        let mean = ep.ys[10..].iter().sum::<f64>() / 10.0;
        let mut ep = task.episode(2);
        for t in 0..task.steps() {
            ep.input(t, &mut x);
            ep.output(t, &[mean]);
        }
        let v = ep.query_variance().max(MIN_VARIANCE);
        assert!((ep.metric() - ep.query_variance() / v).abs() < 1e-12);
        assert_eq!(ep.trial_rewards().len(), 10);
    }

    /// `by_name` builds every task of this batch with its defaults, and rejects an
    /// option it does not know.
    #[test]
    fn the_tasks_are_known_by_name_and_check_their_options() {
        use super::super::{by_name, names};
        let expect = [
            ("t-maze", 8000, 20, 2, "reward"),
            ("evidence", 8880, 60, 2, "accuracy"),
            ("evidence-reversal", 17500, 60, 2, "accuracy"),
            ("one-shot", 500, 44, 5, "accuracy"),
            ("regression", 600, 44, 1, "normalised-mse"),
            ("reward-driven", 48000, 50, 1, "reward"),
            ("error-driven", 2000, 5, 1, "rmse"),
            ("oja-pca", 2010, 10, 1, "alignment"),
        ];
        for (name, steps, channels, classes, metric) in expect {
            assert!(names().contains(&name), "{name}");
            let t = by_name(name, &Value::Null).unwrap();
            assert_eq!(t.name, name);
            assert_eq!(t.steps, steps, "{name}");
            assert_eq!(t.channels, Some(channels), "{name}");
            assert_eq!(t.classes, Some(classes), "{name}");
            assert_eq!(t.metric, metric, "{name}");
            let mut ep = (t.make)(1, channels, classes);
            assert_eq!(ep.steps(), steps);
            let mut x = vec![0.0; channels];
            ep.input(0, &mut x);
            let e = by_name(name, &json!({"windoe": 3}))
                .err()
                .unwrap()
                .to_string();
            assert!(
                e.contains(&format!("{name}: unknown option `windoe`")),
                "{e}"
            );
            let e = by_name(name, &json!({"input": 3}))
                .err()
                .unwrap()
                .to_string();
            assert!(e.contains("`input` must be a name"), "{e}");
            let t = by_name(name, &json!({"input": "x", "readout": "out"})).unwrap();
            assert_eq!(t.input.as_deref(), Some("x"));
            assert_eq!(t.readout.as_deref(), Some("out"));
        }
    }
}
