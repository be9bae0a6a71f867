//! Tasks for `ruleopt train`, selected by name with options as JSON.
//!
//! - `w1` — W1's episode (`W1.md`): Bernoulli spike inputs on every channel of the
//!   network's `input`, a class per episode, loss = cross-entropy of the readout's mean
//!   over the last `last` steps. W1.md draws the class independently of the inputs
//!   (`contrast = 0`, the benchmark's setting: nothing to learn but the class prior);
//!   the default `contrast = 0.5` makes the class visible: the channels of the class's
//!   group (channels split into as many contiguous groups as the readout has classes)
//!   fire at `rate (1 + contrast)`, the others at `rate (1 - contrast / (K - 1))`.
//!   Metric: accuracy (argmax of the readout's mean).
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `steps` | 1000 | steps per episode |
//! | `rate` | 0.02 | mean spike probability per channel and step |
//! | `contrast` | 0.5 | how much the class changes the rates, in `[0, 1]` |
//! | `last` | 50 | the readout is averaged over the last `last` steps |
//! | `input` | the network's one `input` | the input that receives the spikes |
//! | `readout` | the network's first readout | its size is the number of classes |

pub mod cue_reward;
pub mod env;

use crate::w1::Inputs;
use jit::grad::EpisodeLoss;
use jit::run::{Elem, Episode};
use lang::diff::Adjoint;
use lang::ir::{Module, Space, VarId, VarKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use search::train::{Score, Task, TrainError};
use serde_json::{json, Value};

/// The names `--task` accepts.
pub const TASKS: &[&str] = &["w1"];

/// A batch of classification episodes: spike inputs into `x`, the readout `y`
/// averaged over the last steps, cross-entropy seeded into `adj_y`.
pub struct ClassifyBatch {
    /// Inputs and labels.
    pub inputs: Inputs,
    /// Input channels per episode.
    pub channels: usize,
    /// The input variable.
    pub x: VarId,
    /// The readout variable (one value per class).
    pub y: VarId,
    /// Its adjoint.
    pub adj_y: VarId,
    /// Classes (the readout's size).
    pub classes: usize,
    /// Steps averaged at the end.
    pub last: usize,
}

impl ClassifyBatch {
    /// The batch for module `m` (adjoint `adj`): `x` and `y` by variable name.
    pub fn new(
        m: &Module,
        adj: &Adjoint,
        inputs: Inputs,
        x: VarId,
        y: VarId,
        last: usize,
    ) -> Result<ClassifyBatch, String> {
        let adj_y = adj
            .adj
            .iter()
            .find(|(s, _)| *s == y)
            .map(|&(_, a)| a)
            .ok_or_else(|| format!("`{}` has no adjoint (is it a state?)", m.vars[y].name))?;
        let channels = m.space_size(m.vars[x].space);
        let classes = m.space_size(m.vars[y].space);
        if inputs.x.len() != inputs.steps * inputs.batch * channels {
            return Err(format!(
                "{} input values for {} steps x {} episodes x {channels} channels",
                inputs.x.len(),
                inputs.steps,
                inputs.batch
            ));
        }
        Ok(ClassifyBatch {
            inputs,
            channels,
            x,
            y,
            adj_y,
            classes,
            last: last.max(1),
        })
    }

    fn window(&self) -> (usize, usize) {
        let last = self.last.min(self.inputs.steps);
        (self.inputs.steps - last, last)
    }

    /// The readout's mean over the last steps, per episode, flattened `[b][class]`.
    pub fn logits(&self, accs: &[Vec<f64>]) -> Vec<f64> {
        let (_, last) = self.window();
        accs.iter()
            .flat_map(|a| {
                let mut a = a.clone();
                a.resize(self.classes, 0.0);
                a.into_iter().map(move |v| v / last as f64)
            })
            .collect()
    }
}

impl<T: Elem> EpisodeLoss<T> for ClassifyBatch {
    /// Sum of the readout over the last steps.
    type Acc = Vec<f64>;

    fn inputs(&self, b: usize, t: usize, ep: &mut Episode<'_, T>) {
        let k = self.inputs.batch * self.channels;
        let x = &self.inputs.x[t * k + b * self.channels..t * k + (b + 1) * self.channels];
        for (d, &s) in ep.var(self.x).iter_mut().zip(x) {
            *d = T::from_f64(f64::from(s));
        }
    }

    fn observe(&self, _: usize, t: usize, ep: &mut Episode<'_, T>, acc: &mut Vec<f64>) {
        let (from, _) = self.window();
        if t >= from {
            acc.resize(self.classes, 0.0);
            for (a, y) in acc.iter_mut().zip(ep.var(self.y).iter()) {
                *a += y.to_f64();
            }
        }
    }

    fn seed(&self, b: usize, t: usize, ep: &mut Episode<'_, T>, acc: &Vec<f64>) {
        let (from, last) = self.window();
        if t < from {
            return;
        }
        // dL/dy(t) = (softmax(mean y) - onehot(label)) / (B * last).
        let mean: Vec<f64> = acc.iter().map(|a| a / last as f64).collect();
        let mx = mean.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = mean.iter().map(|v| (v - mx).exp()).sum();
        let scale = 1.0 / (self.inputs.batch * last) as f64;
        for (k, d) in ep.var(self.adj_y).iter_mut().enumerate() {
            let p = (mean[k] - mx).exp() / z;
            let onehot = f64::from(u8::from(self.inputs.labels[b] == k));
            *d = T::from_f64(d.to_f64() + (p - onehot) * scale);
        }
    }
}

/// Mean over episodes of `logsumexp(logits[b]) - logits[b][label[b]]` (`logits`
/// flattened `[b][class]`), and the fraction of episodes whose largest logit is the
/// label's.
pub fn cross_entropy_and_accuracy(logits: &[f64], classes: usize, labels: &[usize]) -> Score {
    let mut loss = 0.0;
    let mut right = 0usize;
    for (&c, l) in labels.iter().zip(logits.chunks(classes)) {
        let mx = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = mx + l.iter().map(|&v| (v - mx).exp()).sum::<f64>().ln();
        loss += lse - l[c];
        let best = (0..l.len()).fold(0, |b, k| if l[k] > l[b] { k } else { b });
        right += usize::from(best == c);
    }
    let n = labels.len().max(1) as f64;
    Score {
        loss: loss / n,
        metric: right as f64 / n,
    }
}

/// The `w1` task (see the module doc).
#[derive(Clone, Debug, PartialEq)]
pub struct W1Task {
    steps: usize,
    rate: f64,
    contrast: f64,
    last: usize,
    input: Option<String>,
    readout: Option<String>,
}

impl W1Task {
    /// The task with `options` (a JSON object; unknown fields are errors).
    pub fn new(options: &Value) -> Result<W1Task, TrainError> {
        let bad = |msg: String| TrainError::Task(format!("w1: {msg}"));
        let obj = match options {
            Value::Null => serde_json::Map::new(),
            Value::Object(o) => o.clone(),
            _ => return Err(bad("options must be a JSON object".into())),
        };
        const FIELDS: [&str; 6] = ["steps", "rate", "contrast", "last", "input", "readout"];
        for k in obj.keys() {
            if !FIELDS.contains(&k.as_str()) {
                let mut msg = format!(
                    "unknown option `{k}`; the options are {}",
                    FIELDS.join(", ")
                );
                if let Some(h) = lang::diag::did_you_mean(k, FIELDS) {
                    msg = format!("{msg} ({h})");
                }
                return Err(bad(msg));
            }
        }
        let uint = |k: &str, d: usize| -> Result<usize, TrainError> {
            match obj.get(k) {
                None => Ok(d),
                Some(v) => v
                    .as_u64()
                    .filter(|&n| n >= 1)
                    .map(|n| n as usize)
                    .ok_or_else(|| bad(format!("`{k}` must be a positive integer, not {v}"))),
            }
        };
        let num = |k: &str, d: f64, lo: f64, hi: f64| -> Result<f64, TrainError> {
            match obj.get(k) {
                None => Ok(d),
                Some(v) => v
                    .as_f64()
                    .filter(|x| (lo..=hi).contains(x))
                    .ok_or_else(|| bad(format!("`{k}` must be a number in [{lo}, {hi}], not {v}"))),
            }
        };
        let text = |k: &str| -> Result<Option<String>, TrainError> {
            match obj.get(k) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(v) => Err(bad(format!("`{k}` must be a name, not {v}"))),
            }
        };
        let task = W1Task {
            steps: uint("steps", crate::w1::STEPS)?,
            rate: num("rate", crate::w1::P_IN, 0.0, 1.0)?,
            contrast: num("contrast", 0.5, 0.0, 1.0)?,
            last: uint("last", crate::w1::LAST)?,
            input: text("input")?,
            readout: text("readout")?,
        };
        if task.last > task.steps {
            return Err(bad(format!(
                "`last` ({}) is more than `steps` ({})",
                task.last, task.steps
            )));
        }
        if task.rate * (1.0 + task.contrast) > 1.0 {
            return Err(bad("`rate * (1 + contrast)` must be at most 1".into()));
        }
        Ok(task)
    }

    /// The input and readout variables of `m` this task uses.
    fn vars(&self, m: &Module) -> Result<(VarId, VarId), TrainError> {
        let bad = |msg: String| TrainError::Task(format!("w1 on network `{}`: {msg}", m.name));
        let inputs: Vec<(VarId, &str)> = m
            .vars
            .iter()
            .filter(|(_, v)| v.kind == VarKind::Input && v.name.ends_with(".out"))
            .map(|(h, v)| (h, v.name.trim_end_matches(".out")))
            .collect();
        let x = match &self.input {
            Some(name) => inputs
                .iter()
                .find(|(_, n)| n == name)
                .map(|&(h, _)| h)
                .ok_or_else(|| bad(format!("no input named `{name}`")))?,
            None => match inputs.as_slice() {
                [(h, _)] => *h,
                [] => return Err(bad("it has no `input`".into())),
                _ => {
                    return Err(bad(format!(
                        "it has several inputs ({}): choose one with the `input` option",
                        inputs
                            .iter()
                            .map(|(_, n)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
            },
        };
        let y = match &self.readout {
            Some(name) => m
                .readouts
                .iter()
                .find(|(n, _)| n == name)
                .map(|&(_, v)| v)
                .ok_or_else(|| bad(format!("no readout named `{name}`")))?,
            None => m
                .readouts
                .first()
                .map(|&(_, v)| v)
                .ok_or_else(|| bad("it has no `readout`".into()))?,
        };
        let classes = match m.vars[y].space {
            Space::Pop(p) => m.pops[p].size,
            _ => 1,
        };
        if classes < 2 {
            return Err(bad(format!(
                "the readout `{}` has {classes} value(s): classification needs one per class (at least 2)",
                m.vars[y].name
            )));
        }
        Ok((x, y))
    }

    /// Episodes drawn from `seed`: a class each, then the spikes.
    pub fn inputs(&self, channels: usize, classes: usize, episodes: usize, seed: u64) -> Inputs {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(3);
        let labels: Vec<usize> = (0..episodes).map(|_| rng.gen_range(0..classes)).collect();
        let low = self.rate * (1.0 - self.contrast / (classes - 1).max(1) as f64);
        let high = self.rate * (1.0 + self.contrast);
        let group = |j: usize| j * classes / channels.max(1);
        let mut x = Vec::with_capacity(self.steps * episodes * channels);
        for _ in 0..self.steps {
            for &c in &labels {
                for j in 0..channels {
                    let p = if group(j) == c { high } else { low };
                    x.push(if rng.gen::<f64>() < p { 1.0 } else { 0.0 });
                }
            }
        }
        Inputs {
            steps: self.steps,
            batch: episodes,
            x,
            labels,
        }
    }
}

impl Task for W1Task {
    type Acc = Vec<f64>;
    type Batch = ClassifyBatch;

    fn name(&self) -> &str {
        "w1"
    }

    fn options(&self) -> Value {
        json!({
            "steps": self.steps, "rate": self.rate, "contrast": self.contrast,
            "last": self.last, "input": self.input, "readout": self.readout,
        })
    }

    fn metric_name(&self) -> &str {
        "accuracy"
    }

    fn steps(&self) -> usize {
        self.steps
    }

    fn batch(
        &self,
        m: &Module,
        adj: &Adjoint,
        episodes: usize,
        seed: u64,
    ) -> Result<ClassifyBatch, TrainError> {
        let (x, y) = self.vars(m)?;
        let inputs = self.inputs(
            m.space_size(m.vars[x].space),
            m.space_size(m.vars[y].space),
            episodes,
            seed,
        );
        ClassifyBatch::new(m, adj, inputs, x, y, self.last).map_err(TrainError::Task)
    }

    fn score(&self, batch: &ClassifyBatch, accs: &[Vec<f64>]) -> Score {
        cross_entropy_and_accuracy(&batch.logits(accs), batch.classes, &batch.inputs.labels)
    }
}

/// The task named `name` with `options`.
pub fn by_name(name: &str, options: &Value) -> Result<W1Task, TrainError> {
    match name {
        "w1" => W1Task::new(options),
        _ => {
            let mut msg = format!("unknown task `{name}`; the tasks are {}", TASKS.join(", "));
            if let Some(h) = lang::diag::did_you_mean(name, TASKS.iter().copied()) {
                msg = format!("{msg} ({h})");
            }
            Err(TrainError::Task(msg))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use search::train::{TrainConfig, Trainer};

    fn small_w1() -> Module {
        crate::w1::module(12).expect("W1 lowers")
    }

    fn task() -> W1Task {
        W1Task::new(&json!({"steps": 120, "contrast": 0.8, "last": 20})).unwrap()
    }

    fn cfg(iterations: usize) -> TrainConfig {
        TrainConfig {
            iterations,
            batch: 6,
            lr: 0.01,
            seed: 3,
            ..TrainConfig::default()
        }
    }

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("ruleopt-train-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn inputs_follow_the_class_and_rates() {
        let t = W1Task::new(&json!({"steps": 4000, "rate": 0.05, "contrast": 0.6})).unwrap();
        let inp = t.inputs(40, 2, 4, 9);
        assert_eq!(inp.x.len(), 4000 * 4 * 40);
        for b in 0..4 {
            let c = inp.labels[b];
            let mut count = [0.0; 2];
            for s in 0..4000 {
                for j in 0..40 {
                    count[j * 2 / 40] += f64::from(inp.x[(s * 4 + b) * 40 + j]);
                }
            }
            let rate = |g: usize| count[g] / (4000.0 * 20.0);
            assert!(
                (rate(c) - 0.08).abs() < 0.006,
                "{} {}",
                rate(c),
                rate(1 - c)
            );
            assert!(
                (rate(1 - c) - 0.02).abs() < 0.004,
                "{} {}",
                rate(c),
                rate(1 - c)
            );
        }
        // Contrast 0 is W1.md's distribution: every channel at `rate`.
        let t0 = W1Task::new(&json!({"contrast": 0})).unwrap();
        let inp = t0.inputs(40, 2, 8, 1);
        let mean = inp.x.iter().map(|&v| f64::from(v)).sum::<f64>() / inp.x.len() as f64;
        assert!((mean - 0.02).abs() < 0.001, "{mean}");
    }

    #[test]
    fn options_are_checked_by_name() {
        let err = |o: Value| W1Task::new(&o).unwrap_err().to_string();
        assert!(err(json!({"contrats": 0.1})).contains("unknown option `contrats`"));
        assert!(err(json!({"contrats": 0.1})).contains("contrast"));
        assert!(err(json!({"steps": 0})).contains("`steps` must be a positive integer"));
        assert!(err(json!({"rate": 2})).contains("`rate` must be a number in [0, 1]"));
        assert!(
            err(json!({"steps": 10, "last": 20})).contains("`last` (20) is more than `steps` (10)")
        );
        assert!(err(json!([1])).contains("must be a JSON object"));
        assert!(by_name("w2", &Value::Null)
            .unwrap_err()
            .to_string()
            .contains("unknown task `w2`"));
        let m = small_w1();
        let adj = lang::diff::diff(&m).unwrap();
        let t = W1Task::new(&json!({"input": "y"})).unwrap();
        let e = t.batch(&m, &adj, 2, 0).err().unwrap().to_string();
        assert!(e.contains("no input named `y`"), "{e}");
    }

    /// Training lowers the loss on held-out episodes (a batch no iteration trains on).
    #[test]
    fn training_lowers_the_held_out_loss() {
        let m = small_w1();
        let t = task();
        let mut tr = Trainer::new(&m, &t, cfg(25)).unwrap();
        let held_out = 1_000_000;
        let (before, _) = tr.gradient(held_out).unwrap();
        let dir = tmp("lowers");
        let r = tr.run(&dir, false, &mut |_| {}).unwrap();
        let (after, _) = tr.gradient(held_out).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(r.log.len(), 25);
        assert!(
            after.loss < 0.7 * before.loss,
            "held-out loss {} -> {}",
            before.loss,
            after.loss
        );
        assert!(
            after.metric >= before.metric,
            "{} -> {}",
            before.metric,
            after.metric
        );
    }

    /// A run stopped after 3 iterations and resumed to 6 ends exactly where an
    /// uninterrupted 6-iteration run does, with the same log; and so does a run on one
    /// thread.
    #[test]
    fn resumed_and_single_threaded_runs_equal_the_uninterrupted_one() {
        let m = small_w1();
        let t = task();
        let strip = |log: &[search::train::IterLog]| -> Vec<(usize, f64, f64, f64)> {
            log.iter()
                .map(|r| (r.iteration, r.score.loss, r.score.metric, r.grad_norm))
                .collect()
        };
        let (d1, d2, d3) = (tmp("whole"), tmp("parts"), tmp("one-thread"));
        let whole = Trainer::new(&m, &t, cfg(6))
            .unwrap()
            .run(&d1, false, &mut |_| {})
            .unwrap();
        Trainer::new(&m, &t, cfg(3))
            .unwrap()
            .run(&d2, false, &mut |_| {})
            .unwrap();
        // Without --resume, an existing run is not overwritten.
        let again = Trainer::new(&m, &t, cfg(6))
            .unwrap()
            .run(&d2, false, &mut |_| {});
        assert!(again.unwrap_err().to_string().contains("already there"));
        let resumed = Trainer::new(&m, &t, cfg(6))
            .unwrap()
            .run(&d2, true, &mut |_| {})
            .unwrap();
        assert_eq!(resumed.started_at, 3);
        assert!(
            resumed.learned == whole.learned,
            "the resumed run's parameters differ"
        );
        assert_eq!(strip(&resumed.log), strip(&whole.log));
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| {
                Trainer::new(&m, &t, cfg(6))
                    .unwrap()
                    .run(&d3, false, &mut |_| {})
                    .unwrap()
            });
        assert!(
            one.learned == whole.learned,
            "the 1-thread run's parameters differ"
        );
        // A different configuration cannot resume this run.
        let mut other = cfg(6);
        other.lr = 0.02;
        let e = Trainer::new(&m, &t, other)
            .unwrap()
            .run(&d2, true, &mut |_| {});
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("belongs to another run"));
        for d in [d1, d2, d3] {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    #[test]
    fn bad_configs_name_the_field() {
        let m = small_w1();
        let t = task();
        let mut c = cfg(1);
        c.lr = -1.0;
        let e = Trainer::new(&m, &t, c).err().unwrap().to_string();
        assert!(e.contains("`lr`"), "{e}");
        let mut c = cfg(1);
        c.batch = 0;
        assert!(Trainer::new(&m, &t, c)
            .err()
            .unwrap()
            .to_string()
            .contains("`batch`"));
    }
}
