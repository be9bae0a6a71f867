//! `cue-reward`: a spiking version of Backpropamine's cue-reward association (Miconi
//! et al. 2019, ICLR).
//!
//! Per episode, 4 random binary cues of `bits` bits, any two differing in at least a
//! third of their bits (so that noisy spikes still tell them apart); one of them is the
//! target, drawn
//! anew each episode. Each trial shows two different cues one after the other (the
//! target among them with probability 1/2), then a go signal: during the go window the
//! network answers *respond* (readout class 1) or *don't* (class 0). Responding is
//! right exactly when the target was shown. The reward, +1 when right and -1 when
//! wrong, is fed back in the next window: on one of two reward channels and as the
//! `reward` signal. Only what the network learns inside the episode can tell it the
//! target.
//!
//! Trial layout, one window (`window` steps, 20 ms) each: cue A, cue B, go (the
//! response window), feedback. Channels: `bits` cue channels (a 1 bit fires at `high`,
//! a 0 bit at `low`, per step), then go, reward +, reward -.
//!
//! Metric: mean reward over the second half of the episode's trials (the maximum is 1,
//! chance 0). The network needs an input of `bits + 3` channels and a readout of 2.
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `trials` | 20 | trials per episode |
//! | `bits` | 20 | bits per cue |
//! | `window` | 20 | steps per window (cue, cue, go, feedback) |
//! | `high` | 0.2 | spike probability per step of an active channel |
//! | `low` | 0.005 | spike probability per step of an inactive channel |

use super::env::{second_half_mean, spike, Env, EnvTask, Options, Window};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use search::train::TrainError;
use serde_json::{json, Value};
use std::sync::Arc;

/// The task's options.
#[derive(Clone, Debug, PartialEq)]
pub struct CueReward {
    /// Trials per episode.
    pub trials: usize,
    /// Bits per cue.
    pub bits: usize,
    /// Steps per window.
    pub window: usize,
    /// Spike probability per step of an active channel.
    pub high: f64,
    /// Spike probability per step of an inactive channel.
    pub low: f64,
}

impl Default for CueReward {
    fn default() -> Self {
        CueReward {
            trials: 20,
            bits: 20,
            window: 20,
            high: 0.2,
            low: 0.005,
        }
    }
}

impl CueReward {
    /// The task with `options` (a JSON object; unknown fields are errors).
    pub fn task(options: &Value) -> Result<EnvTask, TrainError> {
        let d = CueReward::default();
        let mut o = Options::new("cue-reward", options)?;
        let c = CueReward {
            trials: o.count("trials", d.trials)?,
            bits: o.count("bits", d.bits)?,
            window: o.count("window", d.window)?,
            high: o.number("high", d.high, 0.0, 1.0)?,
            low: o.number("low", d.low, 0.0, 1.0)?,
        };
        let (input, readout) = (o.name("input")?, o.name("readout")?);
        if c.bits < 3 {
            return Err(
                o.error("`bits` must be at least 3 (4 cues, a third of the bits apart)".into())
            );
        }
        o.finish()?;
        let opts = json!({
            "trials": c.trials, "bits": c.bits, "window": c.window, "high": c.high,
            "low": c.low, "input": input, "readout": readout,
        });
        Ok(EnvTask {
            name: "cue-reward".into(),
            options: opts,
            metric: "reward".into(),
            higher_is_better: true,
            steps: c.steps(),
            channels: Some(c.channels()),
            classes: Some(2),
            input,
            readout,
            make: Arc::new(move |seed, _, _| Box::new(c.episode(seed)) as Box<dyn Env>),
        })
    }

    /// Input channels the network needs.
    pub fn channels(&self) -> usize {
        self.bits + 3
    }

    /// Steps per episode.
    pub fn steps(&self) -> usize {
        self.trials * 4 * self.window
    }

    /// A new episode drawn from `seed`.
    pub fn episode(&self, seed: u64) -> CueRewardEpisode {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut cues: Vec<Vec<bool>> = Vec::new();
        while cues.len() < 4 {
            let c: Vec<bool> = (0..self.bits).map(|_| rng.gen()).collect();
            let far =
                |d: &Vec<bool>| c.iter().zip(d).filter(|(a, b)| a != b).count() >= self.bits / 3;
            if c.iter().any(|&b| b) && cues.iter().all(far) {
                cues.push(c);
            }
        }
        let target = rng.gen_range(0..4);
        let shown = (0..self.trials)
            .map(|_| {
                let with_target = rng.gen::<bool>();
                let mut others: Vec<usize> = (0..4).filter(|&c| c != target).collect();
                others.shuffle(&mut rng);
                let mut pair = if with_target {
                    [target, others[0]]
                } else {
                    [others[0], others[1]]
                };
                pair.shuffle(&mut rng);
                pair
            })
            .collect();
        CueRewardEpisode {
            task: self.clone(),
            cues,
            target,
            shown,
            rng,
            window: Window::default(),
            rewards: Vec::new(),
            loss: 0.0,
        }
    }
}

/// One episode of [`CueReward`].
pub struct CueRewardEpisode {
    task: CueReward,
    cues: Vec<Vec<bool>>,
    target: usize,
    /// The two cues of each trial.
    shown: Vec<[usize; 2]>,
    rng: ChaCha8Rng,
    window: Window,
    rewards: Vec<f64>,
    loss: f64,
}

impl CueRewardEpisode {
    /// (trial, phase 0..4, step in phase) of step `t`.
    fn phase(&self, t: usize) -> (usize, usize, usize) {
        let w = self.task.window;
        (t / (4 * w), (t / w) % 4, t % w)
    }

    fn answer(&self, trial: usize) -> usize {
        usize::from(self.shown[trial].contains(&self.target))
    }
}

impl Env for CueRewardEpisode {
    fn steps(&self) -> usize {
        self.task.steps()
    }

    fn input(&mut self, t: usize, x: &mut [f64]) -> f64 {
        let (trial, phase, _) = self.phase(t);
        let (bits, high, low) = (self.task.bits, self.task.high, self.task.low);
        match phase {
            0 | 1 => {
                let cue = self.shown[trial][phase];
                for (xj, &bit) in x[..bits].iter_mut().zip(&self.cues[cue]) {
                    *xj = spike(&mut self.rng, if bit { high } else { low });
                }
                0.0
            }
            2 => {
                x[bits] = spike(&mut self.rng, high);
                0.0
            }
            _ => {
                let r = self.rewards.get(trial).copied().unwrap_or(0.0);
                let ch = if r > 0.0 { bits + 1 } else { bits + 2 };
                x[ch] = spike(&mut self.rng, high);
                r
            }
        }
    }

    fn output(&mut self, t: usize, y: &[f64]) -> Vec<(usize, Vec<f64>)> {
        let (trial, phase, k) = self.phase(t);
        if phase != 2 {
            return Vec::new();
        }
        self.window.add(t, y);
        if k + 1 < self.task.window {
            return Vec::new();
        }
        let answer = self.answer(trial);
        let (decision, loss, seeds) = self.window.close(answer, self.task.trials);
        self.loss += loss;
        self.rewards
            .push(if decision == answer { 1.0 } else { -1.0 });
        seeds
    }

    fn loss(&self) -> f64 {
        self.loss
    }

    fn metric(&self) -> f64 {
        second_half_mean(&self.rewards)
    }

    fn trial_rewards(&self) -> Vec<f64> {
        self.rewards.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::super::env::{mean_policy_metric, Policy, RandomPolicy};
    use super::*;

    /// Learns the target from what the network sees: reads each cue as the channels
    /// that fired in its window, matches it to the cues seen before (Hamming distance),
    /// and counts for each cue the feedbacks that contradict it being the target (a
    /// misread cue costs a count, not the answer).
    struct Oracle {
        task: CueReward,
        counts: [Vec<f64>; 2],
        seen: Vec<Vec<bool>>,
        /// Per seen cue: feedbacks that contradict it being the target.
        violations: Vec<usize>,
        /// Feedbacks saying the target was shown (each contradicts every unseen cue).
        shown_count: usize,
        trial_cues: [usize; 2],
        decision: usize,
        learned: bool,
    }

    impl Oracle {
        fn new(task: &CueReward) -> Oracle {
            Oracle {
                task: task.clone(),
                counts: [vec![0.0; task.bits], vec![0.0; task.bits]],
                seen: Vec::new(),
                violations: Vec::new(),
                shown_count: 0,
                trial_cues: [0, 0],
                decision: 0,
                learned: false,
            }
        }

        fn identify(&mut self, counts: &[f64]) -> usize {
            let bits: Vec<bool> = counts.iter().map(|&c| c >= 1.0).collect();
            let dist = |c: &Vec<bool>| c.iter().zip(&bits).filter(|(a, b)| a != b).count();
            // The nearest cue seen, if close enough or if all 4 have been seen.
            match (0..self.seen.len()).min_by_key(|&i| dist(&self.seen[i])) {
                Some(i) if dist(&self.seen[i]) <= self.task.bits / 5 || self.seen.len() == 4 => i,
                _ => {
                    self.seen.push(bits);
                    self.violations.push(self.shown_count);
                    self.seen.len() - 1
                }
            }
        }
    }

    impl Policy for Oracle {
        fn act(&mut self, t: usize, x: &[f64], reward: f64) -> Vec<f64> {
            let w = self.task.window;
            let (phase, k) = ((t / w) % 4, t % w);
            match phase {
                0 | 1 => {
                    for (c, v) in self.counts[phase].iter_mut().zip(x) {
                        *c += v;
                    }
                    if k + 1 == w {
                        let counts =
                            std::mem::replace(&mut self.counts[phase], vec![0.0; self.task.bits]);
                        self.trial_cues[phase] = self.identify(&counts);
                    }
                }
                2 => {
                    if k == 0 {
                        // Respond if the target is shown with probability >= 1/2,
                        // every cue with the fewest contradictions being as likely
                        // (unseen ones too).
                        let [a, b] = self.trial_cues;
                        let unseen = 4usize.saturating_sub(self.seen.len());
                        let best = self
                            .violations
                            .iter()
                            .copied()
                            .chain((unseen > 0).then_some(self.shown_count))
                            .min()
                            .unwrap_or(0);
                        let cand = |i: usize| self.violations[i] == best;
                        let shown = usize::from(cand(a)) + usize::from(b != a && cand(b));
                        let total = (0..self.seen.len()).filter(|&i| cand(i)).count()
                            + if self.shown_count == best { unseen } else { 0 };
                        self.decision = usize::from(2 * shown >= total.max(1));
                    }
                }
                _ => {
                    if k == 0 {
                        self.learned = false;
                    }
                    if !self.learned && reward != 0.0 {
                        self.learned = true;
                        let target_shown = (self.decision == 1) == (reward > 0.0);
                        let [a, b] = self.trial_cues;
                        for (i, v) in self.violations.iter_mut().enumerate() {
                            if (i == a || i == b) != target_shown {
                                *v += 1;
                            }
                        }
                        self.shown_count += usize::from(target_shown);
                    }
                }
            }
            let mut y = vec![0.0, 0.0];
            y[self.decision] = 1.0;
            y
        }
    }

    fn mean_metric(policy: &mut dyn FnMut() -> Box<dyn Policy>, episodes: u64) -> f64 {
        let task = CueReward::default();
        mean_policy_metric(episodes, task.channels(), |s| task.episode(s), policy)
    }

    #[test]
    fn an_online_learner_earns_nearly_all_the_reward_and_chance_earns_none() {
        let task = CueReward::default();
        let oracle = mean_metric(&mut || Box::new(Oracle::new(&task)), 200);
        assert!(oracle > 0.9, "oracle {oracle}");
        let mut seed = 0;
        let random = mean_metric(
            &mut || {
                seed += 1;
                Box::new(RandomPolicy {
                    rng: ChaCha8Rng::seed_from_u64(seed),
                    classes: 2,
                })
            },
            200,
        );
        assert!(random.abs() < 0.1, "random {random}");
    }

    #[test]
    fn episodes_are_what_the_module_doc_says() {
        let task = CueReward::default();
        let ep = task.episode(5);
        assert_eq!(ep.cues.len(), 4);
        let with_target = ep.shown.iter().filter(|p| p.contains(&ep.target)).count();
        assert!(ep.shown.iter().all(|p| p[0] != p[1]));
        assert!((3..=17).contains(&with_target), "{with_target}");
        assert_eq!(task.steps(), 20 * 80);
        assert_eq!(task.channels(), 23);
    }
}
