//! `w1`: W1's episode (`W1.md`) as a task: Bernoulli spike inputs on every channel of
//! the network's `input`, one class per episode, loss = cross-entropy of the readout's
//! mean over the last `last` steps. W1.md draws the class independently of the inputs
//! (`contrast = 0`: nothing to learn but the class prior); the default
//! `contrast = 0.5` makes the class visible: the channels of the class's group (the
//! channels split into as many contiguous groups as the readout has classes) fire at
//! `rate (1 + contrast)`, the others at `rate (1 - contrast / (K - 1))`. Open loop: the
//! inputs do not depend on the network. Metric: accuracy (argmax of the readout's mean
//! over the last steps).
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `steps` | 1000 | steps per episode |
//! | `rate` | 0.02 | mean spike probability per channel and step |
//! | `contrast` | 0.5 | how much the class changes the rates, in `[0, 1]` |
//! | `last` | 50 | the readout is averaged over the last `last` steps |
//! | `input` | the network's one `input` | the input that receives the spikes |
//! | `readout` | the network's first readout | its size is the number of classes |

use super::env::{spike, Env, EnvTask, Options, Window};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use search::train::TrainError;
use serde_json::{json, Value};
use std::sync::Arc;

/// The options of `w1`.
#[derive(Clone, Debug, PartialEq)]
pub struct W1 {
    /// Steps per episode.
    pub steps: usize,
    /// Mean spike probability per channel and step.
    pub rate: f64,
    /// How much the class changes the rates.
    pub contrast: f64,
    /// Steps the readout is averaged over, at the end.
    pub last: usize,
}

impl W1 {
    /// The task with `options` (a JSON object; unknown fields are errors).
    pub fn task(options: &Value) -> Result<EnvTask, TrainError> {
        let mut o = Options::new("w1", options)?;
        let w = W1 {
            steps: o.count("steps", crate::w1::STEPS)?,
            rate: o.number("rate", crate::w1::P_IN, 0.0, 1.0)?,
            contrast: o.number("contrast", 0.5, 0.0, 1.0)?,
            last: o.count("last", crate::w1::LAST)?,
        };
        let (input, readout) = (o.name("input")?, o.name("readout")?);
        if w.last > w.steps {
            return Err(o.error(format!(
                "`last` ({}) is more than `steps` ({})",
                w.last, w.steps
            )));
        }
        if w.rate * (1.0 + w.contrast) > 1.0 {
            return Err(o.error("`rate * (1 + contrast)` must be at most 1".into()));
        }
        o.finish()?;
        let opts = json!({
            "steps": w.steps, "rate": w.rate, "contrast": w.contrast, "last": w.last,
            "input": input, "readout": readout,
        });
        let steps = w.steps;
        Ok(EnvTask {
            name: "w1".into(),
            options: opts,
            metric: "accuracy".into(),
            higher_is_better: true,
            steps,
            channels: None,
            classes: None,
            input,
            readout,
            make: Arc::new(move |seed, channels, classes| {
                Box::new(w.episode(seed, channels, classes)) as Box<dyn Env>
            }),
        })
    }

    /// The spike probability of channel `j` of `channels` when the class is `c` of
    /// `classes`.
    pub fn rate_of(&self, j: usize, c: usize, channels: usize, classes: usize) -> f64 {
        let group = j * classes / channels.max(1);
        if group == c {
            self.rate * (1.0 + self.contrast)
        } else {
            self.rate * (1.0 - self.contrast / (classes - 1).max(1) as f64)
        }
    }

    /// An episode drawn from `seed`.
    pub fn episode(&self, seed: u64, channels: usize, classes: usize) -> W1Episode {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let label = rng.gen_range(0..classes.max(1));
        W1Episode {
            w: self.clone(),
            channels,
            classes,
            label,
            rng,
            window: Window::default(),
            loss: 0.0,
            right: false,
        }
    }
}

/// One episode of [`W1`].
pub struct W1Episode {
    w: W1,
    channels: usize,
    classes: usize,
    /// The episode's class.
    pub label: usize,
    rng: ChaCha8Rng,
    window: Window,
    loss: f64,
    right: bool,
}

impl Env for W1Episode {
    fn steps(&self) -> usize {
        self.w.steps
    }

    fn input(&mut self, _: usize, x: &mut [f64]) -> f64 {
        for (j, v) in x.iter_mut().enumerate() {
            let p = self.w.rate_of(j, self.label, self.channels, self.classes);
            *v = spike(&mut self.rng, p);
        }
        0.0
    }

    fn output(&mut self, t: usize, y: &[f64]) -> Vec<(usize, Vec<f64>)> {
        if t + self.w.last < self.w.steps {
            return Vec::new();
        }
        self.window.add(t, y);
        if t + 1 < self.w.steps {
            return Vec::new();
        }
        let (decision, loss, seeds) = self.window.close(self.label, 1);
        self.loss = loss;
        self.right = decision == self.label;
        seeds
    }

    fn loss(&self) -> f64 {
        self.loss
    }

    fn metric(&self) -> f64 {
        f64::from(u8::from(self.right))
    }

    fn trial_rewards(&self) -> Vec<f64> {
        vec![if self.right { 1.0 } else { -1.0 }]
    }
}
