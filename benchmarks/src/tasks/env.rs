//! Closed-loop environments: what a network sees next may depend on what it did.
//!
//! An [`Env`] is one episode. Before each step it writes the input channels (spikes,
//! 0 or 1) and the value of the `reward` signal; after the step it reads the network's
//! readout, takes decisions at the end of response windows (not differentiated: the
//! decision only changes what comes next, such as the reward fed back), and returns
//! the gradient of its loss with respect to the readout of the steps whose loss became
//! known. The loss compares the readout with the right answer, which the outer loop
//! knows and the network must find out online, from rewards inside the episode.
//!
//! Decisions are the argmax of the readout's mean over the response window; the loss of
//! a decision is the cross-entropy of that mean against the right answer, and an
//! episode's loss is the mean over its decisions. Metrics are the tasks' own (reward
//! in the second half of the episode, fraction correct, ...).

use jit::grad::EpisodeLoss;
use jit::run::{Elem, Episode};
use lang::diff::Adjoint;
use lang::ir::{Module, Space, VarId, VarKind};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use search::train::{Score, Task, TrainError};
use serde_json::Value;
use std::sync::Arc;

/// One episode of a closed-loop task.
pub trait Env: Send {
    /// Steps in the episode.
    fn steps(&self) -> usize;
    /// Before step `t`: sets the input channels `x` (given all zero) and returns the
    /// value of the `reward` signal for this step.
    fn input(&mut self, t: usize, x: &mut [f64]) -> f64;
    /// After step `t`, with the readout `y(t)`: the `(step, dL/dy(step))` pairs that
    /// became known (the episode's loss, not yet averaged over the batch).
    fn output(&mut self, t: usize, y: &[f64]) -> Vec<(usize, Vec<f64>)>;
    /// The episode's loss so far (mean over its decisions).
    fn loss(&self) -> f64;
    /// The task's metric for the episode (after its last step).
    fn metric(&self) -> f64;
    /// Reward of each trial so far: the within-episode learning curve.
    fn trial_rewards(&self) -> Vec<f64>;
}

/// A response window's decision and loss: the argmax of the window's mean readout, and
/// the cross-entropy of that mean against `answer` with its gradient, spread evenly
/// over the window's steps and divided by `decisions` (the episode's count, so that
/// the episode's loss is a mean).
#[derive(Clone, Debug, Default)]
pub struct Window {
    sum: Vec<f64>,
    steps: Vec<usize>,
}

impl Window {
    /// Adds the readout of step `t`.
    pub fn add(&mut self, t: usize, y: &[f64]) {
        if self.sum.len() < y.len() {
            self.sum.resize(y.len(), 0.0);
        }
        for (s, v) in self.sum.iter_mut().zip(y) {
            *s += v;
        }
        self.steps.push(t);
    }

    /// Closes the window: (decision, loss, seeds), and empties it.
    pub fn close(
        &mut self,
        answer: usize,
        decisions: usize,
    ) -> (usize, f64, Vec<(usize, Vec<f64>)>) {
        let n = self.steps.len().max(1) as f64;
        let mean: Vec<f64> = self.sum.iter().map(|s| s / n).collect();
        let (loss, mut grad) = cross_entropy(&mean, answer);
        let decision = (0..mean.len()).fold(0, |b, k| if mean[k] > mean[b] { k } else { b });
        let scale = 1.0 / (n * decisions.max(1) as f64);
        grad.iter_mut().for_each(|g| *g *= scale);
        let seeds = self.steps.iter().map(|&t| (t, grad.clone())).collect();
        *self = Window::default();
        (decision, loss / decisions.max(1) as f64, seeds)
    }
}

/// The cross-entropy of logits `z` against class `answer`,
/// `logsumexp(z) - z[answer]`, and its gradient `softmax(z) - onehot(answer)`.
pub fn cross_entropy(z: &[f64], answer: usize) -> (f64, Vec<f64>) {
    let mx = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = z.iter().map(|v| (v - mx).exp()).sum();
    let loss = mx + sum.ln() - z.get(answer).copied().unwrap_or(0.0);
    let grad = z
        .iter()
        .enumerate()
        .map(|(k, v)| (v - mx).exp() / sum - f64::from(u8::from(k == answer)))
        .collect();
    (loss, grad)
}

/// The mean of the second half of `rewards` (the later half when odd): what an episode
/// earns once there was time to learn.
pub fn second_half_mean(rewards: &[f64]) -> f64 {
    let half = &rewards[rewards.len() / 2..];
    half.iter().sum::<f64>() / half.len().max(1) as f64
}

/// 1 with probability `p`, else 0.
pub fn spike(rng: &mut ChaCha8Rng, p: f64) -> f64 {
    if rng.gen::<f64>() < p {
        1.0
    } else {
        0.0
    }
}

/// Something that answers in place of a network: sees the inputs and the reward
/// signal of each step, gives a readout.
pub trait Policy {
    /// The readout after step `t`, having seen `x` and `reward` before it.
    fn act(&mut self, t: usize, x: &[f64], reward: f64) -> Vec<f64>;
}

/// Runs `env` to its end with `policy` in place of a network; its metric.
pub fn run_policy(env: &mut dyn Env, channels: usize, policy: &mut dyn Policy) -> f64 {
    let mut x = vec![0.0; channels];
    for t in 0..env.steps() {
        x.iter_mut().for_each(|v| *v = 0.0);
        let r = env.input(t, &mut x);
        let y = policy.act(t, &x, r);
        env.output(t, &y);
    }
    env.metric()
}

/// The mean metric of `episode(0..episodes)`, each run with a fresh `policy()`.
pub fn mean_policy_metric<E: Env>(
    episodes: u64,
    channels: usize,
    episode: impl Fn(u64) -> E,
    policy: &mut dyn FnMut() -> Box<dyn Policy>,
) -> f64 {
    (0..episodes)
        .map(|s| run_policy(&mut episode(s), channels, policy().as_mut()))
        .sum::<f64>()
        / episodes as f64
}

/// Answers at random: a fresh uniform readout every step.
pub struct RandomPolicy {
    /// Its randomness.
    pub rng: ChaCha8Rng,
    /// Readout size.
    pub classes: usize,
}

impl Policy for RandomPolicy {
    fn act(&mut self, _: usize, _: &[f64], _: f64) -> Vec<f64> {
        (0..self.classes).map(|_| self.rng.gen::<f64>()).collect()
    }
}

/// Makes the episode of a seed, for a network with `channels` input channels and a
/// readout of `classes` values.
pub type EnvFactory = dyn Fn(u64, usize, usize) -> Box<dyn Env> + Send + Sync;

/// A task made of [`Env`] episodes, for `ruleopt train`.
#[derive(Clone)]
pub struct EnvTask {
    /// `--task` name.
    pub name: String,
    /// The options, all fields given or defaulted.
    pub options: Value,
    /// What the metric is.
    pub metric: String,
    /// Whether a larger metric is better (reward, accuracy) or worse (an error).
    pub higher_is_better: bool,
    /// Steps per episode.
    pub steps: usize,
    /// Input channels it drives (`None`: as many as the network's input has).
    pub channels: Option<usize>,
    /// Readout values it needs (`None`: as many as the network's readout has, >= 2).
    pub classes: Option<usize>,
    /// The input that receives the spikes (`None`: the network's only `input`).
    pub input: Option<String>,
    /// The readout that answers (`None`: the network's first).
    pub readout: Option<String>,
    /// The episodes.
    pub make: Arc<EnvFactory>,
}

/// The variables a task uses in a module.
#[derive(Clone, Copy, Debug)]
struct Vars {
    x: VarId,
    reward: Option<VarId>,
    y: VarId,
    adj_y: VarId,
    channels: usize,
    classes: usize,
}

impl EnvTask {
    /// The input variable (`NAME.out`) that receives the task's spikes and the
    /// readout variable that answers, in `m`: the `input` and `readout` options, or the
    /// network's only input and first readout. Their sizes are not checked here.
    pub fn input_and_readout(&self, m: &Module) -> Result<(VarId, VarId), TrainError> {
        let bad =
            |msg: String| TrainError::Task(format!("{} on network `{}`: {msg}", self.name, m.name));
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
        Ok((x, y))
    }

    fn vars(&self, m: &Module, adj: &Adjoint) -> Result<Vars, TrainError> {
        let bad =
            |msg: String| TrainError::Task(format!("{} on network `{}`: {msg}", self.name, m.name));
        let (x, y) = self.input_and_readout(m)?;
        let channels = m.space_size(m.vars[x].space);
        if let Some(c) = self.channels {
            if c != channels {
                return Err(bad(format!(
                    "the task drives {c} input channels, but `{}` has {channels}",
                    m.vars[x].name.trim_end_matches(".out")
                )));
            }
        }
        let classes = match m.vars[y].space {
            Space::Pop(p) => m.pops[p].size,
            _ => 1,
        };
        match self.classes {
            Some(k) if k != classes => {
                return Err(bad(format!(
                    "the task needs a readout of {k} values, but `{}` has {classes}",
                    m.vars[y].name
                )))
            }
            None if classes < 2 => {
                return Err(bad(format!(
                    "the readout `{}` has {classes} value(s): a decision needs one per choice (at least 2)",
                    m.vars[y].name
                )))
            }
            _ => {}
        }
        let adj_y = adj
            .adj
            .iter()
            .find(|(s, _)| *s == y)
            .map(|&(_, a)| a)
            .ok_or_else(|| bad(format!("the readout `{}` has no adjoint", m.vars[y].name)))?;
        let reward = m
            .var_by_name("reward")
            .filter(|&v| m.vars[v].kind == VarKind::Input && m.vars[v].space == Space::Global);
        Ok(Vars {
            x,
            reward,
            y,
            adj_y,
            channels,
            classes,
        })
    }

    /// The seed of episode `b` of the batch drawn from `seed`.
    fn episode_seed(seed: u64, b: usize) -> u64 {
        let mut z = seed ^ (b as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
        z = (z ^ (z >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z ^ (z >> 29)
    }
}

/// A batch of [`Env`] episodes.
pub struct EnvBatch {
    task: EnvTask,
    vars: Vars,
    seed: u64,
    episodes: usize,
    steps: usize,
    /// The episodes' seeds, if not derived from the batch's seed (tests).
    pub fixed_seeds: Option<Vec<u64>>,
}

/// What an [`Env`] episode keeps through its forward pass.
#[derive(Default)]
pub struct EnvAcc {
    env: Option<Box<dyn Env>>,
    /// Per step: dL/dy, where known.
    seeds: Vec<Option<Vec<f64>>>,
    x: Vec<f64>,
    y: Vec<f64>,
    /// The episode's loss and metric, after its last step.
    pub loss: f64,
    /// The task's metric.
    pub metric: f64,
    /// Reward per trial.
    pub rewards: Vec<f64>,
}

impl<T: Elem> EpisodeLoss<T> for EnvBatch {
    type Acc = EnvAcc;

    fn inputs(&self, b: usize, t: usize, ep: &mut Episode<'_, T>, acc: &mut EnvAcc) {
        let v = self.vars;
        let env = acc.env.get_or_insert_with(|| {
            let seed = match &self.fixed_seeds {
                Some(s) => s[b],
                None => EnvTask::episode_seed(self.seed, b),
            };
            (self.task.make)(seed, v.channels, v.classes)
        });
        acc.x.clear();
        acc.x.resize(v.channels, 0.0);
        let r = env.input(t, &mut acc.x);
        for (d, &s) in ep.var(v.x).iter_mut().zip(&acc.x) {
            *d = T::from_f64(s);
        }
        if let Some(rv) = v.reward {
            ep.var(rv)[0] = T::from_f64(r);
        }
    }

    fn observe(&self, _: usize, t: usize, ep: &mut Episode<'_, T>, acc: &mut EnvAcc) {
        acc.y.clear();
        acc.y.extend(ep.var(self.vars.y).iter().map(|v| v.to_f64()));
        let Some(env) = acc.env.as_mut() else { return };
        if acc.seeds.len() < self.steps {
            acc.seeds.resize(self.steps, None);
        }
        for (s, g) in env.output(t, &acc.y) {
            if let Some(slot) = acc.seeds.get_mut(s) {
                match slot {
                    Some(old) => old.iter_mut().zip(&g).for_each(|(o, n)| *o += n),
                    None => *slot = Some(g),
                }
            }
        }
        if t + 1 == self.steps {
            acc.loss = env.loss();
            acc.metric = env.metric();
            acc.rewards = env.trial_rewards();
            acc.env = None;
        }
    }

    fn seed(&self, _: usize, t: usize, ep: &mut Episode<'_, T>, acc: &EnvAcc) {
        let Some(Some(g)) = acc.seeds.get(t) else {
            return;
        };
        let scale = 1.0 / self.episodes as f64;
        for (d, &gk) in ep.var(self.vars.adj_y).iter_mut().zip(g) {
            *d = T::from_f64(d.to_f64() + gk * scale);
        }
    }
}

impl Task for EnvTask {
    type Acc = EnvAcc;
    type Batch = EnvBatch;

    fn name(&self) -> &str {
        &self.name
    }

    fn options(&self) -> Value {
        self.options.clone()
    }

    fn metric_name(&self) -> &str {
        &self.metric
    }

    fn higher_is_better(&self) -> bool {
        self.higher_is_better
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
    ) -> Result<EnvBatch, TrainError> {
        Ok(EnvBatch {
            task: self.clone(),
            vars: self.vars(m, adj)?,
            seed,
            episodes,
            steps: self.steps,
            fixed_seeds: None,
        })
    }

    fn score(&self, _: &EnvBatch, accs: &[EnvAcc]) -> Score {
        let n = accs.len().max(1) as f64;
        let trials = accs.iter().map(|a| a.rewards.len()).max().unwrap_or(0);
        let curve = if trials > 1 {
            (0..trials)
                .map(|k| accs.iter().filter_map(|a| a.rewards.get(k)).sum::<f64>() / n)
                .collect()
        } else {
            Vec::new()
        };
        Score {
            loss: accs.iter().map(|a| a.loss).sum::<f64>() / n,
            metric: accs.iter().map(|a| a.metric).sum::<f64>() / n,
            curve,
        }
    }
}

/// Reads a task's options: a JSON object with known fields, each checked by name.
pub struct Options {
    task: String,
    obj: serde_json::Map<String, Value>,
    used: Vec<&'static str>,
}

impl Options {
    /// The options of `task` (null means all defaults).
    pub fn new(task: &str, options: &Value) -> Result<Options, TrainError> {
        let obj = match options {
            Value::Null => serde_json::Map::new(),
            Value::Object(o) => o.clone(),
            _ => {
                return Err(TrainError::Task(format!(
                    "{task}: options must be a JSON object"
                )))
            }
        };
        Ok(Options {
            task: task.to_string(),
            obj,
            used: Vec::new(),
        })
    }

    fn bad(&self, msg: String) -> TrainError {
        TrainError::Task(format!("{}: {msg}", self.task))
    }

    /// A positive integer.
    pub fn count(&mut self, k: &'static str, default: usize) -> Result<usize, TrainError> {
        self.used.push(k);
        match self.obj.get(k) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .filter(|&n| n >= 1)
                .map(|n| n as usize)
                .ok_or_else(|| self.bad(format!("`{k}` must be a positive integer, not {v}"))),
        }
    }

    /// A number in `[lo, hi]`.
    pub fn number(
        &mut self,
        k: &'static str,
        default: f64,
        lo: f64,
        hi: f64,
    ) -> Result<f64, TrainError> {
        self.used.push(k);
        match self.obj.get(k) {
            None => Ok(default),
            Some(v) => v.as_f64().filter(|x| (lo..=hi).contains(x)).ok_or_else(|| {
                self.bad(format!("`{k}` must be a number in [{lo}, {hi}], not {v}"))
            }),
        }
    }

    /// A name.
    pub fn name(&mut self, k: &'static str) -> Result<Option<String>, TrainError> {
        self.used.push(k);
        match self.obj.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.bad(format!("`{k}` must be a name, not {v}"))),
        }
    }

    /// Errors on a field no getter asked for (with a suggestion).
    pub fn finish(self) -> Result<(), TrainError> {
        for k in self.obj.keys() {
            if !self.used.contains(&k.as_str()) {
                let mut msg = format!(
                    "unknown option `{k}`; the options are {}",
                    self.used.join(", ")
                );
                if let Some(h) = lang::diag::did_you_mean(k, self.used.iter().copied()) {
                    msg = format!("{msg} ({h})");
                }
                return Err(self.bad(msg));
            }
        }
        Ok(())
    }

    /// A custom error about these options.
    pub fn error(&self, msg: String) -> TrainError {
        self.bad(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_decides_by_the_mean_and_its_gradient_matches_finite_differences() {
        let ys = [[0.2, 0.5], [0.4, -0.1], [1.0, 0.3]];
        let mut w = Window::default();
        for (t, y) in ys.iter().enumerate() {
            w.add(t + 10, y);
        }
        let (d, loss, seeds) = w.close(1, 2);
        assert_eq!(d, 0); // mean (0.533, 0.233)
        assert_eq!(seeds.len(), 3);
        assert_eq!(seeds[0].0, 10);
        let f = |ys: &[[f64; 2]]| {
            let mut w = Window::default();
            for (t, y) in ys.iter().enumerate() {
                w.add(t, y);
            }
            w.close(1, 2).1
        };
        for (s, (_, g)) in seeds.iter().enumerate() {
            for k in 0..2 {
                let h = 1e-6;
                let mut a = ys;
                let mut b = ys;
                a[s][k] += h;
                b[s][k] -= h;
                let fd = (f(&a) - f(&b)) / (2.0 * h);
                assert!((fd - g[k]).abs() < 1e-8, "{fd} vs {}", g[k]);
            }
        }
        assert!((loss - f(&ys)).abs() < 1e-15);
    }
}
