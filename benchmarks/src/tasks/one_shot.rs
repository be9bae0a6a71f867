//! `one-shot`: N-way 1-shot classification (Vinyals et al. 2016, "Matching networks for
//! one shot learning", NeurIPS), as plastic networks learn it from a single showing of
//! each class (Miconi et al. 2018, "Differentiable plasticity: training plastic neural
//! networks with backpropagation", ICML), with random binary patterns in place of
//! Omniglot's characters, in spikes.
//!
//! Per episode, `ways` (5) random binary patterns of `bits` (20) bits, any two
//! differing in at least a third of their bits, get the labels of a random permutation
//! of the `ways` classes. Each pattern is shown once, together with its label (the
//! study windows). Then come `queries` (10) noisy queries: a pattern (each pattern as
//! often as the others, up to one, in random order) with each bit flipped with
//! probability `flip` (0.1), followed by a response window in which the network names
//! its class (the argmax of the readout's mean). No reward is given: the labels shown
//! with the patterns are all there is to learn from.
//!
//! Layout, one window (`window` steps, 20 ms) each: `ways` study windows (pattern `i`
//! and its label), then per query a query window (the noisy pattern alone) and a
//! response window (the go population alone). Channels: `bits` pattern channels (a 1
//! bit fires at `high`, a 0 bit at `low`, per step, while a pattern is shown), then
//! `ways` label populations of `size` channels, then a go population of `size`
//! channels; populations fire at `high` when on and are silent otherwise. The `reward`
//! signal is always 0.
//!
//! Loss: cross-entropy of the response window's mean readout against the query's
//! label, averaged over the queries. Metric: fraction of queries answered right
//! (chance `1 / ways`, 0.2). The network needs an input of `bits + (ways + 1) size`
//! channels (44) and a readout of `ways` values (5). Default episode: 25 windows, 500
//! steps.
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `ways` | 5 | classes (patterns) per episode, at least 2 |
//! | `bits` | 20 | bits per pattern |
//! | `queries` | 10 | noisy queries per episode |
//! | `flip` | 0.1 | probability that a query flips a bit, in `[0, 0.5]` |
//! | `window` | 20 | steps per window (study, query, response) |
//! | `size` | 4 | channels per label population and of the go population |
//! | `high` | 0.2 | spike probability per step of an active channel |
//! | `low` | 0.005 | spike probability per step of a 0 bit's channel |
//! | `input` | the network's one `input` | the input that receives the spikes |
//! | `readout` | the network's first readout | it must have `ways` values |

use super::env::{spike, Env, EnvTask, Options, Window};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use search::train::TrainError;
use serde_json::{json, Value};
use std::sync::Arc;

/// The task's options.
#[derive(Clone, Debug, PartialEq)]
pub struct OneShot {
    /// Classes per episode.
    pub ways: usize,
    /// Bits per pattern.
    pub bits: usize,
    /// Queries per episode.
    pub queries: usize,
    /// Probability that a query flips a bit.
    pub flip: f64,
    /// Steps per window.
    pub window: usize,
    /// Channels per population.
    pub size: usize,
    /// Spike probability per step of an active channel.
    pub high: f64,
    /// Spike probability per step of a 0 bit's channel.
    pub low: f64,
}

impl Default for OneShot {
    fn default() -> Self {
        OneShot {
            ways: 5,
            bits: 20,
            queries: 10,
            flip: 0.1,
            window: 20,
            size: 4,
            high: 0.2,
            low: 0.005,
        }
    }
}

/// Where a step is in its episode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Step `k` of the study window of pattern `i`.
    Study(usize, usize),
    /// Step `k` of query `q`'s pattern.
    Query(usize, usize),
    /// Step `k` of query `q`'s response window.
    Respond(usize, usize),
}

impl OneShot {
    /// The task with `options` (a JSON object; unknown fields are errors).
    pub fn task(options: &Value) -> Result<EnvTask, TrainError> {
        let d = OneShot::default();
        let mut o = Options::new("one-shot", options)?;
        let c = OneShot {
            ways: o.count("ways", d.ways)?,
            bits: o.count("bits", d.bits)?,
            queries: o.count("queries", d.queries)?,
            flip: o.number("flip", d.flip, 0.0, 0.5)?,
            window: o.count("window", d.window)?,
            size: o.count("size", d.size)?,
            high: o.number("high", d.high, 0.0, 1.0)?,
            low: o.number("low", d.low, 0.0, 1.0)?,
        };
        let (input, readout) = (o.name("input")?, o.name("readout")?);
        if c.ways < 2 {
            return Err(o.error("`ways` must be at least 2".into()));
        }
        if c.bits < 63 && c.ways as u64 >= (1u64 << c.bits) {
            return Err(o.error(format!(
                "`bits` ({}) is too few for {} different patterns",
                c.bits, c.ways
            )));
        }
        o.finish()?;
        let opts = json!({
            "ways": c.ways, "bits": c.bits, "queries": c.queries, "flip": c.flip,
            "window": c.window, "size": c.size, "high": c.high, "low": c.low,
            "input": input, "readout": readout,
        });
        Ok(EnvTask {
            name: "one-shot".into(),
            options: opts,
            metric: "accuracy".into(),
            higher_is_better: true,
            steps: c.steps(),
            channels: Some(c.channels()),
            classes: Some(c.ways),
            input,
            readout,
            make: Arc::new(move |seed, _, _| Box::new(c.episode(seed)) as Box<dyn Env>),
        })
    }

    /// Input channels the network needs.
    pub fn channels(&self) -> usize {
        self.bits + (self.ways + 1) * self.size
    }

    /// Steps per episode.
    pub fn steps(&self) -> usize {
        (self.ways + 2 * self.queries) * self.window
    }

    /// Where step `t` is.
    pub fn phase(&self, t: usize) -> Phase {
        let w = self.window;
        if t < self.ways * w {
            return Phase::Study(t / w, t % w);
        }
        let u = t - self.ways * w;
        let (q, k) = (u / (2 * w), u % w);
        if (u / w) % 2 == 1 {
            Phase::Respond(q, k)
        } else {
            Phase::Query(q, k)
        }
    }

    /// A new episode drawn from `seed`.
    pub fn episode(&self, seed: u64) -> OneShotEpisode {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Patterns at least a third of their bits apart, relaxed (down to distinct
        // patterns) when too many draws fail.
        let mut patterns: Vec<Vec<bool>> = Vec::new();
        let (mut apart, mut failed) = ((self.bits / 3).max(1), 0);
        while patterns.len() < self.ways {
            let p: Vec<bool> = (0..self.bits).map(|_| rng.gen()).collect();
            let far = |d: &Vec<bool>| p.iter().zip(d).filter(|(a, b)| a != b).count() >= apart;
            if p.iter().any(|&b| b) && patterns.iter().all(far) {
                patterns.push(p);
            } else {
                failed += 1;
                if failed % 1000 == 0 && apart > 1 {
                    apart -= 1;
                }
            }
        }
        let mut labels: Vec<usize> = (0..self.ways).collect();
        labels.shuffle(&mut rng);
        let mut order: Vec<usize> = (0..self.queries).map(|q| q % self.ways).collect();
        order.shuffle(&mut rng);
        let queries = order
            .into_iter()
            .map(|i| {
                let noisy = patterns[i]
                    .iter()
                    .map(|&b| b != (rng.gen::<f64>() < self.flip))
                    .collect();
                (i, noisy)
            })
            .collect();
        OneShotEpisode {
            task: self.clone(),
            patterns,
            labels,
            queries,
            rng,
            window: Window::default(),
            right: Vec::new(),
            loss: 0.0,
        }
    }
}

/// One episode of [`OneShot`].
pub struct OneShotEpisode {
    task: OneShot,
    patterns: Vec<Vec<bool>>,
    /// The label of each pattern.
    labels: Vec<usize>,
    /// Per query: the pattern and its noisy bits.
    queries: Vec<(usize, Vec<bool>)>,
    rng: ChaCha8Rng,
    window: Window,
    right: Vec<bool>,
    loss: f64,
}

impl OneShotEpisode {
    fn show(&mut self, x: &mut [f64], bits: &[bool]) {
        let (high, low) = (self.task.high, self.task.low);
        for (xj, &b) in x.iter_mut().zip(bits) {
            *xj = spike(&mut self.rng, if b { high } else { low });
        }
    }

    fn fire(&mut self, x: &mut [f64], pop: usize) {
        let (n, from) = (self.task.size, self.task.bits + pop * self.task.size);
        for xj in &mut x[from..from + n] {
            *xj = spike(&mut self.rng, self.task.high);
        }
    }

    /// The label query `q` asks for.
    pub fn answer(&self, q: usize) -> usize {
        self.labels[self.queries[q].0]
    }
}

impl Env for OneShotEpisode {
    fn steps(&self) -> usize {
        self.task.steps()
    }

    fn input(&mut self, t: usize, x: &mut [f64]) -> f64 {
        match self.task.phase(t) {
            Phase::Study(i, _) => {
                let p = std::mem::take(&mut self.patterns[i]);
                self.show(x, &p);
                self.patterns[i] = p;
                self.fire(x, self.labels[i]);
            }
            Phase::Query(q, _) => {
                let p = std::mem::take(&mut self.queries[q].1);
                self.show(x, &p);
                self.queries[q].1 = p;
            }
            Phase::Respond(..) => self.fire(x, self.task.ways),
        }
        0.0
    }

    fn output(&mut self, t: usize, y: &[f64]) -> Vec<(usize, Vec<f64>)> {
        let Phase::Respond(q, k) = self.task.phase(t) else {
            return Vec::new();
        };
        self.window.add(t, y);
        if k + 1 < self.task.window {
            return Vec::new();
        }
        let answer = self.answer(q);
        let (decision, loss, seeds) = self.window.close(answer, self.task.queries);
        self.loss += loss;
        self.right.push(decision == answer);
        seeds
    }

    fn loss(&self) -> f64 {
        self.loss
    }

    fn metric(&self) -> f64 {
        self.right.iter().filter(|&&r| r).count() as f64 / self.right.len().max(1) as f64
    }

    fn trial_rewards(&self) -> Vec<f64> {
        self.right
            .iter()
            .map(|&r| if r { 1.0 } else { -1.0 })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::env::{mean_policy_metric, Policy, RandomPolicy};
    use super::*;

    /// Stores each studied pattern as the channels that fired in its window, with the
    /// label population that fired most, and answers a query with the label of the
    /// stored pattern nearest (Hamming distance) to the channels that fired in the
    /// query's window.
    struct Oracle {
        task: OneShot,
        counts: Vec<f64>,
        stored: Vec<(Vec<bool>, usize)>,
        label: usize,
    }

    impl Oracle {
        fn new(task: &OneShot) -> Oracle {
            Oracle {
                task: task.clone(),
                counts: vec![0.0; task.channels()],
                stored: Vec::new(),
                label: 0,
            }
        }
    }

    impl Policy for Oracle {
        fn act(&mut self, t: usize, x: &[f64], _: f64) -> Vec<f64> {
            let (w, bits, n) = (self.task.window, self.task.bits, self.task.size);
            for (c, v) in self.counts.iter_mut().zip(x) {
                *c += v;
            }
            match self.task.phase(t) {
                Phase::Study(_, k) if k + 1 == w => {
                    let c = std::mem::replace(&mut self.counts, vec![0.0; x.len()]);
                    let fired: Vec<bool> = c[..bits].iter().map(|&v| v >= 1.0).collect();
                    let pop = |l: usize| c[bits + l * n..bits + (l + 1) * n].iter().sum::<f64>();
                    let label =
                        (0..self.task.ways).fold(0, |b, l| if pop(l) > pop(b) { l } else { b });
                    self.stored.push((fired, label));
                }
                Phase::Query(_, k) if k + 1 == w => {
                    let c = std::mem::replace(&mut self.counts, vec![0.0; x.len()]);
                    let dist = |p: &Vec<bool>| {
                        p.iter()
                            .zip(&c[..bits])
                            .filter(|&(&a, &v)| a != (v >= 1.0))
                            .count()
                    };
                    self.label = self
                        .stored
                        .iter()
                        .min_by_key(|(p, _)| dist(p))
                        .map_or(0, |&(_, l)| l);
                }
                Phase::Respond(..) => self.counts.iter_mut().for_each(|v| *v = 0.0),
                _ => {}
            }
            let mut y = vec![0.0; self.task.ways];
            y[self.label] = 1.0;
            y
        }
    }

    fn mean_metric(policy: &mut dyn FnMut() -> Box<dyn Policy>, episodes: u64) -> f64 {
        let task = OneShot::default();
        mean_policy_metric(episodes, task.channels(), |s| task.episode(s), policy)
    }

    #[test]
    fn nearest_neighbour_recall_is_nearly_always_right_and_chance_is_a_fifth() {
        let task = OneShot::default();
        let oracle = mean_metric(&mut || Box::new(Oracle::new(&task)), 300);
        assert!(oracle > 0.93, "oracle {oracle}");
        let mut seed = 0;
        let random = mean_metric(
            &mut || {
                seed += 1;
                Box::new(RandomPolicy {
                    rng: ChaCha8Rng::seed_from_u64(seed),
                    classes: 5,
                })
            },
            300,
        );
        assert!((random - 0.2).abs() < 0.04, "random {random}");
    }

    #[test]
    fn episodes_are_what_the_module_doc_says() {
        let task = OneShot::default();
        assert_eq!(task.steps(), 500);
        assert_eq!(task.channels(), 44);
        assert_eq!(task.phase(99), Phase::Study(4, 19));
        assert_eq!(task.phase(100), Phase::Query(0, 0));
        assert_eq!(task.phase(120), Phase::Respond(0, 0));
        assert_eq!(task.phase(499), Phase::Respond(9, 19));
        let mut flips = 0;
        for seed in 0..50 {
            let ep = task.episode(seed);
            let mut labels = ep.labels.clone();
            labels.sort_unstable();
            assert_eq!(labels, vec![0, 1, 2, 3, 4]);
            for (i, p) in ep.patterns.iter().enumerate() {
                for q in &ep.patterns[i + 1..] {
                    assert!(p.iter().zip(q).filter(|(a, b)| a != b).count() >= 6);
                }
            }
            // Each pattern is asked twice.
            for i in 0..5 {
                assert_eq!(ep.queries.iter().filter(|(j, _)| *j == i).count(), 2);
            }
            for (i, noisy) in &ep.queries {
                flips += ep.patterns[*i]
                    .iter()
                    .zip(noisy)
                    .filter(|(a, b)| a != b)
                    .count();
            }
        }
        // 50 episodes x 10 queries x 20 bits x 0.1.
        assert!((800..1200).contains(&flips), "{flips}");
        // Study windows show the pattern and its label; queries the noisy pattern
        // alone; response windows the go population alone.
        let mut ep = task.episode(9);
        let mut x = vec![0.0; 44];
        let mut bit_counts = [0.0; 20];
        for t in 0..task.steps() {
            x.iter_mut().for_each(|v| *v = 0.0);
            assert_eq!(ep.input(t, &mut x), 0.0);
            let pop = |p: usize| x[20 + 4 * p..24 + 4 * p].iter().sum::<f64>();
            match task.phase(t) {
                Phase::Study(i, _) => {
                    for l in 0..6 {
                        if l != ep.labels[i] {
                            assert_eq!(pop(l), 0.0);
                        }
                    }
                    if i == 2 {
                        bit_counts.iter_mut().zip(&x).for_each(|(c, v)| *c += v);
                    }
                }
                Phase::Query(..) => assert_eq!((0..6).map(pop).sum::<f64>(), 0.0),
                Phase::Respond(..) => {
                    assert_eq!(x[..40].iter().sum::<f64>(), 0.0);
                }
            }
            ep.output(t, &[1.0, 0.0, 0.0, 0.0, 0.0]);
        }
        // Pattern 2's 1 bits fired about 4 times in its window, its 0 bits about 0.1.
        let mean = |bit: bool| {
            let (mut sum, mut n) = (0.0, 0.0);
            for (c, &b) in bit_counts.iter().zip(&ep.patterns[2]) {
                if b == bit {
                    sum += c;
                    n += 1.0;
                }
            }
            sum / n
        };
        assert!(mean(true) > 2.0 && mean(false) < 0.5);
        assert_eq!(ep.right.len(), 10);
        for (q, &r) in ep.right.iter().enumerate() {
            assert_eq!(r, ep.answer(q) == 0);
        }
        let e = OneShot::task(&json!({"ways": 5, "bits": 2}))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("`bits` (2) is too few for 5 different patterns"),
            "{e}"
        );
    }
}
