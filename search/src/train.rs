//! The outer loop of learning to learn: Adam on a network's `learn` parameters, with
//! gradients from compiled backpropagation through time ([`jit::grad::bptt`]) over a
//! batch of episodes of a [`Task`].
//!
//! A run is a directory:
//!
//! | file | what | written |
//! |---|---|---|
//! | `checkpoint.json` | iteration, parameters, Adam moments, config | atomically, after every iteration |
//! | `log.jsonl` | one JSON object per iteration | appended, before the checkpoint |
//!
//! Resuming reads the checkpoint, checks that the network and the configuration are
//! the same (the iteration count may grow), drops log lines of iterations the
//! checkpoint does not hold, and goes on: an interrupted run loses at most the
//! iteration it was in. Iteration `i` draws its episodes from `(seed, i)` alone, so a
//! resumed run computes what an uninterrupted one would have, and the thread count
//! changes nothing (episodes are summed in a fixed order).

use jit::grad::{
    bptt, checkpoint_for_budget, last_level_cache_bytes, state_bytes, EpisodeLoss, GradKernels,
};
use jit::run::{Elem, Episode};
use jit::{JitError, Precision};
use lang::diff::Adjoint;
use lang::init::Instance;
use lang::ir::{Module, Space, VarId, VarKind};
use lang::values::{Entry, Values};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Why training stopped.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The task cannot run on this network, or its options are wrong.
    #[error("task: {0}")]
    Task(String),
    /// A configuration value is out of range.
    #[error("config: `{field}` {msg}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        msg: String,
    },
    /// Compiling or running the kernels failed.
    #[error(transparent)]
    Jit(#[from] JitError),
    /// Differentiating the network failed.
    #[error("gradient: {0}")]
    Diff(String),
    /// Reading or writing the run directory failed.
    #[error("{path}: {msg}")]
    Io {
        /// The file.
        path: String,
        /// What happened.
        msg: String,
    },
    /// A variable to record every step is a parameter ([`Trainer::record`]).
    #[error("`{0}` is a parameter (the same at every step): only states and inputs are recorded per step")]
    RecordParam(String),
    /// The checkpoint does not belong to this run.
    #[error("cannot resume from {path}: {msg}")]
    Resume {
        /// The checkpoint.
        path: String,
        /// Why not.
        msg: String,
    },
}

/// A task's verdict on a batch: the loss that is differentiated and the metric a user
/// reads (accuracy, reward, ...).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Score {
    /// Mean loss over the batch.
    pub loss: f64,
    /// The task's metric, averaged over the batch.
    pub metric: f64,
    /// Mean reward of each trial of an episode, over the batch: the within-episode
    /// learning curve (empty for a task without trials).
    pub curve: Vec<f64>,
}

/// What a network is trained on: a generator of batches of episodes, each of which
/// feeds the network its inputs and seeds the loss's gradient ([`EpisodeLoss`]).
pub trait Task: Sync {
    /// What an episode accumulates in its forward pass.
    type Acc: Send + Default;
    /// One batch of episodes.
    type Batch: EpisodeLoss<f32, Acc = Self::Acc> + EpisodeLoss<f64, Acc = Self::Acc>;
    /// The task's name (`--task NAME`).
    fn name(&self) -> &str;
    /// Its options, as given or defaulted (recorded in the run).
    fn options(&self) -> Value;
    /// What the metric is (`accuracy`, ...).
    fn metric_name(&self) -> &str;
    /// Whether a larger metric is better (accuracy, reward) or worse (an error).
    fn higher_is_better(&self) -> bool {
        true
    }
    /// Steps per episode.
    fn steps(&self) -> usize;
    /// Draws `episodes` episodes from `seed`, for module `m` and its adjoint `adj`.
    fn batch(
        &self,
        m: &Module,
        adj: &Adjoint,
        episodes: usize,
        seed: u64,
    ) -> Result<Self::Batch, TrainError>;
    /// The loss and metric of a batch, from what its episodes accumulated.
    fn score(&self, batch: &Self::Batch, accs: &[Self::Acc]) -> Score;
}

/// One recorded variable: per step, the values (of one episode, or of all side by side).
pub type Records = Vec<Vec<f64>>;

/// Per episode of a recorded forward pass: the task's accumulator and the records.
type Recorded<A> = Vec<(A, Vec<Records>)>;

/// A batch of episodes that also records variables after every step (for
/// [`Trainer::record`]).
struct Recording<'b, L> {
    inner: &'b L,
    vars: &'b [VarId],
}

impl<T: Elem, L: EpisodeLoss<T>> EpisodeLoss<T> for Recording<'_, L> {
    /// The inner batch's, and per variable, per step, this episode's values.
    type Acc = (L::Acc, Vec<Records>);

    fn inputs(&self, b: usize, t: usize, ep: &mut Episode<'_, T>, acc: &mut Self::Acc) {
        self.inner.inputs(b, t, ep, &mut acc.0);
    }

    fn observe(&self, b: usize, t: usize, ep: &mut Episode<'_, T>, acc: &mut Self::Acc) {
        acc.1.resize(self.vars.len(), Vec::new());
        for (k, &v) in self.vars.iter().enumerate() {
            acc.1[k].push(ep.var(v).iter().map(|x| x.to_f64()).collect());
        }
        self.inner.observe(b, t, ep, &mut acc.0);
    }

    fn seed(&self, b: usize, t: usize, ep: &mut Episode<'_, T>, acc: &Self::Acc) {
        self.inner.seed(b, t, ep, &acc.0);
    }
}

/// Range checks of configuration fields: each names the field it rejects
/// ([`TrainError::Config`]).
pub(crate) mod check {
    use super::TrainError;

    /// A rejection of `field` with its own message.
    pub fn fail(field: &'static str, msg: &str) -> Result<(), TrainError> {
        Err(TrainError::Config {
            field,
            msg: msg.to_string(),
        })
    }

    /// `n >= 1`.
    pub fn at_least_one(field: &'static str, n: usize) -> Result<(), TrainError> {
        if n == 0 {
            return fail(field, "must be at least 1");
        }
        Ok(())
    }

    /// A finite `x > 0`.
    pub fn positive(field: &'static str, x: f64) -> Result<(), TrainError> {
        if !(x.is_finite() && x > 0.0) {
            return fail(field, "must be a positive number");
        }
        Ok(())
    }

    /// `x` in `[0, 1)`.
    pub fn unit_open(field: &'static str, x: f64) -> Result<(), TrainError> {
        if !(0.0..1.0).contains(&x) {
            return fail(field, "must be in [0, 1)");
        }
        Ok(())
    }

    /// `x` in `[0, 1]`; `what` says what it is (e.g. "a probability").
    pub fn unit(field: &'static str, x: f64, what: &str) -> Result<(), TrainError> {
        if !(0.0..=1.0).contains(&x) {
            return fail(field, &format!("must be {what} in [0, 1]"));
        }
        Ok(())
    }
}

/// The optimiser and the run's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Outer-loop iterations (one Adam step each).
    pub iterations: usize,
    /// Episodes per iteration.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Adam's decay rates and epsilon.
    pub betas: (f64, f64),
    /// Adam's epsilon.
    pub eps: f64,
    /// Rescales the gradient to this global L2 norm when it is larger.
    pub clip: Option<f64>,
    /// The seed of the instance (initial parameters) and of every batch.
    pub seed: u64,
    /// Element type of the kernels.
    pub precision: Precision,
    /// BPTT checkpoint interval; `None`: chosen within `memory_budget` by
    /// [`checkpoint_for_budget`]'s cost model (with this machine's cache size).
    pub checkpoint: Option<usize>,
    /// Bytes the checkpoints of all episodes running at once may take.
    pub memory_budget: u64,
    /// Stop (checkpointed, resumable) before an iteration that would start after this
    /// many seconds of the run.
    pub max_seconds: Option<f64>,
    /// An iteration whose loss or gradient is not finite (exploding BPTT gradients
    /// overflow f32) makes no update and is logged as skipped, as mixed-precision
    /// trainers do; the run fails when more than this many iterations in a row are
    /// skipped (0: at the first). It decides only whether a run stops: every value up
    /// to then is the same whatever it is, so it is not part of the checkpoint's
    /// fingerprint.
    pub max_skips: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            iterations: 100,
            batch: 16,
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            clip: Some(1.0),
            seed: 0,
            precision: Precision::F32,
            checkpoint: None,
            memory_budget: 1 << 30,
            max_seconds: None,
            max_skips: 3,
        }
    }
}

impl TrainConfig {
    fn validate(&self) -> Result<(), TrainError> {
        use check::{at_least_one, positive, unit_open};
        at_least_one("batch", self.batch)?;
        positive("lr", self.lr)?;
        unit_open("betas", self.betas.0)?;
        unit_open("betas", self.betas.1)?;
        positive("eps", self.eps)?;
        self.clip.map_or(Ok(()), |c| positive("clip", c))?;
        self.max_seconds
            .map_or(Ok(()), |m| positive("max_seconds", m))?;
        self.checkpoint
            .map_or(Ok(()), |k| at_least_one("checkpoint", k))
    }

    /// The fields a resumed run must share with the checkpoint (all but `iterations`).
    fn fingerprint(&self) -> Value {
        json!({
            "batch": self.batch, "lr": self.lr, "betas": [self.betas.0, self.betas.1],
            "eps": self.eps, "clip": self.clip, "seed": self.seed,
            "precision": format!("{:?}", self.precision),
        })
    }
}

/// One iteration's record (a line of `log.jsonl`).
#[derive(Clone, Debug, PartialEq)]
pub struct IterLog {
    /// 0-based iteration.
    pub iteration: usize,
    /// Loss and metric of the iteration's batch, before its update.
    pub score: Score,
    /// Global L2 norm of the gradient before clipping.
    pub grad_norm: f64,
    /// Seconds the iteration took (forward, backward and update).
    pub seconds: f64,
    /// The loss or the gradient was not finite: no update was made.
    pub skipped: bool,
}

impl IterLog {
    fn to_json(&self, metric: &str) -> Value {
        let mut v = json!({
            "iteration": self.iteration, "loss": self.score.loss, metric: self.score.metric,
            "grad_norm": self.grad_norm, "seconds": self.seconds,
        });
        if self.skipped {
            v["skipped"] = json!(true);
        }
        if !self.score.curve.is_empty() {
            v["trial_rewards"] = json!(self.score.curve);
        }
        v
    }
}

/// The learned parameters: one per `learn` variable, in variable order.
#[derive(Clone, Debug, PartialEq)]
pub struct Learned {
    /// (variable, values) for each `learn` variable.
    pub params: Vec<(VarId, Vec<f64>)>,
}

impl Learned {
    /// As a values file (`from "..."`), by qualified name, in internal units.
    pub fn to_values(&self, m: &Module) -> Values {
        let mut v = Values::default();
        for (p, data) in &self.params {
            let var = &m.vars[*p];
            let shape = match var.space {
                Space::Global => vec![],
                Space::Pop(q) => vec![m.pops[q].size],
                Space::Syn(q) => vec![m.pops[m.projs[q].post].size, m.pops[m.projs[q].pre].size],
            };
            v.params.insert(
                var.name.clone(),
                Entry {
                    shape,
                    data: data.clone(),
                    unit: var.unit,
                },
            );
        }
        v
    }
}

/// What a finished (or resumed-and-finished) run returns.
#[derive(Clone, Debug)]
pub struct TrainResult {
    /// The parameters after the last iteration.
    pub learned: Learned,
    /// Every iteration's record, the resumed ones included.
    pub log: Vec<IterLog>,
    /// The BPTT checkpoint interval used.
    pub checkpoint: usize,
    /// The iteration the run started at (0, or where it resumed).
    pub started_at: usize,
}

/// Adam's state for one parameter.
#[derive(Clone, Debug, PartialEq)]
struct Moments {
    m: Vec<f64>,
    v: Vec<f64>,
}

/// What a trainer compiled: everything for gradients, or only the forward step.
enum Kernels {
    Grad(Box<GradKernels>),
    Forward(Box<jit::Kernel>),
}

impl Kernels {
    fn forward(&self) -> &jit::Kernel {
        match self {
            Kernels::Grad(g) => &g.forward,
            Kernels::Forward(f) => f,
        }
    }
}

/// The trainer: a network, its adjoint and kernels, a task and a configuration.
pub struct Trainer<'a, K: Task> {
    m: &'a Module,
    adj: Adjoint,
    kernels: Kernels,
    task: &'a K,
    cfg: TrainConfig,
    inst: Instance,
    /// `learn` parameters with their bounds.
    params: Vec<(VarId, Option<(f64, f64)>)>,
    checkpoint: usize,
}

impl<'a, K: Task> Trainer<'a, K> {
    /// Differentiates and compiles `m`, draws its instance from `cfg.seed`, and picks the
    /// BPTT checkpoint interval.
    pub fn new(m: &'a Module, task: &'a K, cfg: TrainConfig) -> Result<Self, TrainError> {
        Self::build(m, task, cfg, true)
    }

    /// A trainer that can only [`Trainer::evaluate`] (its network compiled forward only:
    /// a quarter of the compile time); [`Trainer::gradient`] and training fail.
    pub fn evaluator(m: &'a Module, task: &'a K, cfg: TrainConfig) -> Result<Self, TrainError> {
        Self::build(m, task, cfg, false)
    }

    fn build(m: &'a Module, task: &'a K, cfg: TrainConfig, grad: bool) -> Result<Self, TrainError> {
        cfg.validate()?;
        let adj = lang::diff::diff(m).map_err(|e| TrainError::Diff(e.to_string()))?;
        let opts = jit::Options {
            precision: cfg.precision,
        };
        let kernels = if grad {
            Kernels::Grad(Box::new(GradKernels::compile(m, &adj, opts)?))
        } else {
            Kernels::Forward(Box::new(jit::compile(m, opts)?))
        };
        let inst = lang::init::instantiate(m, cfg.seed)
            .map_err(|e| TrainError::Task(format!("cannot instantiate the network: {e}")))?;
        let params: Vec<(VarId, Option<(f64, f64)>)> = adj
            .grads
            .iter()
            .map(|&(p, _)| match m.vars[p].kind {
                VarKind::Param { bounds, .. } => (p, bounds),
                _ => (p, None),
            })
            .collect();
        let steps = task.steps();
        if steps == 0 {
            return Err(TrainError::Task("episodes have no steps".into()));
        }
        let at_once = rayon::current_num_threads().min(cfg.batch);
        let checkpoint = match cfg.checkpoint {
            Some(k) => k,
            None => checkpoint_for_budget(
                steps,
                state_bytes(m, cfg.precision),
                at_once,
                cfg.memory_budget,
                last_level_cache_bytes(),
            )?,
        };
        Ok(Trainer {
            m,
            adj,
            kernels,
            task,
            cfg,
            inst,
            params,
            checkpoint,
        })
    }

    /// The BPTT checkpoint interval.
    pub fn checkpoint_interval(&self) -> usize {
        self.checkpoint
    }

    /// The current parameters.
    pub fn learned(&self) -> Learned {
        Learned {
            params: self
                .params
                .iter()
                .map(|&(p, _)| (p, self.inst.params[p.index()].clone()))
                .collect(),
        }
    }

    /// The seed of iteration `i`'s batch (a SplitMix64 step of `(seed, i)`).
    pub fn batch_seed(&self, i: usize) -> u64 {
        mix_seed(self.cfg.seed, i as u64)
    }

    /// Loss, metric and gradients (per `learn` parameter, summed over the batch) of
    /// the batch of iteration `i` at the current parameters.
    pub fn gradient(&self, i: usize) -> Result<(Score, Vec<Vec<f64>>), TrainError> {
        match self.cfg.precision {
            Precision::F32 => self.gradient_with::<f32>(i),
            Precision::F64 => self.gradient_with::<f64>(i),
        }
    }

    fn gradient_with<T: Elem>(&self, i: usize) -> Result<(Score, Vec<Vec<f64>>), TrainError>
    where
        K::Batch: EpisodeLoss<T, Acc = K::Acc>,
    {
        let seed = self.batch_seed(i);
        let batch = self.task.batch(self.m, &self.adj, self.cfg.batch, seed)?;
        let g = bptt::<T, K::Batch>(
            self.grad_kernels()?,
            self.m,
            &self.adj,
            &self.inst,
            self.cfg.batch,
            seed,
            self.task.steps(),
            self.checkpoint,
            &batch,
        )?;
        let score = self.task.score(&batch, &g.accs);
        let grads = self
            .params
            .iter()
            .map(|&(p, _)| {
                g.grads
                    .iter()
                    .find(|(q, _)| *q == p)
                    .map(|(_, d)| d.clone())
                    .unwrap_or_else(|| vec![0.0; self.inst.params[p.index()].len()])
            })
            .collect();
        Ok((score, grads))
    }

    /// The score of the current parameters on `episodes` held-out episodes drawn from
    /// `seed` (forward only). Use seeds no iteration draws from: iteration `i` draws
    /// from [`Trainer::batch_seed`]`(i)`, so pass, say, `u64::MAX - k`.
    pub fn evaluate(&self, episodes: usize, seed: u64) -> Result<Score, TrainError> {
        Ok(self.record(episodes, seed, &[])?.0)
    }

    /// Like [`Trainer::evaluate`], also recording the values of `vars` (states or
    /// inputs, not parameters) after every step of every episode:
    /// `records[k][t][b * size + i]` for `vars[k]`, step `t`, episode `b`, element `i`.
    pub fn record(
        &self,
        episodes: usize,
        seed: u64,
        vars: &[VarId],
    ) -> Result<(Score, Vec<Records>), TrainError> {
        if let Some(&p) = vars
            .iter()
            .find(|&&v| matches!(self.m.vars[v].kind, VarKind::Param { .. }))
        {
            return Err(TrainError::RecordParam(self.m.vars[p].name.clone()));
        }
        let batch = self.task.batch(self.m, &self.adj, episodes, seed)?;
        let accs = match self.cfg.precision {
            Precision::F32 => self.record_with::<f32>(&batch, episodes, seed, vars)?,
            Precision::F64 => self.record_with::<f64>(&batch, episodes, seed, vars)?,
        };
        let (accs, per_episode): (Vec<K::Acc>, Vec<Vec<Records>>) = accs.into_iter().unzip();
        // Episode-major to step-major: per variable, per step, the episodes side by side.
        let steps = self.task.steps();
        let records = (0..vars.len())
            .map(|k| {
                (0..steps)
                    .map(|t| {
                        per_episode
                            .iter()
                            .flat_map(|e| e[k][t].iter().copied())
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Ok((self.task.score(&batch, &accs), records))
    }

    /// The forward pass of `record` in element type `T`: per episode, the accumulator
    /// and the recorded values.
    fn record_with<T: Elem>(
        &self,
        batch: &K::Batch,
        episodes: usize,
        seed: u64,
        vars: &[VarId],
    ) -> Result<Recorded<K::Acc>, TrainError>
    where
        K::Batch: EpisodeLoss<T, Acc = K::Acc>,
    {
        let rec = Recording { inner: batch, vars };
        Ok(jit::grad::forward::<T, _>(
            self.kernels.forward(),
            self.m,
            &self.inst,
            episodes,
            seed,
            self.task.steps(),
            &rec,
        )?)
    }

    /// Runs iterations `start..cfg.iterations` in `dir` (created if needed), resuming
    /// from its checkpoint if `resume`; `progress` sees each iteration's record.
    pub fn run(
        &mut self,
        dir: &Path,
        resume: bool,
        progress: &mut dyn FnMut(&IterLog),
    ) -> Result<TrainResult, TrainError> {
        self.check_trainable()?;
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let ck_path = dir.join("checkpoint.json");
        let log_path = dir.join("log.jsonl");
        let fingerprint = self.fingerprint();
        let mut moments = self.fresh_moments();
        let mut start = 0;
        let mut log = Vec::new();
        if resume {
            start = self.load_checkpoint(&ck_path, &fingerprint, &mut moments)?;
            log = read_log(&log_path, start, self.task.metric_name())?;
        } else if ck_path.exists() {
            return Err(TrainError::Io {
                path: ck_path.display().to_string(),
                msg: "a run is already there: resume it (--resume) or choose another output directory".into(),
            });
        }
        // The log holds exactly the checkpoint's iterations.
        let mut text = String::new();
        for l in &log {
            text += &l.to_json(self.task.metric_name()).to_string();
            text.push('\n');
        }
        write_atomic(&log_path, text.as_bytes())?;
        let mut log_file = std::fs::OpenOptions::new()
            .append(true)
            .open(&log_path)
            .map_err(|e| io_err(&log_path, e))?;
        let started = Instant::now();
        for i in start..self.cfg.iterations {
            if self
                .cfg
                .max_seconds
                .is_some_and(|m| started.elapsed().as_secs_f64() >= m)
            {
                break;
            }
            let rec = self.step(i, &mut moments, trailing_skips(&log))?;
            writeln!(log_file, "{}", rec.to_json(self.task.metric_name()))
                .and_then(|_| log_file.flush())
                .map_err(|e| io_err(&log_path, e))?;
            self.save_checkpoint(&ck_path, i + 1, &fingerprint, &moments)?;
            progress(&rec);
            log.push(rec);
        }
        Ok(TrainResult {
            learned: self.learned(),
            log,
            checkpoint: self.checkpoint,
            started_at: start,
        })
    }

    /// `iterations` Adam steps in memory from fresh moments (iteration `i` draws the
    /// batch of [`Trainer::batch_seed`]`(i)`), with no files: the inner loop of a
    /// memetic search. Returns each iteration's record.
    pub fn tune(&mut self, iterations: usize) -> Result<Vec<IterLog>, TrainError> {
        self.check_trainable()?;
        let mut moments = self.fresh_moments();
        let mut log = Vec::with_capacity(iterations);
        for i in 0..iterations {
            let rec = self.step(i, &mut moments, trailing_skips(&log))?;
            log.push(rec);
        }
        Ok(log)
    }

    /// Iteration `i` after `skipped` skipped iterations in a row: an error if it is
    /// skipped too and that makes more than `max_skips`.
    fn step(
        &mut self,
        i: usize,
        moments: &mut [Moments],
        skipped: usize,
    ) -> Result<IterLog, TrainError> {
        let rec = self.iterate(i, moments)?;
        if rec.skipped && skipped + 1 > self.cfg.max_skips {
            let in_a_row = if skipped > 0 {
                format!(" ({} iterations in a row)", skipped + 1)
            } else {
                String::new()
            };
            return Err(TrainError::Task(format!(
                "iteration {i}: the loss or its gradient is not finite (loss {}, gradient norm {}){in_a_row}; lower the learning rate or clip harder",
                rec.score.loss, rec.grad_norm
            )));
        }
        Ok(rec)
    }

    fn check_trainable(&self) -> Result<(), TrainError> {
        if self.params.is_empty() {
            return Err(TrainError::Task(format!(
                "network `{}` has no `learn` parameters: nothing to train",
                self.m.name
            )));
        }
        Ok(())
    }

    fn fresh_moments(&self) -> Vec<Moments> {
        self.params
            .iter()
            .map(|&(p, _)| {
                let n = self.inst.params[p.index()].len();
                Moments {
                    m: vec![0.0; n],
                    v: vec![0.0; n],
                }
            })
            .collect()
    }

    /// Iteration `i`: the gradient of its batch, clipped, then one Adam step; no step
    /// (skipped) if the loss or the gradient is not finite.
    fn iterate(&mut self, i: usize, moments: &mut [Moments]) -> Result<IterLog, TrainError> {
        let t0 = Instant::now();
        let (score, mut grads) = self.gradient(i)?;
        let norm = grads.iter().flatten().map(|g| g * g).sum::<f64>().sqrt();
        if !norm.is_finite() || !score.loss.is_finite() {
            return Ok(IterLog {
                iteration: i,
                score,
                grad_norm: norm,
                seconds: t0.elapsed().as_secs_f64(),
                skipped: true,
            });
        }
        if let Some(c) = self.cfg.clip {
            if norm > c {
                grads.iter_mut().flatten().for_each(|g| *g *= c / norm);
            }
        }
        self.adam_step(i + 1, &grads, moments);
        Ok(IterLog {
            iteration: i,
            score,
            grad_norm: norm,
            seconds: t0.elapsed().as_secs_f64(),
            skipped: false,
        })
    }

    fn grad_kernels(&self) -> Result<&GradKernels, TrainError> {
        match &self.kernels {
            Kernels::Grad(g) => Ok(g),
            Kernels::Forward(_) => Err(TrainError::Task(
                "this trainer was built to evaluate only (Trainer::evaluator)".into(),
            )),
        }
    }

    /// The current values of the `learn` parameter named `name` (qualified).
    pub fn param(&self, name: &str) -> Option<&[f64]> {
        self.params
            .iter()
            .find(|(p, _)| self.m.vars[*p].name == name)
            .map(|(p, _)| self.inst.params[p.index()].as_slice())
    }

    /// One Adam step (`t` counts from 1), then each parameter back into its bounds.
    fn adam_step(&mut self, t: usize, grads: &[Vec<f64>], moments: &mut [Moments]) {
        let (b1, b2) = self.cfg.betas;
        let c1 = 1.0 - b1.powi(t as i32);
        let c2 = 1.0 - b2.powi(t as i32);
        for (((p, bounds), g), mo) in self.params.iter().zip(grads).zip(moments.iter_mut()) {
            let x = &mut self.inst.params[p.index()];
            for k in 0..x.len() {
                mo.m[k] = b1 * mo.m[k] + (1.0 - b1) * g[k];
                mo.v[k] = b2 * mo.v[k] + (1.0 - b2) * g[k] * g[k];
                let step = self.cfg.lr * (mo.m[k] / c1) / ((mo.v[k] / c2).sqrt() + self.cfg.eps);
                x[k] -= step;
                if let Some((lo, hi)) = bounds {
                    x[k] = x[k].clamp(*lo, *hi);
                }
            }
        }
    }

    /// What a checkpoint must match to be resumed: the network (its printed IR and
    /// data), the task and its options, and the configuration but for `iterations`.
    fn fingerprint(&self) -> Value {
        let ir = self.m.to_string();
        let data: Vec<u64> = self.m.data.iter().flatten().map(|x| x.to_bits()).collect();
        json!({
            "network": self.m.name,
            "ir_hash": format!("{:016x}", fnv1a(ir.as_bytes()) ^ fnv1a(&bytes_of(&data))),
            "task": self.task.name(),
            "task_options": self.task.options(),
            "config": self.cfg.fingerprint(),
        })
    }

    fn save_checkpoint(
        &self,
        path: &Path,
        next: usize,
        fingerprint: &Value,
        moments: &[Moments],
    ) -> Result<(), TrainError> {
        let params: Vec<Value> = self
            .params
            .iter()
            .zip(moments)
            .map(|(&(p, _), mo)| {
                json!({
                    "name": self.m.vars[p].name,
                    "value": self.inst.params[p.index()],
                    "adam_m": mo.m,
                    "adam_v": mo.v,
                })
            })
            .collect();
        let ck = json!({
            "format": "ruleopt-train-checkpoint/1",
            "next_iteration": next,
            "run": fingerprint,
            "params": params,
        });
        write_atomic(path, ck.to_string().as_bytes())
    }

    /// Restores parameters and moments; returns the next iteration.
    fn load_checkpoint(
        &mut self,
        path: &Path,
        fingerprint: &Value,
        moments: &mut [Moments],
    ) -> Result<usize, TrainError> {
        let fail = |msg: String| TrainError::Resume {
            path: path.display().to_string(),
            msg,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let ck: Value =
            serde_json::from_str(&text).map_err(|e| fail(format!("not valid JSON: {e}")))?;
        if ck.get("run") != Some(fingerprint) {
            return Err(fail(format!(
                "it belongs to another run (network, task, options or configuration differ):\n  checkpoint: {}\n  this run:   {fingerprint}",
                ck.get("run").cloned().unwrap_or(Value::Null)
            )));
        }
        let next = ck
            .get("next_iteration")
            .and_then(Value::as_u64)
            .ok_or_else(|| fail("no `next_iteration`".into()))? as usize;
        let saved = ck
            .get("params")
            .and_then(Value::as_array)
            .ok_or_else(|| fail("no `params`".into()))?;
        for ((p, _), mo) in self.params.iter().zip(moments.iter_mut()) {
            let name = &self.m.vars[*p].name;
            let e = saved
                .iter()
                .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
                .ok_or_else(|| fail(format!("no values for `{name}`")))?;
            let n = self.inst.params[p.index()].len();
            let vec = |field: &str| -> Result<Vec<f64>, TrainError> {
                let v: Option<Vec<f64>> = e
                    .get(field)
                    .and_then(Value::as_array)
                    .and_then(|a| a.iter().map(Value::as_f64).collect());
                match v {
                    Some(v) if v.len() == n => Ok(v),
                    _ => Err(fail(format!("`{name}.{field}` is not {n} numbers"))),
                }
            };
            self.inst.params[p.index()] = vec("value")?;
            mo.m = vec("adam_m")?;
            mo.v = vec("adam_v")?;
        }
        Ok(next)
    }
}

/// The records of `log.jsonl` before iteration `upto` (a missing log is empty).
pub fn read_log(path: &Path, upto: usize, metric: &str) -> Result<Vec<IterLog>, TrainError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io_err(path, e)),
    };
    let mut out = Vec::new();
    for line in text.lines() {
        // A line cut by a crash, or of an iteration after the checkpoint, is dropped.
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        // A value that was not finite is written as `null`.
        let num = |k: &str| {
            v.get(k).and_then(|x| {
                if x.is_null() {
                    Some(f64::NAN)
                } else {
                    x.as_f64()
                }
            })
        };
        let (Some(i), Some(loss), Some(metric), Some(norm), Some(secs)) = (
            v.get("iteration").and_then(Value::as_u64),
            num("loss"),
            num(metric),
            num("grad_norm"),
            num("seconds"),
        ) else {
            continue;
        };
        if (i as usize) < upto && i as usize == out.len() {
            let curve = v
                .get("trial_rewards")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default();
            out.push(IterLog {
                iteration: i as usize,
                score: Score {
                    loss,
                    metric,
                    curve,
                },
                grad_norm: norm,
                seconds: secs,
                skipped: v.get("skipped").and_then(Value::as_bool) == Some(true),
            });
        }
    }
    Ok(out)
}

/// How many iterations at the end of `log` were skipped, in a row.
fn trailing_skips(log: &[IterLog]) -> usize {
    log.iter().rev().take_while(|l| l.skipped).count()
}

/// The `i`-th seed derived from `seed`: one SplitMix64 step of `seed + (i + 1) * golden`.
/// Streams derived this way (batches, generations, individuals) do not depend on the
/// order or thread in which they are drawn.
pub fn mix_seed(seed: u64, i: u64) -> u64 {
    let mut z = seed.wrapping_add(i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Writes `bytes` to `path` so that a reader sees the old or the new file, never a
/// part: a temporary file in the same directory, flushed to disk, then renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let tmp: PathBuf = {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        path.with_file_name(name)
    };
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| io_err(path, e))
}

fn io_err(path: &Path, e: std::io::Error) -> TrainError {
    TrainError::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    }
}

/// FNV-1a of `bytes`: the fingerprints of runs and of candidates' functions.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn bytes_of(xs: &[u64]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}
