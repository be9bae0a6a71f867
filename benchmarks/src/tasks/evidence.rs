//! `evidence` and `evidence-reversal`: accumulating evidence in a virtual T-maze, the
//! task of mice in Morcos & Harvey (2016, "History-dependent variability in population
//! dynamics during evidence accumulation in cortex", Nature Neuroscience) as given to
//! spiking networks by Bellec et al. (2020, "A solution to the learning dilemma for
//! recurrent networks of spiking neurons", Nature Communications: the e-prop
//! evidence-accumulation task), in closed loop.
//!
//! Each trial shows `cues` (7) cues, each on the left or the right at random: a cue is
//! a burst of the left or the right cue population lasting `cue` steps (100 ms),
//! followed by `gap` silent steps (50 ms). After a `delay` (1 s), the recall population
//! fires for `recall` steps (150 ms): the response window, in which the network chooses
//! a side (readout class 0 left, 1 right). Then the reward comes back for `feedback`
//! steps: +1 (the reward + population fires, and the `reward` signal is +1) if the
//! choice was right, else -1 (the reward - population fires, the signal is -1). A
//! background noise population fires at `noise` throughout, as in Bellec et al.
//!
//! In `evidence` the right side is the one with more cues (the majority; `cues` is odd).
//! In `evidence-reversal` the rewarded side is, per episode, the majority side or the
//! minority side (each with probability 1/2, not announced): the network must find the
//! rule from the rewards within the episode, then apply it on every trial.
//!
//! Channels: 6 populations of `size` channels, in this order: left cue, right cue,
//! recall, noise, reward +, reward -. Active populations fire at `rate` per step and
//! channel (40 Hz at 1 ms steps); the noise population at `noise` (10 Hz); the others
//! are silent. The network needs an input of `6 size` channels (60) and a readout of 2.
//!
//! Loss: cross-entropy of the recall window's mean readout against the rewarded side,
//! averaged over the trials. Metric: fraction of trials chosen right (chance 0.5): over
//! all trials in `evidence`, over the second half in `evidence-reversal`.
//!
//! A trial lasts `cues (cue + gap) + delay + recall + feedback` steps. The defaults of
//! `evidence` keep the paper's timing (2220 steps a trial) and few trials per episode
//! (4 trials, 8880 steps). `evidence-reversal` needs many trials to find its rule, so
//! its defaults shorten the timing: 50 trials of 350 steps, 17500 steps.
//!
//! | option | default (`evidence`) | default (`evidence-reversal`) | meaning |
//! |---|---|---|---|
//! | `trials` | 4 | 50 | trials per episode |
//! | `cues` | 7 | 7 | cues per trial (odd) |
//! | `cue` | 100 | 20 | steps per cue |
//! | `gap` | 50 | 10 | silent steps after each cue |
//! | `delay` | 1000 | 100 | steps between the last gap and the recall window |
//! | `recall` | 150 | 20 | steps of the recall (response) window |
//! | `feedback` | 20 | 20 | steps the reward is fed back |
//! | `size` | 10 | 10 | channels per population |
//! | `rate` | 0.04 | 0.04 | spike probability per step of an active channel |
//! | `noise` | 0.01 | 0.01 | spike probability per step of a noise channel |
//! | `input` | the network's one `input` | | the input that receives the spikes |
//! | `readout` | the network's first readout | | it must have 2 values |

use super::env::{spike, Env, EnvTask, Options, Window};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use search::train::TrainError;
use serde_json::{json, Value};
use std::sync::Arc;

/// The populations, in the order of their channels.
const LEFT: usize = 0;
const RECALL: usize = 2;
const NOISE: usize = 3;
const REWARD_PLUS: usize = 4;
const REWARD_MINUS: usize = 5;

/// The task's options.
#[derive(Clone, Debug, PartialEq)]
pub struct Evidence {
    /// `evidence-reversal`: the rewarded side is the majority or the minority.
    pub reversal: bool,
    /// Trials per episode.
    pub trials: usize,
    /// Cues per trial.
    pub cues: usize,
    /// Steps per cue.
    pub cue: usize,
    /// Silent steps after each cue.
    pub gap: usize,
    /// Steps between the cues and the recall window.
    pub delay: usize,
    /// Steps of the recall window.
    pub recall: usize,
    /// Steps the reward is fed back.
    pub feedback: usize,
    /// Channels per population.
    pub size: usize,
    /// Spike probability per step of an active channel.
    pub rate: f64,
    /// Spike probability per step of a noise channel.
    pub noise: f64,
}

/// Where a step is in its trial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Cue `i`'s slot; `true` while the cue is on (else its gap).
    Cue(usize, bool),
    /// The delay.
    Delay,
    /// Step `k` of the recall window.
    Recall(usize),
    /// Step `k` of the feedback.
    Feedback(usize),
}

impl Evidence {
    /// The defaults of `evidence` (`reversal` false) or `evidence-reversal`.
    pub fn new(reversal: bool) -> Evidence {
        let e = Evidence {
            reversal,
            trials: 4,
            cues: 7,
            cue: 100,
            gap: 50,
            delay: 1000,
            recall: 150,
            feedback: 20,
            size: 10,
            rate: 0.04,
            noise: 0.01,
        };
        if reversal {
            Evidence {
                trials: 50,
                cue: 20,
                gap: 10,
                delay: 100,
                recall: 20,
                ..e
            }
        } else {
            e
        }
    }

    /// The task's name.
    pub fn name(&self) -> &'static str {
        if self.reversal {
            "evidence-reversal"
        } else {
            "evidence"
        }
    }

    /// The task with `options` (a JSON object; unknown fields are errors).
    pub fn task(options: &Value, reversal: bool) -> Result<EnvTask, TrainError> {
        let d = Evidence::new(reversal);
        let mut o = Options::new(d.name(), options)?;
        let c = Evidence {
            reversal,
            trials: o.count("trials", d.trials)?,
            cues: o.count("cues", d.cues)?,
            cue: o.count("cue", d.cue)?,
            gap: o.count("gap", d.gap)?,
            delay: o.count("delay", d.delay)?,
            recall: o.count("recall", d.recall)?,
            feedback: o.count("feedback", d.feedback)?,
            size: o.count("size", d.size)?,
            rate: o.number("rate", d.rate, 0.0, 1.0)?,
            noise: o.number("noise", d.noise, 0.0, 1.0)?,
        };
        let (input, readout) = (o.name("input")?, o.name("readout")?);
        if c.cues % 2 != 1 {
            return Err(o.error(format!(
                "`cues` ({}) must be odd, so that one side has more",
                c.cues
            )));
        }
        o.finish()?;
        let opts = json!({
            "trials": c.trials, "cues": c.cues, "cue": c.cue, "gap": c.gap,
            "delay": c.delay, "recall": c.recall, "feedback": c.feedback, "size": c.size,
            "rate": c.rate, "noise": c.noise, "input": input, "readout": readout,
        });
        Ok(EnvTask {
            name: c.name().into(),
            options: opts,
            metric: "accuracy".into(),
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
        6 * self.size
    }

    /// Steps per trial.
    pub fn trial_steps(&self) -> usize {
        self.cues * (self.cue + self.gap) + self.delay + self.recall + self.feedback
    }

    /// Steps per episode.
    pub fn steps(&self) -> usize {
        self.trials * self.trial_steps()
    }

    /// (trial, phase) of step `t`.
    pub fn phase(&self, t: usize) -> (usize, Phase) {
        let n = self.trial_steps();
        let (trial, mut s) = (t / n, t % n);
        let slot = self.cue + self.gap;
        if s < self.cues * slot {
            return (trial, Phase::Cue(s / slot, s % slot < self.cue));
        }
        s -= self.cues * slot;
        if s < self.delay {
            return (trial, Phase::Delay);
        }
        s -= self.delay;
        if s < self.recall {
            return (trial, Phase::Recall(s));
        }
        (trial, Phase::Feedback(s - self.recall))
    }

    /// A new episode drawn from `seed`.
    pub fn episode(&self, seed: u64) -> EvidenceEpisode {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let majority_rewarded = !self.reversal || rng.gen::<bool>();
        let sides = (0..self.trials)
            .map(|_| (0..self.cues).map(|_| rng.gen_range(0..2)).collect())
            .collect();
        EvidenceEpisode {
            task: self.clone(),
            sides,
            majority_rewarded,
            rng,
            window: Window::default(),
            right: Vec::new(),
            loss: 0.0,
        }
    }
}

/// One episode of [`Evidence`].
pub struct EvidenceEpisode {
    task: Evidence,
    /// Per trial, the side of each cue (0 left, 1 right).
    sides: Vec<Vec<usize>>,
    /// Whether the majority side is rewarded (always, in `evidence`).
    majority_rewarded: bool,
    rng: ChaCha8Rng,
    window: Window,
    /// Per trial so far, whether the choice was right.
    right: Vec<bool>,
    loss: f64,
}

impl EvidenceEpisode {
    /// The side with more cues in `trial`.
    pub fn majority(&self, trial: usize) -> usize {
        let right = self.sides[trial].iter().sum::<usize>();
        usize::from(2 * right > self.task.cues)
    }

    /// The rewarded side of `trial`.
    pub fn answer(&self, trial: usize) -> usize {
        let m = self.majority(trial);
        if self.majority_rewarded {
            m
        } else {
            1 - m
        }
    }

    fn fire(&mut self, x: &mut [f64], pop: usize, p: f64) {
        let n = self.task.size;
        for xj in &mut x[pop * n..(pop + 1) * n] {
            *xj = spike(&mut self.rng, p);
        }
    }
}

impl Env for EvidenceEpisode {
    fn steps(&self) -> usize {
        self.task.steps()
    }

    fn input(&mut self, t: usize, x: &mut [f64]) -> f64 {
        let (trial, phase) = self.task.phase(t);
        let rate = self.task.rate;
        self.fire(x, NOISE, self.task.noise);
        match phase {
            Phase::Cue(i, true) => {
                let side = self.sides[trial][i];
                self.fire(x, LEFT + side, rate);
                0.0
            }
            Phase::Cue(_, false) | Phase::Delay => 0.0,
            Phase::Recall(_) => {
                self.fire(x, RECALL, rate);
                0.0
            }
            Phase::Feedback(_) => {
                let right = self.right.get(trial).copied().unwrap_or(false);
                self.fire(x, if right { REWARD_PLUS } else { REWARD_MINUS }, rate);
                if right {
                    1.0
                } else {
                    -1.0
                }
            }
        }
    }

    fn output(&mut self, t: usize, y: &[f64]) -> Vec<(usize, Vec<f64>)> {
        let (trial, phase) = self.task.phase(t);
        let Phase::Recall(k) = phase else {
            return Vec::new();
        };
        self.window.add(t, y);
        if k + 1 < self.task.recall {
            return Vec::new();
        }
        let answer = self.answer(trial);
        let (decision, loss, seeds) = self.window.close(answer, self.task.trials);
        self.loss += loss;
        self.right.push(decision == answer);
        seeds
    }

    fn loss(&self) -> f64 {
        self.loss
    }

    fn metric(&self) -> f64 {
        let from = if self.task.reversal {
            self.right.len() / 2
        } else {
            0
        };
        let scored = &self.right[from..];
        scored.iter().filter(|&&r| r).count() as f64 / scored.len().max(1) as f64
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

    /// Counts the cues from the spikes (the side whose population fired more during
    /// each cue), chooses the majority or, in `evidence-reversal`, whichever of the
    /// majority and the minority the rewards so far favour (the majority on a tie).
    struct Oracle {
        task: Evidence,
        /// Spikes of the left and the right population in the current cue.
        spikes: [f64; 2],
        /// Cues read on each side in the current trial.
        cues: [usize; 2],
        /// The side with more cues read in the current trial.
        majority: usize,
        choice: usize,
        /// Rewards saying the majority (0) or the minority (1) is rewarded.
        votes: [usize; 2],
    }

    impl Oracle {
        fn new(task: &Evidence) -> Oracle {
            Oracle {
                task: task.clone(),
                spikes: [0.0; 2],
                cues: [0; 2],
                majority: 0,
                choice: 0,
                votes: [0; 2],
            }
        }
    }

    impl Policy for Oracle {
        fn act(&mut self, t: usize, x: &[f64], reward: f64) -> Vec<f64> {
            let n = self.task.size;
            let (_, phase) = self.task.phase(t);
            match phase {
                Phase::Cue(_, true) => {
                    for (side, s) in self.spikes.iter_mut().enumerate() {
                        *s += x[(LEFT + side) * n..(LEFT + side + 1) * n]
                            .iter()
                            .sum::<f64>();
                    }
                }
                Phase::Cue(_, false) if self.spikes != [0.0; 2] => {
                    let side = usize::from(self.spikes[1] > self.spikes[0]);
                    self.cues[side] += 1;
                    self.spikes = [0.0; 2];
                }
                Phase::Recall(0) => {
                    self.majority = usize::from(self.cues[1] > self.cues[0]);
                    self.cues = [0; 2];
                    let minority = self.votes[1] > self.votes[0];
                    self.choice = if minority {
                        1 - self.majority
                    } else {
                        self.majority
                    };
                }
                Phase::Feedback(0) => {
                    let chose_majority = self.choice == self.majority;
                    let majority_rewarded = chose_majority == (reward > 0.0);
                    self.votes[usize::from(!majority_rewarded)] += 1;
                }
                _ => {}
            }
            let mut y = vec![0.0, 0.0];
            y[self.choice] = 1.0;
            y
        }
    }

    fn mean_metric(
        task: &Evidence,
        policy: &mut dyn FnMut() -> Box<dyn Policy>,
        episodes: u64,
    ) -> f64 {
        mean_policy_metric(episodes, task.channels(), |s| task.episode(s), policy)
    }

    fn random(task: &Evidence, episodes: u64) -> f64 {
        let mut seed = 0;
        mean_metric(
            task,
            &mut || {
                seed += 1;
                Box::new(RandomPolicy {
                    rng: ChaCha8Rng::seed_from_u64(seed),
                    classes: 2,
                })
            },
            episodes,
        )
    }

    #[test]
    fn counting_the_cues_is_always_right_and_chance_is_half() {
        let task = Evidence::new(false);
        let oracle = mean_metric(&task, &mut || Box::new(Oracle::new(&task)), 50);
        assert!(oracle > 0.99, "oracle {oracle}");
        let random = random(&task, 50);
        assert!((random - 0.5).abs() < 0.1, "random {random}");
    }

    #[test]
    fn finding_the_rule_from_rewards_is_nearly_always_right_and_chance_is_half() {
        let task = Evidence::new(true);
        let oracle = mean_metric(&task, &mut || Box::new(Oracle::new(&task)), 12);
        assert!(oracle > 0.98, "oracle {oracle}");
        let random = random(&task, 12);
        assert!((random - 0.5).abs() < 0.1, "random {random}");
    }

    #[test]
    fn episodes_are_what_the_module_doc_says() {
        let task = Evidence::new(false);
        assert_eq!(task.trial_steps(), 2220);
        assert_eq!(task.steps(), 8880);
        assert_eq!(task.channels(), 60);
        let rev = Evidence::new(true);
        assert_eq!(rev.trial_steps(), 350);
        assert_eq!(rev.steps(), 17500);
        assert_eq!(rev.channels(), 60);
        assert_eq!(task.phase(0), (0, Phase::Cue(0, true)));
        assert_eq!(task.phase(149), (0, Phase::Cue(0, false)));
        assert_eq!(task.phase(150), (0, Phase::Cue(1, true)));
        assert_eq!(task.phase(1050), (0, Phase::Delay));
        assert_eq!(task.phase(2050), (0, Phase::Recall(0)));
        assert_eq!(task.phase(2200), (0, Phase::Feedback(0)));
        assert_eq!(task.phase(2220), (1, Phase::Cue(0, true)));
        // The rule is drawn per episode in `evidence-reversal`, fixed in `evidence`.
        let rules: Vec<bool> = (0..40).map(|s| rev.episode(s).majority_rewarded).collect();
        assert!(rules.contains(&true) && rules.contains(&false));
        assert!((0..40).all(|s| task.episode(s).majority_rewarded));
        // Always choosing left: cue populations fire during their cues only, the recall
        // population in the recall window, the reward's in the feedback (with the
        // signal), the noise population throughout.
        let mut ep = task.episode(3);
        let mut x = vec![0.0; 60];
        let mut per_cue = [0.0; 2];
        let mut noise = 0.0;
        for t in 0..task.steps() {
            x.iter_mut().for_each(|v| *v = 0.0);
            let r = ep.input(t, &mut x);
            let (trial, phase) = task.phase(t);
            let pop = |p: usize| x[p * 10..(p + 1) * 10].iter().sum::<f64>();
            noise += pop(NOISE);
            match phase {
                Phase::Cue(i, true) => {
                    let side = ep.sides[trial][i];
                    assert_eq!(pop(LEFT + 1 - side), 0.0);
                    per_cue[side] += pop(LEFT + side);
                }
                Phase::Recall(_) => assert_eq!(pop(LEFT) + pop(LEFT + 1), 0.0),
                _ => assert_eq!(pop(LEFT) + pop(LEFT + 1) + pop(RECALL), 0.0),
            }
            if let Phase::Feedback(_) = phase {
                let right = ep.answer(trial) == 0;
                assert_eq!(r, if right { 1.0 } else { -1.0 });
                assert_eq!(pop(if right { REWARD_MINUS } else { REWARD_PLUS }), 0.0);
            } else {
                assert_eq!(r, 0.0);
                assert_eq!(pop(REWARD_PLUS) + pop(REWARD_MINUS), 0.0);
            }
            ep.output(t, &[1.0, 0.0]);
        }
        // 28 cues of 100 steps x 10 channels at 0.04: 40 spikes a cue.
        let cues = ep.sides.iter().flatten().count() as f64;
        assert!(((per_cue[0] + per_cue[1]) / cues - 40.0).abs() < 4.0);
        assert!((noise / (8880.0 * 10.0) - 0.01).abs() < 0.001, "{noise}");
        assert_eq!(ep.right.len(), 4);
        for (trial, &r) in ep.right.iter().enumerate() {
            assert_eq!(r, ep.majority(trial) == 0);
        }
        let e = Evidence::task(&json!({"cues": 6}), false)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("`cues` (6) must be odd"), "{e}");
    }
}
