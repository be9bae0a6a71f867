//! `oja-pca`: a linear neuron finds the first principal component of its inputs, for
//! rediscovering Oja's rule `y (x - y w)` (E. Oja 1982, "Simplified neuron model as a
//! principal component analyzer", J. Math. Biol. 15:267) with `ruleopt search`
//! (network: `rules/search/oja_pca.rule`).
//!
//! Per episode, a covariance `C = Q diag(lambda) Q^T` on `dim` (10) channels: `Q` a
//! random orthonormal basis (Gram-Schmidt of a Gaussian matrix), `lambda_1 = top` (4)
//! and the others evenly spaced from `rest` (1) down to `rest / (dim - 1)`. For `steps`
//! (2000) steps the input is a fresh sample `x ~ N(0, C)` (real values, not spikes);
//! then, for `dim` probe steps, the input is `eps e_k` (channel `k` alone at `eps`),
//! so that the linear neuron's readout `y = w . x` reads `eps w_k`: the task sees the
//! weights the rule learned without reading the network's state. No reward is given.
//!
//! Metric: `|cos(w, u_1)| min(|w|, 1 / |w|)`, with `u_1` the leading eigenvector:
//! **higher is better**, 1 exactly at `w = +-u_1` (Oja's fixed point); a rule that
//! aligns `w` but lets its norm drift (plain Hebb) is penalised; a random `w` scores
//! about `sqrt(2 / (pi dim)) |w|`. Loss (its smooth counterpart):
//! `1 - cos^2(w, u_1) + ln(|w|)^2`, seeded into the probe steps' readouts.
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `dim` | 10 | input channels, at least 2 |
//! | `steps` | 2000 | learning steps (then `dim` probe steps) |
//! | `top` | 4 | the leading eigenvalue of `C` |
//! | `rest` | 1 | the second eigenvalue (the others fall evenly to `rest / (dim - 1)`); less than `top` |
//! | `eps` | 0.01 | the probes' input value |
//! | `input` | the network's one `input` | the input that receives the samples |
//! | `readout` | the network's first readout | the neuron's output `y` (1 value) |

use super::env::{Env, EnvTask, Options};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use search::train::TrainError;
use serde_json::{json, Value};
use std::sync::Arc;

/// The task's options.
#[derive(Clone, Debug, PartialEq)]
pub struct OjaPca {
    /// Input channels.
    pub dim: usize,
    /// Learning steps.
    pub steps: usize,
    /// The leading eigenvalue.
    pub top: f64,
    /// The second eigenvalue.
    pub rest: f64,
    /// The probes' input value.
    pub eps: f64,
}

impl Default for OjaPca {
    fn default() -> Self {
        OjaPca {
            dim: 10,
            steps: 2000,
            top: 4.0,
            rest: 1.0,
            eps: 0.01,
        }
    }
}

/// A standard normal (Box-Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = 1.0 - rng.gen::<f64>();
    let v: f64 = rng.gen();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl OjaPca {
    /// The task with `options` (a JSON object; unknown fields are errors).
    pub fn task(options: &Value) -> Result<EnvTask, TrainError> {
        let d = OjaPca::default();
        let mut o = Options::new("oja-pca", options)?;
        let c = OjaPca {
            dim: o.count("dim", d.dim)?,
            steps: o.count("steps", d.steps)?,
            top: o.number("top", d.top, 1e-6, 1e6)?,
            rest: o.number("rest", d.rest, 0.0, 1e6)?,
            eps: o.number("eps", d.eps, 1e-6, 1.0)?,
        };
        let (input, readout) = (o.name("input")?, o.name("readout")?);
        if c.dim < 2 {
            return Err(o.error("`dim` must be at least 2".into()));
        }
        if c.rest >= c.top {
            return Err(o.error(format!(
                "`rest` ({}) must be less than `top` ({}): the first component must be unique",
                c.rest, c.top
            )));
        }
        o.finish()?;
        let opts = json!({
            "dim": c.dim, "steps": c.steps, "top": c.top, "rest": c.rest, "eps": c.eps,
            "input": input, "readout": readout,
        });
        Ok(EnvTask {
            name: "oja-pca".into(),
            options: opts,
            metric: "alignment".into(),
            higher_is_better: true,
            steps: c.total_steps(),
            channels: Some(c.dim),
            classes: Some(1),
            input,
            readout,
            make: Arc::new(move |seed, _, _| Box::new(c.episode(seed)) as Box<dyn Env>),
        })
    }

    /// Steps per episode: learning, then one probe per channel.
    pub fn total_steps(&self) -> usize {
        self.steps + self.dim
    }

    /// The eigenvalues of the covariance, largest first.
    pub fn spectrum(&self) -> Vec<f64> {
        let d = self.dim;
        let mut l = vec![self.top];
        l.extend((1..d).map(|k| self.rest * (d - k) as f64 / (d - 1) as f64));
        l
    }

    /// A new episode drawn from `seed`.
    pub fn episode(&self, seed: u64) -> OjaPcaEpisode {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let d = self.dim;
        // Gram-Schmidt on Gaussian vectors: a uniformly random orthonormal basis.
        let mut basis: Vec<Vec<f64>> = Vec::new();
        while basis.len() < d {
            let mut v: Vec<f64> = (0..d).map(|_| normal(&mut rng)).collect();
            for b in &basis {
                let p = dot(&v, b);
                v.iter_mut().zip(b).for_each(|(x, y)| *x -= p * y);
            }
            let n = dot(&v, &v).sqrt();
            if n > 1e-6 {
                basis.push(v.iter().map(|x| x / n).collect());
            }
        }
        let scale = self.spectrum().iter().map(|l| l.sqrt()).collect();
        OjaPcaEpisode {
            task: self.clone(),
            basis,
            scale,
            rng,
            w: vec![0.0; d],
            loss: 0.0,
            metric: 0.0,
        }
    }
}

/// One episode of [`OjaPca`].
pub struct OjaPcaEpisode {
    task: OjaPca,
    /// The covariance's eigenvectors, the leading one first.
    basis: Vec<Vec<f64>>,
    /// Square roots of the eigenvalues.
    scale: Vec<f64>,
    rng: ChaCha8Rng,
    /// The weights read by the probes.
    w: Vec<f64>,
    loss: f64,
    metric: f64,
}

impl OjaPcaEpisode {
    /// The leading eigenvector.
    pub fn first_component(&self) -> &[f64] {
        &self.basis[0]
    }

    /// The score of weights `w`: (metric, loss, dloss/dw).
    pub fn score(&self, w: &[f64]) -> (f64, f64, Vec<f64>) {
        let u = self.first_component();
        let a = dot(w, u);
        let s = dot(w, w).max(1e-300);
        let n = s.sqrt();
        let cos2 = a * a / s;
        let metric = (a.abs() / n) * n.min(1.0 / n);
        let ln = n.ln();
        let loss = 1.0 - cos2 + ln * ln;
        let grad = w
            .iter()
            .zip(u)
            .map(|(&wk, &uk)| -(2.0 * a * uk / s - 2.0 * a * a * wk / (s * s)) + 2.0 * ln * wk / s)
            .collect();
        (metric, loss, grad)
    }
}

impl Env for OjaPcaEpisode {
    fn steps(&self) -> usize {
        self.task.total_steps()
    }

    fn input(&mut self, t: usize, x: &mut [f64]) -> f64 {
        if t < self.task.steps {
            let z: Vec<f64> = self
                .scale
                .iter()
                .map(|s| s * normal(&mut self.rng))
                .collect();
            for (k, xk) in x.iter_mut().enumerate() {
                *xk = self.basis.iter().zip(&z).map(|(b, zi)| b[k] * zi).sum();
            }
        } else {
            x[t - self.task.steps] = self.task.eps;
        }
        0.0
    }

    fn output(&mut self, t: usize, y: &[f64]) -> Vec<(usize, Vec<f64>)> {
        if t < self.task.steps {
            return Vec::new();
        }
        let k = t - self.task.steps;
        self.w[k] = y.first().copied().unwrap_or(0.0) / self.task.eps;
        if k + 1 < self.task.dim {
            return Vec::new();
        }
        let (metric, loss, grad) = self.score(&self.w);
        self.metric = metric;
        self.loss = loss;
        grad.iter()
            .enumerate()
            .map(|(k, g)| (self.task.steps + k, vec![g / self.task.eps]))
            .collect()
    }

    fn loss(&self) -> f64 {
        self.loss
    }

    fn metric(&self) -> f64 {
        self.metric
    }

    fn trial_rewards(&self) -> Vec<f64> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::super::env::{mean_policy_metric, Policy};
    use super::*;

    /// A linear neuron learning with Oja's rule in f64, outside any network.
    struct OjaNeuron {
        w: Vec<f64>,
        eta: f64,
    }

    impl Policy for OjaNeuron {
        fn act(&mut self, _: usize, x: &[f64], _: f64) -> Vec<f64> {
            let y = dot(&self.w, x);
            for (w, xj) in self.w.iter_mut().zip(x) {
                *w += self.eta * y * (xj - y * *w);
            }
            vec![y]
        }
    }

    fn oja(eta: f64, seed: u64) -> Box<dyn Policy> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Box::new(OjaNeuron {
            w: (0..10).map(|_| 0.1 * normal(&mut rng)).collect(),
            eta,
        })
    }

    #[test]
    fn oja_finds_the_component_and_a_frozen_neuron_does_not() {
        let task = OjaPca::default();
        let mut seed = 0;
        let learned = mean_policy_metric(20, 10, |s| task.episode(s), &mut || {
            seed += 1;
            oja(0.005, seed)
        });
        assert!(learned > 0.97, "oja {learned}");
        let frozen = mean_policy_metric(20, 10, |s| task.episode(s), &mut || {
            seed += 1;
            oja(0.0, seed)
        });
        assert!(frozen < 0.15, "frozen {frozen}");
    }

    #[test]
    fn the_basis_is_orthonormal_and_the_inputs_have_its_covariance() {
        let task = OjaPca::default();
        let mut ep = task.episode(2);
        for (i, a) in ep.basis.iter().enumerate() {
            for (j, b) in ep.basis.iter().enumerate() {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((dot(a, b) - want).abs() < 1e-12);
            }
        }
        // The variance along u_1 is `top`, along u_2 `rest`.
        let (mut v1, mut v2) = (0.0, 0.0);
        let mut x = vec![0.0; 10];
        for t in 0..task.steps {
            ep.input(t, &mut x);
            v1 += dot(&x, &ep.basis[0]).powi(2) / task.steps as f64;
            v2 += dot(&x, &ep.basis[1]).powi(2) / task.steps as f64;
        }
        assert!((v1 - 4.0).abs() < 0.4, "{v1}");
        assert!((v2 - 1.0).abs() < 0.1, "{v2}");
        // Probes: channel k alone at eps.
        let mut p = vec![0.0; 10];
        ep.input(task.steps + 3, &mut p);
        assert_eq!(p[3], 0.01);
        assert_eq!(p.iter().sum::<f64>(), 0.01);
    }

    #[test]
    fn options_are_checked_by_name() {
        let err = |o: Value| OjaPca::task(&o).err().unwrap().to_string();
        assert!(err(json!({"rest": 4})).contains("`rest` (4) must be less than `top` (4)"));
        assert!(err(json!({"dim": 1})).contains("`dim` must be at least 2"));
        assert!(err(json!({"eps": 0})).contains("`eps` must be a number"));
        assert!(err(json!({"top": "big"})).contains("`top` must be a number"));
        let t = OjaPca::task(&json!({"dim": 4, "steps": 100})).unwrap();
        assert_eq!((t.steps, t.channels), (104, Some(4)));
    }

    #[test]
    fn the_score_is_one_at_the_component_and_its_gradient_matches_finite_differences() {
        let ep = OjaPca::default().episode(9);
        let u: Vec<f64> = ep.first_component().to_vec();
        let (m, l, _) = ep.score(&u.iter().map(|x| -x).collect::<Vec<_>>());
        assert!((m - 1.0).abs() < 1e-12 && l.abs() < 1e-12, "{m} {l}");
        let (m2, _, _) = ep.score(&u.iter().map(|x| 3.0 * x).collect::<Vec<_>>());
        assert!((m2 - 1.0 / 3.0).abs() < 1e-12, "{m2}");
        let w: Vec<f64> = (0..10).map(|k| 0.3 * u[k] + 0.05 * k as f64).collect();
        let (_, _, g) = ep.score(&w);
        for k in 0..10 {
            let h = 1e-6;
            let (mut a, mut b) = (w.clone(), w.clone());
            a[k] += h;
            b[k] -= h;
            let fd = (ep.score(&a).1 - ep.score(&b).1) / (2.0 * h);
            assert!((fd - g[k]).abs() < 1e-6, "{k}: {fd} vs {}", g[k]);
        }
    }
}
