//! `t-maze`: the T-maze with switching reward of Soltoggio et al. (2008, "Evolutionary
//! advantages of neuromodulated plasticity in dynamic, reward-based scenarios",
//! Artificial Life XI), in spikes.
//!
//! Each trial the agent leaves home, walks along a corridor to the junction of a T,
//! turns left or right and arrives at the end of that arm, where it finds a high
//! (`big`, 1.0) or a low (`small`, 0.2) reward. One side holds the high reward; it moves
//! to the other side once, unannounced, at a trial drawn uniformly in the middle third
//! of the episode (from `trials / 3` to before `2 trials / 3`). The high side before the
//! switch is drawn anew each episode. The network must find the high side from the
//! rewards, keep going there, and turn the other way once the reward drops.
//!
//! Trial layout, one window (`window` steps, 20 ms) per location: home, corridor,
//! junction (the response window: readout class 0 turns left, 1 right), arrival (the
//! reward is fed back). Both arms' ends are the same arrival location, as in the paper:
//! which way it went is only in the network's own activity. Channels: 5 populations of
//! `size` channels, in this order: home, corridor, junction, arrival, reward. The
//! population of the current location fires at `rate` per step and channel, the others
//! are silent; in the arrival window the reward population fires at `rate × reward`
//! (a rate code of the amount) and the `reward` signal is the reward (0 at other steps).
//!
//! Loss: cross-entropy of the junction window's mean readout against the side that
//! currently holds the high reward, averaged over the trials. Metric: mean reward over
//! the second half of the trials (the maximum is `big`, 1.0; turning at random earns
//! `(big + small) / 2`, 0.6). The network needs an input of `5 size` channels (20) and
//! a readout of 2. Default episode: 100 trials of 80 steps, 8000 steps.
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `trials` | 100 | trials per episode |
//! | `window` | 20 | steps per location (home, corridor, junction, arrival) |
//! | `size` | 4 | channels per population |
//! | `rate` | 0.2 | spike probability per step of an active channel |
//! | `big` | 1.0 | the high reward, in `[0, 1]` |
//! | `small` | 0.2 | the low reward, in `[0, big)` |
//! | `input` | the network's one `input` | the input that receives the spikes |
//! | `readout` | the network's first readout | it must have 2 values |

use super::env::{second_half_mean, spike, Env, EnvTask, Options, Window};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use search::train::TrainError;
use serde_json::{json, Value};
use std::sync::Arc;

/// Locations, in the order of a trial's windows and of the channel populations:
/// home (0), corridor (1), junction, arrival.
const JUNCTION: usize = 2;
const ARRIVAL: usize = 3;
/// The reward population (after the four locations').
const REWARD: usize = 4;

/// The task's options.
#[derive(Clone, Debug, PartialEq)]
pub struct TMaze {
    /// Trials per episode.
    pub trials: usize,
    /// Steps per location.
    pub window: usize,
    /// Channels per population.
    pub size: usize,
    /// Spike probability per step of an active channel.
    pub rate: f64,
    /// The high reward.
    pub big: f64,
    /// The low reward.
    pub small: f64,
}

impl Default for TMaze {
    fn default() -> Self {
        TMaze {
            trials: 100,
            window: 20,
            size: 4,
            rate: 0.2,
            big: 1.0,
            small: 0.2,
        }
    }
}

impl TMaze {
    /// The task with `options` (a JSON object; unknown fields are errors).
    pub fn task(options: &Value) -> Result<EnvTask, TrainError> {
        let d = TMaze::default();
        let mut o = Options::new("t-maze", options)?;
        let c = TMaze {
            trials: o.count("trials", d.trials)?,
            window: o.count("window", d.window)?,
            size: o.count("size", d.size)?,
            rate: o.number("rate", d.rate, 0.0, 1.0)?,
            big: o.number("big", d.big, 0.0, 1.0)?,
            small: o.number("small", d.small, 0.0, 1.0)?,
        };
        let (input, readout) = (o.name("input")?, o.name("readout")?);
        if c.small >= c.big {
            return Err(o.error(format!(
                "`small` ({}) must be less than `big` ({})",
                c.small, c.big
            )));
        }
        o.finish()?;
        let opts = json!({
            "trials": c.trials, "window": c.window, "size": c.size, "rate": c.rate,
            "big": c.big, "small": c.small, "input": input, "readout": readout,
        });
        Ok(EnvTask {
            name: "t-maze".into(),
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
        5 * self.size
    }

    /// Steps per episode.
    pub fn steps(&self) -> usize {
        self.trials * 4 * self.window
    }

    /// (trial, location 0..4, step in the window) of step `t`.
    pub fn phase(&self, t: usize) -> (usize, usize, usize) {
        let w = self.window;
        (t / (4 * w), (t / w) % 4, t % w)
    }

    /// A new episode drawn from `seed`.
    pub fn episode(&self, seed: u64) -> TMazeEpisode {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let first = rng.gen_range(0..2);
        let lo = self.trials / 3;
        let hi = (2 * self.trials / 3).max(lo + 1);
        let switch = rng.gen_range(lo..hi);
        TMazeEpisode {
            task: self.clone(),
            first,
            switch,
            rng,
            window: Window::default(),
            rewards: Vec::new(),
            loss: 0.0,
        }
    }
}

/// One episode of [`TMaze`].
pub struct TMazeEpisode {
    task: TMaze,
    /// The high side (0 left, 1 right) before the switch.
    first: usize,
    /// The first trial whose high side is the other one.
    switch: usize,
    rng: ChaCha8Rng,
    window: Window,
    rewards: Vec<f64>,
    loss: f64,
}

impl TMazeEpisode {
    /// The side holding the high reward in `trial`.
    pub fn high_side(&self, trial: usize) -> usize {
        if trial < self.switch {
            self.first
        } else {
            1 - self.first
        }
    }
}

impl Env for TMazeEpisode {
    fn steps(&self) -> usize {
        self.task.steps()
    }

    fn input(&mut self, t: usize, x: &mut [f64]) -> f64 {
        let (trial, loc, _) = self.task.phase(t);
        let (n, rate) = (self.task.size, self.task.rate);
        for xj in &mut x[loc * n..(loc + 1) * n] {
            *xj = spike(&mut self.rng, rate);
        }
        if loc != ARRIVAL {
            return 0.0;
        }
        let r = self.rewards.get(trial).copied().unwrap_or(0.0);
        for xj in &mut x[REWARD * n..(REWARD + 1) * n] {
            *xj = spike(&mut self.rng, rate * r);
        }
        r
    }

    fn output(&mut self, t: usize, y: &[f64]) -> Vec<(usize, Vec<f64>)> {
        let (trial, loc, k) = self.task.phase(t);
        if loc != JUNCTION {
            return Vec::new();
        }
        self.window.add(t, y);
        if k + 1 < self.task.window {
            return Vec::new();
        }
        let answer = self.high_side(trial);
        let (decision, loss, seeds) = self.window.close(answer, self.task.trials);
        self.loss += loss;
        self.rewards.push(if decision == answer {
            self.task.big
        } else {
            self.task.small
        });
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

    /// Win-stay lose-shift on the reward signal: turns where it turned last time if
    /// that earned more than halfway between the rewards, else the other way.
    struct Oracle {
        task: TMaze,
        choice: usize,
        /// The reward of the last trial, once seen.
        last: Option<f64>,
    }

    impl Policy for Oracle {
        fn act(&mut self, t: usize, _: &[f64], reward: f64) -> Vec<f64> {
            let (_, loc, k) = self.task.phase(t);
            if loc == JUNCTION && k == 0 {
                if let Some(r) = self.last.take() {
                    if r < (self.task.big + self.task.small) / 2.0 {
                        self.choice = 1 - self.choice;
                    }
                }
            }
            if loc == ARRIVAL && k == 0 {
                self.last = Some(reward);
            }
            let mut y = vec![0.0, 0.0];
            y[self.choice] = 1.0;
            y
        }
    }

    fn mean_metric(policy: &mut dyn FnMut() -> Box<dyn Policy>, episodes: u64) -> f64 {
        let task = TMaze::default();
        mean_policy_metric(episodes, task.channels(), |s| task.episode(s), policy)
    }

    #[test]
    fn win_stay_lose_shift_earns_nearly_all_the_reward_and_chance_earns_the_mean() {
        let task = TMaze::default();
        let oracle = mean_metric(
            &mut || {
                Box::new(Oracle {
                    task: task.clone(),
                    choice: 0,
                    last: None,
                })
            },
            40,
        );
        // At most one low reward in the second half: at the switch.
        assert!(oracle > 0.98, "oracle {oracle}");
        let mut seed = 0;
        let random = mean_metric(
            &mut || {
                seed += 1;
                Box::new(RandomPolicy {
                    rng: ChaCha8Rng::seed_from_u64(seed),
                    classes: 2,
                })
            },
            40,
        );
        assert!((random - 0.6).abs() < 0.03, "random {random}");
    }

    #[test]
    fn episodes_are_what_the_module_doc_says() {
        let task = TMaze::default();
        assert_eq!(task.steps(), 8000);
        assert_eq!(task.channels(), 20);
        for seed in 0..50 {
            let ep = task.episode(seed);
            assert!((33..66).contains(&ep.switch), "{}", ep.switch);
            assert_ne!(ep.high_side(0), ep.high_side(99));
            assert_eq!(ep.high_side(ep.switch - 1), ep.first);
        }
        // Always turning left: each window drives its location's population only, the
        // reward comes back in the arrival window, as spikes and as the signal.
        let mut ep = task.episode(7);
        let mut x = vec![0.0; 20];
        let mut counts = [[0.0; 5]; 4];
        for t in 0..task.steps() {
            x.iter_mut().for_each(|v| *v = 0.0);
            let r = ep.input(t, &mut x);
            let (trial, loc, _) = task.phase(t);
            for (p, c) in counts[loc].iter_mut().enumerate() {
                *c += x[p * 4..(p + 1) * 4].iter().sum::<f64>();
            }
            if loc == ARRIVAL {
                assert_eq!(r, ep.rewards[trial]);
            } else {
                assert_eq!(r, 0.0);
            }
            ep.output(t, &[1.0, 0.0]);
        }
        for (loc, c) in counts.iter().enumerate() {
            for (p, &n) in c.iter().enumerate() {
                let active = p == loc || (p == REWARD && loc == ARRIVAL);
                assert_eq!(n > 0.0, active, "location {loc}, population {p}: {n}");
            }
        }
        // 100 trials x 20 steps x 4 channels x 0.2.
        assert!((counts[0][0] - 1600.0).abs() < 200.0);
        assert!((counts[1][1] - 1600.0).abs() < 200.0);
        assert_eq!(ep.rewards.len(), 100);
        let left: Vec<bool> = (0..100).map(|i| ep.high_side(i) == 0).collect();
        for (r, l) in ep.rewards.iter().zip(&left) {
            assert_eq!(*r, if *l { 1.0 } else { 0.2 });
        }
        assert!((ep.metric() - ep.rewards[50..].iter().sum::<f64>() / 50.0).abs() < 1e-12);
        let e = TMaze::task(&json!({"small": 1.0}))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("`small` (1) must be less than `big` (1)"), "{e}");
    }
}
