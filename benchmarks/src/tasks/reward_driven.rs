//! `reward-driven`: Jordan et al.'s reward-driven learning task (J. Jordan, M. Schmidt,
//! W. Senn & M. A. Petrovici 2021, "Evolving interpretable plasticity for spiking
//! networks", eLife 10:e66273; code: github.com/Happy-Algorithms-League/e2l-cgp-snn,
//! `experiments/reward_based`), for rediscovering `E (R - 1)` with `ruleopt search`
//! (network: `rules/search/reward_driven.rule`).
//!
//! Per episode, `patterns` (30) frozen Poisson spike patterns on `inputs` (50) channels,
//! each `stimulus` steps long at `rate` per channel, each with a class +1 or -1 drawn
//! with probability 1/2. Each of the `trials` (400) trials shows one pattern drawn at
//! random; the network's answer is +1 if its readout (the neuron's spike) was 1 in at
//! least one step of the stimulus, else -1. The reward `R` is +1 when the answer is
//! the pattern's class, else -1. A silent gap of `gap` steps follows the stimulus; the
//! `reward` signal carries `R` at the gap's last step and is 0 in every other step
//! (the network gates its update with it). As in Jordan et al., the rule sees nothing
//! of the class but `R`.
//!
//! What follows Jordan et al. (`sim.py`, `sim_params.json`): 50 inputs, 30 patterns
//! with random classes, a pattern drawn at random per trial, the spike/no-spike
//! answer, `R = +-1`, the fitness as the reward summed over the trials (here its mean,
//! so the metric is in `[-1, 1]`). What differs (for cost: one evaluation should take
//! well under 0.5 s): trials of 100 ms at 20 Hz (there 500 ms at 6 Hz), 400 trials
//! per episode (there 500), and the gap (there the simulator is reset every trial).
//!
//! Metric: the mean reward over the episode's trials (higher is better; 1 is every
//! trial right, a network that answers at random or always the same scores 0 in
//! expectation). Loss (its smooth counterpart, for tuning constants by gradient): per
//! trial, with `n` the number of spikes in the stimulus and `c` the class,
//! `softplus(-c sharpness (n - 1/2))`, averaged over the trials; its gradient reaches
//! the spikes through their surrogate.
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `trials` | 400 | trials per episode |
//! | `patterns` | 30 | frozen patterns per episode |
//! | `inputs` | 50 | input channels |
//! | `stimulus` | 100 | steps a pattern lasts |
//! | `gap` | 20 | silent steps after it (the reward comes at the last one) |
//! | `rate` | 0.02 | spike probability per step of each channel in a pattern (20 Hz at dt = 1 ms) |
//! | `sharpness` | 2 | slope of the loss in the spike count |
//! | `input` | the network's one `input` | the input that receives the spikes |
//! | `readout` | the network's first readout | the neuron's spike (1 value) |

use super::env::{Env, EnvTask, Options};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use search::train::TrainError;
use serde_json::{json, Value};
use std::sync::Arc;

/// The task's options.
#[derive(Clone, Debug, PartialEq)]
pub struct RewardDriven {
    /// Trials per episode.
    pub trials: usize,
    /// Frozen patterns per episode.
    pub patterns: usize,
    /// Input channels.
    pub inputs: usize,
    /// Steps per pattern.
    pub stimulus: usize,
    /// Silent steps after each pattern.
    pub gap: usize,
    /// Spike probability per step and channel in a pattern.
    pub rate: f64,
    /// Slope of the loss in the spike count.
    pub sharpness: f64,
}

impl Default for RewardDriven {
    fn default() -> Self {
        RewardDriven {
            trials: 400,
            patterns: 30,
            inputs: 50,
            stimulus: 100,
            gap: 20,
            rate: 0.02,
            sharpness: 2.0,
        }
    }
}

impl RewardDriven {
    /// The task with `options` (a JSON object; unknown fields are errors).
    pub fn task(options: &Value) -> Result<EnvTask, TrainError> {
        let d = RewardDriven::default();
        let mut o = Options::new("reward-driven", options)?;
        let c = RewardDriven {
            trials: o.count("trials", d.trials)?,
            patterns: o.count("patterns", d.patterns)?,
            inputs: o.count("inputs", d.inputs)?,
            stimulus: o.count("stimulus", d.stimulus)?,
            gap: o.count("gap", d.gap)?,
            rate: o.number("rate", d.rate, 0.0, 1.0)?,
            sharpness: o.number("sharpness", d.sharpness, 1e-3, 1e3)?,
        };
        let (input, readout) = (o.name("input")?, o.name("readout")?);
        o.finish()?;
        let opts = json!({
            "trials": c.trials, "patterns": c.patterns, "inputs": c.inputs,
            "stimulus": c.stimulus, "gap": c.gap, "rate": c.rate, "sharpness": c.sharpness,
            "input": input, "readout": readout,
        });
        Ok(EnvTask {
            name: "reward-driven".into(),
            options: opts,
            metric: "reward".into(),
            higher_is_better: true,
            steps: c.steps(),
            channels: Some(c.inputs),
            classes: Some(1),
            input,
            readout,
            make: Arc::new(move |seed, _, _| Box::new(c.episode(seed)) as Box<dyn Env>),
        })
    }

    /// Steps per trial.
    pub fn trial_steps(&self) -> usize {
        self.stimulus + self.gap
    }

    /// Steps per episode.
    pub fn steps(&self) -> usize {
        self.trials * self.trial_steps()
    }

    /// A new episode drawn from `seed`.
    pub fn episode(&self, seed: u64) -> RewardDrivenEpisode {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let spikes = (0..self.patterns)
            .map(|_| {
                (0..self.stimulus * self.inputs)
                    .map(|_| rng.gen::<f64>() < self.rate)
                    .collect()
            })
            .collect();
        let classes = (0..self.patterns).map(|_| rng.gen::<bool>()).collect();
        let shown = (0..self.trials)
            .map(|_| rng.gen_range(0..self.patterns))
            .collect();
        RewardDrivenEpisode {
            task: self.clone(),
            spikes,
            classes,
            shown,
            count: 0.0,
            rewards: Vec::new(),
            loss: 0.0,
        }
    }
}

/// One episode of [`RewardDriven`].
pub struct RewardDrivenEpisode {
    task: RewardDriven,
    /// Per pattern, `[step][channel]`: whether the channel spikes.
    spikes: Vec<Vec<bool>>,
    /// Per pattern: class +1 (true) or -1.
    classes: Vec<bool>,
    /// The pattern of each trial.
    shown: Vec<usize>,
    /// Spikes of the current trial's stimulus so far.
    count: f64,
    rewards: Vec<f64>,
    loss: f64,
}

impl RewardDrivenEpisode {
    /// The class (+1 or -1) of trial `k`'s pattern.
    pub fn class(&self, k: usize) -> f64 {
        if self.classes[self.shown[k]] {
            1.0
        } else {
            -1.0
        }
    }
}

/// `ln(1 + e^x)` without overflow.
fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl Env for RewardDrivenEpisode {
    fn steps(&self) -> usize {
        self.task.steps()
    }

    fn input(&mut self, t: usize, x: &mut [f64]) -> f64 {
        let (k, s) = (t / self.task.trial_steps(), t % self.task.trial_steps());
        if s < self.task.stimulus {
            let n = self.task.inputs;
            let row = &self.spikes[self.shown[k]][s * n..(s + 1) * n];
            for (xj, &on) in x.iter_mut().zip(row) {
                *xj = f64::from(u8::from(on));
            }
            0.0
        } else if s + 1 == self.task.trial_steps() {
            self.rewards.get(k).copied().unwrap_or(0.0)
        } else {
            0.0
        }
    }

    fn output(&mut self, t: usize, y: &[f64]) -> Vec<(usize, Vec<f64>)> {
        let (k, s) = (t / self.task.trial_steps(), t % self.task.trial_steps());
        if s >= self.task.stimulus {
            return Vec::new();
        }
        self.count += y.first().copied().unwrap_or(0.0);
        if s + 1 < self.task.stimulus {
            return Vec::new();
        }
        // The stimulus is over: the answer, the reward and the trial's loss.
        let c = self.class(k);
        let answer = if self.count > 0.5 { 1.0 } else { -1.0 };
        self.rewards.push(if answer == c { 1.0 } else { -1.0 });
        let a = -c * self.task.sharpness * (self.count - 0.5);
        let trials = self.task.trials as f64;
        self.loss += softplus(a) / trials;
        let g = -c * self.task.sharpness * sigmoid(a) / trials;
        self.count = 0.0;
        let start = t + 1 - self.task.stimulus;
        (start..=t).map(|s| (s, vec![g])).collect()
    }

    fn loss(&self) -> f64 {
        self.loss
    }

    fn metric(&self) -> f64 {
        self.rewards.iter().sum::<f64>() / self.rewards.len().max(1) as f64
    }

    fn trial_rewards(&self) -> Vec<f64> {
        self.rewards.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::super::env::{mean_policy_metric, Policy, RandomPolicy};
    use super::*;
    use std::collections::HashMap;

    /// Learns online: recognises a pattern by its first steps' spikes, answers what the
    /// reward said about it before (+1 when new), and takes the reward's word.
    struct Oracle {
        task: RewardDriven,
        memory: HashMap<Vec<bool>, f64>,
        key: Vec<bool>,
        answer: f64,
    }

    impl Policy for Oracle {
        fn act(&mut self, t: usize, x: &[f64], reward: f64) -> Vec<f64> {
            let s = t % self.task.trial_steps();
            let look = 10.min(self.task.stimulus - 1);
            if s == 0 {
                self.key.clear();
            }
            if s < look {
                self.key.extend(x.iter().map(|&v| v > 0.5));
            }
            if s == look {
                self.answer = self.memory.get(&self.key).copied().unwrap_or(1.0);
            }
            if reward != 0.0 {
                let right = if reward > 0.0 {
                    self.answer
                } else {
                    -self.answer
                };
                self.memory.insert(self.key.clone(), right);
            }
            vec![f64::from(u8::from(s == look && self.answer > 0.0))]
        }
    }

    #[test]
    fn an_online_learner_is_nearly_always_right_and_chance_earns_nothing() {
        let task = RewardDriven::default();
        let oracle = mean_policy_metric(20, task.inputs, |s| task.episode(s), &mut || {
            Box::new(Oracle {
                task: task.clone(),
                memory: HashMap::new(),
                key: Vec::new(),
                answer: 1.0,
            })
        });
        // Only a pattern's first showing can be wrong: 30 of 400 trials, half of them.
        assert!(oracle > 0.85, "oracle {oracle}");
        let mut seed = 0;
        let random = mean_policy_metric(200, task.inputs, |s| task.episode(s), &mut || {
            seed += 1;
            Box::new(RandomPolicy {
                rng: ChaCha8Rng::seed_from_u64(seed),
                classes: 1,
            })
        });
        // A uniform readout answers +1 (some step above 0.5) nearly always: the score
        // of always answering +1, 0 in expectation.
        assert!(random.abs() < 0.1, "random {random}");
    }

    /// The loss's gradient in the spike count matches finite differences, and each
    /// stimulus step gets it.
    #[test]
    fn the_trial_loss_gradient_matches_finite_differences() {
        let task = RewardDriven {
            trials: 1,
            stimulus: 5,
            gap: 2,
            ..RewardDriven::default()
        };
        let run = |ys: &[f64]| {
            let mut ep = task.episode(3);
            let mut x = vec![0.0; task.inputs];
            let mut seeds = Vec::new();
            for (t, &y) in ys.iter().enumerate() {
                ep.input(t, &mut x);
                seeds.extend(ep.output(t, &[y]));
            }
            (ep.loss(), seeds)
        };
        let ys = [0.0, 0.3, 0.0, 0.1, 0.0, 0.0, 0.0];
        let (_, seeds) = run(&ys);
        assert_eq!(
            seeds.iter().map(|s| s.0).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        let h = 1e-6;
        for &(s, ref g) in &seeds {
            let (mut a, mut b) = (ys, ys);
            a[s] += h;
            b[s] -= h;
            let fd = (run(&a).0 - run(&b).0) / (2.0 * h);
            assert!((fd - g[0]).abs() < 1e-7, "{fd} vs {}", g[0]);
        }
    }

    #[test]
    fn options_are_checked_by_name() {
        let err = |o: Value| RewardDriven::task(&o).err().unwrap().to_string();
        assert!(err(json!({"gap": 0})).contains("`gap` must be a positive integer"));
        assert!(err(json!({"rate": 1.5})).contains("`rate` must be a number in [0, 1]"));
        assert!(err(json!({"trial": 3})).contains("unknown option `trial`"));
        let t = RewardDriven::task(&json!({"trials": 3, "stimulus": 10, "gap": 2})).unwrap();
        assert_eq!((t.steps, t.channels), (36, Some(50)));
    }

    #[test]
    fn episodes_are_what_the_module_doc_says() {
        let task = RewardDriven {
            trials: 200,
            ..RewardDriven::default()
        };
        let mut ep = task.episode(7);
        assert_eq!(task.steps(), 200 * 120);
        let plus = ep.classes.iter().filter(|&&c| c).count();
        assert!((5..=25).contains(&plus), "{plus}");
        let mut x = vec![0.0; 50];
        let (mut spikes, mut rewards) = (0.0, 0);
        for t in 0..task.steps() {
            x.iter_mut().for_each(|v| *v = 0.0);
            let r = ep.input(t, &mut x);
            let s = t % 120;
            if s >= 100 {
                assert!(x.iter().all(|&v| v == 0.0));
            }
            spikes += x.iter().sum::<f64>();
            if r != 0.0 {
                assert_eq!(s, 119);
                rewards += 1;
            }
            ep.output(t, &[0.0]);
        }
        assert_eq!(rewards, 200);
        let rate = spikes / (200.0 * 100.0 * 50.0);
        assert!((rate - 0.02).abs() < 0.002, "{rate}");
        // Never spiking answers -1: right exactly on the -1 patterns.
        let right: f64 = (0..200)
            .map(|k| f64::from(u8::from(ep.class(k) < 0.0)))
            .sum();
        assert_eq!(ep.metric(), (2.0 * right - 200.0) / 200.0);
    }
}
