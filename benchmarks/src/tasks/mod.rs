//! Tasks for `ruleopt train`, selected by name with options as JSON: episodes of a
//! closed-loop environment ([`env::Env`]) each, fed to the network step by step.
//!
//! | task | what | module |
//! |---|---|---|
//! | `w1` | W1's classification episode, the class made visible by default | [`w1`] |
//! | `cue-reward` | Backpropamine's cue-reward association, in spikes | [`cue_reward`] |
//! | `t-maze` | Soltoggio et al.'s T-maze, the high reward switching sides once | [`t_maze`] |
//! | `evidence` | cue accumulation in a virtual T-maze (Morcos & Harvey; e-prop) | [`evidence`] |
//! | `evidence-reversal` | `evidence`, the rewarded side the majority or the minority, learned from rewards | [`evidence`] |
//! | `one-shot` | 5-way 1-shot association of binary patterns with labels | [`one_shot`] |
//! | `regression` | few-shot online regression of functions drawn from a Gaussian process | [`regression`] |
//! | `reward-driven` | Jordan et al.'s reward-driven task: one LIF neuron, 30 patterns, reward +-1 (for `ruleopt search`) | [`reward_driven`] |
//! | `error-driven` | Jordan et al.'s teacher-student task: follow a teacher's potential (for `ruleopt search`) | [`error_driven`] |
//! | `oja-pca` | a linear neuron finds the first principal component (for `ruleopt search`) | [`oja_pca`] |
//!
//! Each module's doc lists its options. Every task also takes `input` (which network
//! input receives its spikes; default: the network's only one) and `readout` (which
//! readout answers; default: the first).

pub mod cue_reward;
pub mod env;
pub mod error_driven;
pub mod evidence;
pub mod oja_pca;
pub mod one_shot;
pub mod regression;
pub mod reward_driven;
pub mod t_maze;
pub mod w1;

use crate::w1::Inputs;
use env::EnvTask;
use jit::grad::EpisodeLoss;
use jit::run::{Elem, Episode};
use lang::diff::Adjoint;
use lang::ir::{Module, VarId};
use search::train::TrainError;
use serde_json::Value;

/// The online-learning suite (the plasticity-rule comparison's tasks).
pub const ONLINE: &[&str] = &[
    "cue-reward",
    "t-maze",
    "evidence",
    "evidence-reversal",
    "one-shot",
    "regression",
];

/// The rule-rediscovery tasks (`ruleopt bench rediscover`).
pub const REDISCOVERY: &[&str] = &["reward-driven", "error-driven", "oja-pca"];

/// The names `--task` accepts: `w1`, the online-learning suite, the rediscovery tasks.
pub fn names() -> Vec<&'static str> {
    std::iter::once("w1")
        .chain(ONLINE.iter().copied())
        .chain(REDISCOVERY.iter().copied())
        .collect()
}

/// The task named `name` with `options`.
pub fn by_name(name: &str, options: &Value) -> Result<EnvTask, TrainError> {
    match name {
        "w1" => w1::W1::task(options),
        "cue-reward" => cue_reward::CueReward::task(options),
        "t-maze" => t_maze::TMaze::task(options),
        "evidence" => evidence::Evidence::task(options, false),
        "evidence-reversal" => evidence::Evidence::task(options, true),
        "one-shot" => one_shot::OneShot::task(options),
        "regression" => regression::Regression::task(options),
        "reward-driven" => reward_driven::RewardDriven::task(options),
        "error-driven" => error_driven::ErrorDriven::task(options),
        "oja-pca" => oja_pca::OjaPca::task(options),
        _ => {
            let names = names();
            let mut msg = format!("unknown task `{name}`; the tasks are {}", names.join(", "));
            if let Some(h) = lang::diag::did_you_mean(name, names.iter().copied()) {
                msg = format!("{msg} ({h})");
            }
            Err(TrainError::Task(msg))
        }
    }
}

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

    fn inputs(&self, b: usize, t: usize, ep: &mut Episode<'_, T>, _: &mut Vec<f64>) {
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
        let (_, grad) = env::cross_entropy(&mean, self.inputs.labels[b]);
        let scale = 1.0 / (self.inputs.batch * last) as f64;
        for (d, g) in ep.var(self.adj_y).iter_mut().zip(grad) {
            *d = T::from_f64(d.to_f64() + g * scale);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::env::Env;
    use super::*;
    use search::train::{Task, TrainConfig, Trainer};
    use serde_json::json;

    fn small_w1() -> Module {
        crate::w1::module(12).expect("W1 lowers")
    }

    fn task() -> EnvTask {
        by_name("w1", &json!({"steps": 120, "contrast": 0.8, "last": 20})).unwrap()
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
    fn w1_inputs_follow_the_class_and_rates() {
        let w = w1::W1 {
            steps: 4000,
            rate: 0.05,
            contrast: 0.6,
            last: 50,
        };
        for seed in 0..4 {
            let mut ep = w.episode(seed, 40, 2);
            let c = ep.label;
            let mut count = [0.0; 2];
            let mut x = vec![0.0; 40];
            for t in 0..4000 {
                x.iter_mut().for_each(|v| *v = 0.0);
                ep.input(t, &mut x);
                for (j, v) in x.iter().enumerate() {
                    count[j * 2 / 40] += v;
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
        let w0 = w1::W1 { contrast: 0.0, ..w };
        assert_eq!(w0.rate_of(3, 1, 40, 2), 0.05);
        assert_eq!(w0.rate_of(30, 1, 40, 2), 0.05);
    }

    /// The `w1` task's loss and gradient are the W1 benchmark's on the same inputs.
    #[test]
    fn the_w1_task_equals_the_w1_benchmark_loss() {
        let m = small_w1();
        let adj = lang::diff::diff(&m).unwrap();
        let w = w1::W1 {
            steps: 150,
            rate: 0.05,
            contrast: 0.5,
            last: 30,
        };
        let eps: Vec<_> = (0..3).map(|b| w.episode(100 + b, 40, 2)).collect();
        let labels: Vec<usize> = eps.iter().map(|e| e.label).collect();
        // Replay the episodes' inputs into the benchmark's format.
        let mut xs = vec![0.0f32; 150 * 3 * 40];
        for (b, mut e) in eps.into_iter().enumerate() {
            let mut x = vec![0.0; 40];
            for t in 0..150 {
                x.iter_mut().for_each(|v| *v = 0.0);
                e.input(t, &mut x);
                for (j, v) in x.iter().enumerate() {
                    xs[(t * 3 + b) * 40 + j] = *v as f32;
                }
            }
        }
        let inputs = Inputs {
            steps: 150,
            batch: 3,
            x: xs,
            labels,
        };
        let kernels = jit::grad::GradKernels::compile(
            &m,
            &adj,
            jit::Options {
                precision: jit::Precision::F64,
            },
        )
        .unwrap();
        let inst = lang::init::instantiate(&m, 1).unwrap();
        let x = m.var_by_name("x.out").unwrap();
        let y = m.var_by_name("out.y").unwrap();
        let bench = ClassifyBatch::new(&m, &adj, inputs, x, y, 30).unwrap();
        let g1 =
            jit::grad::bptt::<f64, _>(&kernels, &m, &adj, &inst, 3, 0, 150, 10, &bench).unwrap();
        let loss1 = crate::w1::cross_entropy(&bench.logits(&g1.accs), &bench.inputs.labels);
        // The same episodes through the task: seeds 100.. are what `make` gets when
        // asked for them directly.
        let t = by_name(
            "w1",
            &json!({"steps": 150, "rate": 0.05, "contrast": 0.5, "last": 30}),
        )
        .unwrap();
        let mut batch = t.batch(&m, &adj, 3, 0).unwrap();
        batch.fixed_seeds = Some(vec![100, 101, 102]);
        let g2 =
            jit::grad::bptt::<f64, _>(&kernels, &m, &adj, &inst, 3, 0, 150, 10, &batch).unwrap();
        let s2 = t.score(&batch, &g2.accs);
        assert!((loss1 - s2.loss).abs() < 1e-12, "{loss1} vs {}", s2.loss);
        // Accuracy: the argmax of each episode's mean readout against its label.
        let logits = bench.logits(&g1.accs);
        let right = logits
            .chunks(2)
            .zip(&bench.inputs.labels)
            .filter(|(l, &c)| usize::from(l[1] > l[0]) == c)
            .count();
        assert_eq!(right as f64 / 3.0, s2.metric);
        for ((p, a), (_, b)) in g1.grads.iter().zip(&g2.grads) {
            for (x, y) in a.iter().zip(b) {
                assert!(
                    (x - y).abs() <= 1e-12 * (1.0 + x.abs()),
                    "{}: {x} vs {y}",
                    m.vars[*p].name
                );
            }
        }
    }

    #[test]
    fn options_are_checked_by_name() {
        let err = |o: Value| by_name("w1", &o).err().unwrap().to_string();
        assert!(err(json!({"contrats": 0.1})).contains("unknown option `contrats`"));
        assert!(err(json!({"contrats": 0.1})).contains("contrast"));
        assert!(err(json!({"steps": 0})).contains("`steps` must be a positive integer"));
        assert!(err(json!({"rate": 2})).contains("`rate` must be a number in [0, 1]"));
        assert!(
            err(json!({"steps": 10, "last": 20})).contains("`last` (20) is more than `steps` (10)")
        );
        assert!(err(json!([1])).contains("must be a JSON object"));
        let e = by_name("w2", &Value::Null).err().unwrap().to_string();
        assert!(e.contains("unknown task `w2`"), "{e}");
        let m = small_w1();
        let adj = lang::diff::diff(&m).unwrap();
        let t = by_name("w1", &json!({"input": "y"})).unwrap();
        let e = t.batch(&m, &adj, 2, 0).err().unwrap().to_string();
        assert!(e.contains("no input named `y`"), "{e}");
        // cue-reward drives 23 channels; W1 has 40.
        let t = by_name("cue-reward", &Value::Null).unwrap();
        let e = t.batch(&m, &adj, 2, 0).err().unwrap().to_string();
        assert!(
            e.contains("drives 23 input channels, but `x` has 40"),
            "{e}"
        );
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

    /// Forward-only evaluation scores a batch exactly as the gradient pass does.
    #[test]
    fn evaluation_equals_the_gradient_pass_score() {
        let m = small_w1();
        for t in [
            task(),
            by_name("cue-reward", &json!({"trials": 3, "window": 4})).unwrap(),
        ] {
            let m = if t.name == "cue-reward" {
                let src =
                    crate::w1::source(12).replace("input x[40];", "input x[23];\n  signal reward;");
                crate::lower_text(
                    "w1cr.rule",
                    &src,
                    None,
                    &mut |_, _| Err("no imports".into()),
                )
                .unwrap()
            } else {
                m.clone()
            };
            let mut c = cfg(1);
            c.precision = jit::Precision::F64;
            let tr = Trainer::new(&m, &t, c).unwrap();
            let (g, _) = tr.gradient(5).unwrap();
            let e = tr.evaluate(6, tr.batch_seed(5)).unwrap();
            assert_eq!(g, e, "{}", t.name);
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
