//! `error-driven`: Jordan et al.'s error-driven (teacher-student) learning task
//! (J. Jordan, M. Schmidt, W. Senn & M. A. Petrovici 2021, "Evolving interpretable
//! plasticity for spiking networks", eLife 10:e66273; code:
//! github.com/Happy-Algorithms-League/e2l-cgp-snn, `experiments/error_driven`), for
//! rediscovering `sbar (v - u)` with `ruleopt search` (network:
//! `rules/search/error_driven.rule`).
//!
//! Per episode, `inputs` (5) Poisson channels, each with its own rate drawn from
//! `U(rate_lo, rate_hi)` (150-850 Hz, as there; a spike probability per step of rate
//! times dt = 1 ms). The network holds the teacher (random weights drawn per episode by
//! its own initialiser) and the student; its readout is the student's potential minus
//! the teacher's, `u - v`, one value per step. No reward is given.
//!
//! What follows Jordan et al. (`sim.py`, `main.py`, `sim_params.json`): 5 inputs, the
//! rate range, the fitness as minus the root of the summed squared difference of the
//! potentials after skipping the first 10% of the episode (initial transients). What
//! differs: episodes of `steps` (2000) steps of 1 ms (there 10 s at dt = 0.01 ms), and
//! the error is the root *mean* square (so that it does not grow with the episode).
//!
//! Metric: the RMS of `u - v` over the steps after the first `skip` fraction: **lower
//! is better** (0 is a student that follows the teacher exactly; a student whose
//! weights never move scores its initial error; a diverging one, whose error is not
//! finite, scores infinity). Loss (its smooth counterpart): the
//! mean square of `u - v` over the same steps.
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `steps` | 2000 | steps per episode |
//! | `inputs` | 5 | input channels |
//! | `rate_lo` | 150 | lowest input rate (Hz) |
//! | `rate_hi` | 850 | highest input rate (Hz), at most 1000 (one spike per step) |
//! | `skip` | 0.1 | fraction of the episode not scored (transients) |
//! | `input` | the network's one `input` | the input that receives the spikes |
//! | `readout` | the network's first readout | `u - v` (1 value) |

use super::env::{spike, Env, EnvTask, Options};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use search::train::TrainError;
use serde_json::{json, Value};
use std::sync::Arc;

/// The task's options.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorDriven {
    /// Steps per episode.
    pub steps: usize,
    /// Input channels.
    pub inputs: usize,
    /// Lowest input rate, Hz.
    pub rate_lo: f64,
    /// Highest input rate, Hz.
    pub rate_hi: f64,
    /// Fraction of the episode not scored.
    pub skip: f64,
}

impl Default for ErrorDriven {
    fn default() -> Self {
        ErrorDriven {
            steps: 2000,
            inputs: 5,
            rate_lo: 150.0,
            rate_hi: 850.0,
            skip: 0.1,
        }
    }
}

impl ErrorDriven {
    /// The task with `options` (a JSON object; unknown fields are errors).
    pub fn task(options: &Value) -> Result<EnvTask, TrainError> {
        let d = ErrorDriven::default();
        let mut o = Options::new("error-driven", options)?;
        let c = ErrorDriven {
            steps: o.count("steps", d.steps)?,
            inputs: o.count("inputs", d.inputs)?,
            rate_lo: o.number("rate_lo", d.rate_lo, 0.0, 1000.0)?,
            rate_hi: o.number("rate_hi", d.rate_hi, 0.0, 1000.0)?,
            skip: o.number("skip", d.skip, 0.0, 0.99)?,
        };
        let (input, readout) = (o.name("input")?, o.name("readout")?);
        if c.rate_lo > c.rate_hi {
            return Err(o.error(format!(
                "`rate_lo` ({}) is more than `rate_hi` ({})",
                c.rate_lo, c.rate_hi
            )));
        }
        o.finish()?;
        let opts = json!({
            "steps": c.steps, "inputs": c.inputs, "rate_lo": c.rate_lo,
            "rate_hi": c.rate_hi, "skip": c.skip, "input": input, "readout": readout,
        });
        Ok(EnvTask {
            name: "error-driven".into(),
            options: opts,
            metric: "rmse".into(),
            higher_is_better: false,
            steps: c.steps,
            channels: Some(c.inputs),
            classes: Some(1),
            input,
            readout,
            make: Arc::new(move |seed, _, _| Box::new(c.episode(seed)) as Box<dyn Env>),
        })
    }

    /// The first scored step.
    pub fn first_scored(&self) -> usize {
        ((self.skip * self.steps as f64) as usize).min(self.steps - 1)
    }

    /// A new episode drawn from `seed`.
    pub fn episode(&self, seed: u64) -> ErrorDrivenEpisode {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let p = (0..self.inputs)
            .map(|_| rng.gen_range(self.rate_lo..=self.rate_hi) * 1e-3)
            .collect();
        ErrorDrivenEpisode {
            task: self.clone(),
            p,
            rng,
            sum_sq: 0.0,
        }
    }
}

/// One episode of [`ErrorDriven`].
pub struct ErrorDrivenEpisode {
    task: ErrorDriven,
    /// Spike probability per step of each channel.
    p: Vec<f64>,
    rng: ChaCha8Rng,
    /// Sum of `(u - v)^2` over the scored steps so far.
    sum_sq: f64,
}

impl ErrorDrivenEpisode {
    fn scored(&self) -> f64 {
        (self.task.steps - self.task.first_scored()) as f64
    }
}

impl Env for ErrorDrivenEpisode {
    fn steps(&self) -> usize {
        self.task.steps
    }

    fn input(&mut self, _: usize, x: &mut [f64]) -> f64 {
        for (xj, &p) in x.iter_mut().zip(&self.p) {
            *xj = spike(&mut self.rng, p);
        }
        0.0
    }

    fn output(&mut self, t: usize, y: &[f64]) -> Vec<(usize, Vec<f64>)> {
        if t < self.task.first_scored() {
            return Vec::new();
        }
        let e = y.first().copied().unwrap_or(0.0);
        self.sum_sq += e * e;
        vec![(t, vec![2.0 * e / self.scored()])]
    }

    fn loss(&self) -> f64 {
        self.sum_sq / self.scored()
    }

    fn metric(&self) -> f64 {
        let rmse = self.loss().sqrt();
        if rmse.is_finite() {
            rmse
        } else {
            f64::INFINITY
        }
    }

    fn trial_rewards(&self) -> Vec<f64> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_drawn_per_episode_and_the_error_is_the_rms_of_the_readout() {
        let task = ErrorDriven::default();
        let mut ep = task.episode(4);
        assert!(ep.p.iter().all(|p| (0.15..=0.85).contains(p)));
        assert_ne!(ep.p, task.episode(5).p);
        let mut x = vec![0.0; 5];
        let mut count = [0.0; 5];
        let mut seeds = 0;
        for t in 0..task.steps {
            x.iter_mut().for_each(|v| *v = 0.0);
            assert_eq!(ep.input(t, &mut x), 0.0);
            count.iter_mut().zip(&x).for_each(|(c, v)| *c += v);
            // A readout of 3 before the scored part, then alternately 1 and -1.
            let y = if t < 200 {
                3.0
            } else {
                1.0 - 2.0 * (t % 2) as f64
            };
            seeds += ep.output(t, &[y]).len();
        }
        assert_eq!(seeds, 1800);
        assert!((ep.metric() - 1.0).abs() < 1e-12, "{}", ep.metric());
        for (c, p) in count.iter().zip(&ep.p) {
            assert!((c / 2000.0 - p).abs() < 0.05, "{c} {p}");
        }
    }

    #[test]
    fn options_are_checked_by_name() {
        let err = |o: Value| ErrorDriven::task(&o).err().unwrap().to_string();
        assert!(err(json!({"rate_lo": 900})).contains("`rate_lo` (900) is more than `rate_hi`"));
        assert!(err(json!({"rate_hi": 2000})).contains("`rate_hi` must be a number"));
        assert!(err(json!({"skip": 1})).contains("`skip`"));
        assert!(err(json!({"step": 10})).contains("unknown option `step`"));
    }
}
