//! Evolution of hole formulas: islands of expression-tree genomes under (mu + lambda)
//! or tournament (regularized) evolution, with a cheap first evaluation (hurdle), a
//! functional-equivalence cache, a Pareto front of fitness against complexity, and a
//! run directory that is checkpointed every generation.
//!
//! Shaped like argmin and bounded like egg: an [`Evaluator`] is the problem (the search
//! never sees a network, a task or Cranelift: [`crate::rules`] adapts those), a
//! [`Search`] runs generations until one of the [`SearchConfig`]'s limits and returns
//! its [`StopReason`]; an observer sees every generation's [`GenLog`].
//!
//! # Reproducibility
//!
//! Everything random is drawn from streams derived from `(seed, generation, island)`
//! ([`crate::train::mix_seed`]); variation is sequential per island, evaluation runs in
//! parallel but each candidate's evaluation depends on its genome alone (fixed
//! episodes), and results are merged in candidate order. So a seed and a configuration
//! give the same run at any thread count, and a resumed run equals an uninterrupted
//! one.
//!
//! # A generation
//!
//! 1. Each island breeds `lambda` children (crossover with probability `crossover`,
//!    then one mutation), canonicalised ([`crate::simplify::canonical`]). A child whose
//!    function (its values on fixed probe inputs) equals one already on its island is
//!    bred again (up to 10 times).
//! 2. Children whose function was evaluated before take the cached result (no
//!    evaluation). The others are evaluated cheaply first ([`Stage::Hurdle`]); those
//!    below the hurdle (the `hurdle` quantile of their island's parents' cheap scores)
//!    are dropped, the rest are evaluated in full ([`Stage::Full`]).
//! 3. Survivors: (mu + lambda) keeps the best `mu` of parents and children (ties: the
//!    simpler, then the younger); tournament evolution adds the children and removes
//!    the oldest (`aging`, regularized evolution) or the worst.
//! 4. Every `migration_interval` generations each island sends copies of its best
//!    `migrants` to the next island (a ring), replacing its worst.

use crate::expr::{OpSet, Tree};
use crate::simplify;
use crate::train::{fnv1a, mix_seed, write_atomic, TrainError};
use crate::variation::{self, Limits};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// One candidate: a tree per hole.
#[derive(Clone, Debug, PartialEq)]
pub struct Genome {
    /// One tree per hole, in the order of [`Search::holes`].
    pub trees: Vec<Tree>,
}

impl Genome {
    /// As JSON: an array of trees.
    pub fn to_json(&self) -> Value {
        Value::Array(self.trees.iter().map(Tree::to_json).collect())
    }

    /// From [`Genome::to_json`].
    pub fn from_json(v: &Value) -> Result<Genome, String> {
        let a = v.as_array().ok_or("a genome is an array of trees")?;
        Ok(Genome {
            trees: a.iter().map(Tree::from_json).collect::<Result<_, _>>()?,
        })
    }

    /// Sum of the trees' complexities.
    pub fn complexity(&self, protected: bool) -> usize {
        self.trees
            .iter()
            .map(|t| simplify::complexity(t, protected))
            .sum()
    }
}

/// A hole as the search sees it: its name and the names of its arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct HoleSpec {
    /// Hole name (`f` of `?f(...)`).
    pub name: String,
    /// Argument names as shown in formulas.
    pub args: Vec<String>,
}

/// How much of a candidate an evaluation looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Cheap and short: decides whether the full evaluation is worth it.
    Hurdle,
    /// The fitness that selection uses.
    Full,
}

/// A candidate's evaluation. Fitness is to be maximised; a candidate that cannot run
/// (does not compile, diverges, produces NaN) has fitness `-inf` and an `error`.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Larger is better; `-inf` for a failed candidate.
    pub fitness: f64,
    /// The task's own metric (what a user reads).
    pub metric: f64,
    /// The candidate's trees after its constants were tuned (memetic search): written
    /// back into the genome (Lamarckian). `None`: unchanged.
    pub tuned: Option<Vec<Tree>>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

impl Evaluation {
    /// A failed candidate.
    pub fn failed(error: impl Into<String>) -> Evaluation {
        Evaluation {
            fitness: f64::NEG_INFINITY,
            metric: f64::NAN,
            tuned: None,
            error: Some(error.into()),
        }
    }

    fn sanitised(mut self) -> Evaluation {
        if !self.fitness.is_finite() {
            self.fitness = f64::NEG_INFINITY;
            if self.error.is_none() {
                self.error = Some("fitness is not finite".into());
            }
        }
        self
    }

    fn to_json(&self) -> Value {
        json!({
            "fitness": finite_or_null(self.fitness),
            "metric": finite_or_null(self.metric),
            "tuned": self.tuned.as_ref().map(|t| Value::Array(t.iter().map(Tree::to_json).collect())),
            "error": self.error,
        })
    }

    fn from_json(v: &Value) -> Result<Evaluation, String> {
        let tuned = match v.get("tuned") {
            None | Some(Value::Null) => None,
            Some(t) => Some(Genome::from_json(t)?.trees),
        };
        Ok(Evaluation {
            fitness: v
                .get("fitness")
                .and_then(Value::as_f64)
                .unwrap_or(f64::NEG_INFINITY),
            metric: v.get("metric").and_then(Value::as_f64).unwrap_or(f64::NAN),
            tuned,
            error: v.get("error").and_then(Value::as_str).map(str::to_string),
        })
    }
}

/// The problem a search solves: what a genome is worth. Implementations must be
/// deterministic (the same genome and stage give the same evaluation) and must not
/// panic; they run on several threads at once.
pub trait Evaluator: Sync {
    /// Evaluates `genome` at `stage`.
    fn evaluate(&self, genome: &Genome, stage: Stage) -> Evaluation;
    /// What identifies the problem (network, task, options): a resumed run must match.
    fn fingerprint(&self) -> Value;
}

/// How survivors are chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Strategy {
    /// (mu + lambda): the best `mu` of parents and `lambda` children survive; parents
    /// are picked by tournaments of `tournament` (1: uniformly), as in Jordan et al.
    /// (2021) with mu = lambda = 4.
    MuPlusLambda {
        /// Parents kept.
        mu: usize,
        /// Children per generation.
        lambda: usize,
        /// Tournament size for picking parents.
        tournament: usize,
    },
    /// Tournament evolution over a population of `population`: each child's parent is
    /// the best of `tournament` random members; `lambda` children per generation
    /// replace the oldest members (`aging`: regularized evolution, Real et al. 2019) or
    /// the worst.
    Tournament {
        /// Population size.
        population: usize,
        /// Children per generation.
        lambda: usize,
        /// Tournament size.
        tournament: usize,
        /// Remove the oldest (true) or the worst (false).
        aging: bool,
    },
}

impl Strategy {
    fn population(&self) -> usize {
        match *self {
            Strategy::MuPlusLambda { mu, .. } => mu,
            Strategy::Tournament { population, .. } => population,
        }
    }
    fn lambda(&self) -> usize {
        match *self {
            Strategy::MuPlusLambda { lambda, .. } | Strategy::Tournament { lambda, .. } => lambda,
        }
    }
    fn tournament(&self) -> usize {
        match *self {
            Strategy::MuPlusLambda { tournament, .. } | Strategy::Tournament { tournament, .. } => {
                tournament
            }
        }
    }
    fn to_json(self) -> Value {
        match self {
            Strategy::MuPlusLambda {
                mu,
                lambda,
                tournament,
            } => json!({"kind": "mu+lambda", "mu": mu, "lambda": lambda, "tournament": tournament}),
            Strategy::Tournament {
                population,
                lambda,
                tournament,
                aging,
            } => json!({"kind": "tournament", "population": population, "lambda": lambda,
                        "tournament": tournament, "aging": aging}),
        }
    }
}

/// A search's shape and limits.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchConfig {
    /// Survivor selection.
    pub strategy: Strategy,
    /// Independent populations.
    pub islands: usize,
    /// Generations between migrations (0: never).
    pub migration_interval: usize,
    /// Individuals each island sends.
    pub migrants: usize,
    /// Operators of the trees.
    pub ops: OpSet,
    /// Size and depth bounds of every tree.
    pub limits: Limits,
    /// Depth of the random initial trees.
    pub init_depth: usize,
    /// Probability of a constant leaf in random trees.
    pub const_prob: f64,
    /// Probability that a child comes from crossover (then mutation).
    pub crossover: f64,
    /// Quantile of the parents' cheap scores a child's cheap score must reach to be
    /// evaluated in full; `None`: no hurdle.
    pub hurdle: Option<f64>,
    /// Generations to run (the run's length; a resumed run may extend it).
    pub generations: usize,
    /// Stop after this many evaluations (cheap and full).
    pub max_evaluations: Option<u64>,
    /// Stop (checkpointed) before a generation that would start after this many
    /// seconds of this process.
    pub max_seconds: Option<f64>,
    /// Stop when the best fitness reaches this.
    pub target: Option<f64>,
    /// Size of the hall of fame (distinct shapes).
    pub hall_of_fame: usize,
    /// The run's seed.
    pub seed: u64,
    /// A known answer (one tree per hole): the search records when it first evaluates
    /// a candidate equal to it up to a positive scale per hole ([`same_up_to_scale`]).
    pub known: Option<Vec<Tree>>,
    /// Stop at the first candidate equal to `known`.
    pub stop_on_hit: bool,
    /// One individual per shape (formula up to its constants' values) per island.
    pub niching: bool,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            strategy: Strategy::MuPlusLambda {
                mu: 4,
                lambda: 4,
                tournament: 1,
            },
            islands: 1,
            migration_interval: 10,
            migrants: 1,
            ops: OpSet::default(),
            limits: Limits {
                max_size: 15,
                max_depth: 5,
            },
            init_depth: 3,
            const_prob: 0.2,
            crossover: 0.0,
            hurdle: Some(0.5),
            generations: 100,
            max_evaluations: None,
            max_seconds: None,
            target: None,
            hall_of_fame: 10,
            seed: 0,
            known: None,
            stop_on_hit: false,
            niching: true,
        }
    }
}

impl SearchConfig {
    /// Checks every field; errors name it.
    pub fn validate(&self) -> Result<(), TrainError> {
        use crate::train::check::{at_least_one, fail, positive, unit};
        at_least_one("population", self.strategy.population())?;
        at_least_one("lambda", self.strategy.lambda())?;
        at_least_one("tournament", self.strategy.tournament())?;
        at_least_one("islands", self.islands)?;
        if self.ops.ops.is_empty() {
            fail("ops", "needs at least one operator")?;
        }
        if self.limits.max_size == 0 || self.limits.max_depth == 0 {
            fail("max_size", "size and depth limits must be at least 1")?;
        }
        unit("const_prob", self.const_prob, "a probability")?;
        unit("crossover", self.crossover, "a probability")?;
        self.hurdle
            .map_or(Ok(()), |h| unit("hurdle", h, "a quantile"))?;
        self.max_seconds
            .map_or(Ok(()), |m| positive("max_seconds", m))?;
        at_least_one("hall_of_fame", self.hall_of_fame)
    }

    /// What a resumed run must share (all but the limits).
    fn fingerprint(&self) -> Value {
        json!({
            "strategy": self.strategy.to_json(), "islands": self.islands,
            "migration_interval": self.migration_interval, "migrants": self.migrants,
            "ops": self.ops.ops.iter().map(|o| o.name()).collect::<Vec<_>>(),
            "protected": self.ops.protected,
            "max_size": self.limits.max_size, "max_depth": self.limits.max_depth,
            "init_depth": self.init_depth, "const_prob": self.const_prob,
            "crossover": self.crossover, "hurdle": self.hurdle, "seed": self.seed,
            "niching": self.niching,
            "known": self.known.as_ref().map(|k| k.iter().map(Tree::to_json).collect::<Vec<_>>()),
        })
    }
}

/// A member of a population.
#[derive(Clone, Debug, PartialEq)]
pub struct Individual {
    /// Its trees (with tuned constants, if its evaluation tuned them: Lamarckian).
    pub genome: Genome,
    /// The trees that were evaluated, when tuning changed them: evaluating these again
    /// reproduces the individual's fitness exactly.
    pub evaluated: Option<Genome>,
    /// Full-evaluation fitness.
    pub fitness: f64,
    /// The task's metric.
    pub metric: f64,
    /// Cheap-evaluation fitness, if it had one.
    pub hurdle: Option<f64>,
    /// Complexity (canonical size).
    pub complexity: usize,
    /// Serial number: order of birth in the run (older is smaller).
    pub id: u64,
    /// The generation it was born in (0: initial population).
    pub born: usize,
    /// Its function's fingerprint (values on the probe inputs).
    pub key: u64,
}

impl Individual {
    fn to_json(&self) -> Value {
        json!({
            "genome": self.genome.to_json(),
            "evaluated": self.evaluated.as_ref().map(Genome::to_json),
            "fitness": finite_or_null(self.fitness),
            "metric": finite_or_null(self.metric), "hurdle": self.hurdle.map(finite_or_null),
            "complexity": self.complexity, "id": self.id, "born": self.born,
            "key": format!("{:016x}", self.key),
        })
    }

    fn from_json(v: &Value) -> Result<Individual, String> {
        let num = |f: &str| v.get(f).and_then(Value::as_f64);
        let int = |f: &str| {
            v.get(f)
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("no `{f}`"))
        };
        Ok(Individual {
            genome: Genome::from_json(v.get("genome").ok_or("no `genome`")?)?,
            evaluated: match v.get("evaluated") {
                None | Some(Value::Null) => None,
                Some(g) => Some(Genome::from_json(g)?),
            },
            fitness: num("fitness").unwrap_or(f64::NEG_INFINITY),
            metric: num("metric").unwrap_or(f64::NAN),
            hurdle: match v.get("hurdle") {
                None | Some(Value::Null) => None,
                Some(h) => Some(h.as_f64().unwrap_or(f64::NEG_INFINITY)),
            },
            complexity: int("complexity")? as usize,
            id: int("id")?,
            born: int("born")? as usize,
            key: v
                .get("key")
                .and_then(Value::as_str)
                .and_then(|s| u64::from_str_radix(s, 16).ok())
                .ok_or("no `key`")?,
        })
    }

    /// The human-readable formulas, one per hole: `f(a, b) = ...`.
    pub fn formulas(&self, holes: &[HoleSpec]) -> Vec<String> {
        self.genome.formulas(holes)
    }
}

impl Genome {
    /// The human-readable formulas, one per hole: `f(a, b) = ...`.
    pub fn formulas(&self, holes: &[HoleSpec]) -> Vec<String> {
        holes
            .iter()
            .zip(&self.trees)
            .map(|(h, t)| {
                let names: Vec<&str> = h.args.iter().map(String::as_str).collect();
                format!("{}({}) = {}", h.name, h.args.join(", "), t.formula(&names))
            })
            .collect()
    }
}

/// Why a search stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// All generations ran.
    Generations,
    /// The evaluation budget is spent.
    Evaluations,
    /// The time budget is spent (the run is checkpointed and can be resumed).
    Time,
    /// The target fitness was reached.
    Target,
    /// A candidate equal to the known answer was found.
    Found,
}

impl StopReason {
    /// A short description.
    pub fn describe(self) -> &'static str {
        match self {
            StopReason::Generations => "all generations ran",
            StopReason::Evaluations => "the evaluation budget is spent",
            StopReason::Time => "the time budget is spent (resume with --resume)",
            StopReason::Target => "the target fitness was reached",
            StopReason::Found => "the known rule was found",
        }
    }
}

/// One generation's record (a line of `log.jsonl`).
#[derive(Clone, Debug, PartialEq)]
pub struct GenLog {
    /// 0-based generation (0: the initial population).
    pub generation: usize,
    /// The best individual so far.
    pub best_fitness: f64,
    /// Its metric.
    pub best_metric: f64,
    /// Its formulas.
    pub best_formulas: Vec<String>,
    /// Its complexity.
    pub best_complexity: usize,
    /// Mean fitness over all islands' members (finite ones).
    pub mean_fitness: f64,
    /// Evaluations so far (cheap and full).
    pub evaluations: u64,
    /// Children answered by the cache so far.
    pub cache_hits: u64,
    /// Children stopped at the hurdle so far.
    pub hurdle_rejections: u64,
    /// Children that failed (did not compile, diverged) so far.
    pub failures: u64,
    /// Seconds this generation took.
    pub seconds: f64,
    /// Evaluations per second in this generation.
    pub evals_per_second: f64,
}

impl GenLog {
    fn to_json(&self) -> Value {
        json!({
            "generation": self.generation, "best_fitness": finite_or_null(self.best_fitness),
            "best_metric": finite_or_null(self.best_metric), "best": self.best_formulas,
            "best_complexity": self.best_complexity,
            "mean_fitness": finite_or_null(self.mean_fitness),
            "evaluations": self.evaluations, "cache_hits": self.cache_hits,
            "hurdle_rejections": self.hurdle_rejections, "failures": self.failures,
            "seconds": self.seconds, "evals_per_second": self.evals_per_second,
        })
    }

    /// From a line of `log.jsonl`.
    pub fn from_json(v: &Value) -> Option<GenLog> {
        let f = |k: &str| v.get(k).and_then(Value::as_f64);
        let u = |k: &str| v.get(k).and_then(Value::as_u64);
        Some(GenLog {
            generation: u("generation")? as usize,
            best_fitness: f("best_fitness").unwrap_or(f64::NEG_INFINITY),
            best_metric: f("best_metric").unwrap_or(f64::NAN),
            best_formulas: v
                .get("best")?
                .as_array()?
                .iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect(),
            best_complexity: u("best_complexity")? as usize,
            mean_fitness: f("mean_fitness").unwrap_or(f64::NAN),
            evaluations: u("evaluations")?,
            cache_hits: u("cache_hits")?,
            hurdle_rejections: u("hurdle_rejections")?,
            failures: u("failures")?,
            seconds: f("seconds")?,
            evals_per_second: f("evals_per_second")?,
        })
    }
}

/// What a search returns.
#[derive(Clone, Debug)]
pub struct SearchResult {
    /// Why it stopped.
    pub stop: StopReason,
    /// The best individual of each of the best shapes (formulas up to their constants)
    /// ever evaluated, best first.
    pub hall_of_fame: Vec<Individual>,
    /// Non-dominated individuals (fitness against complexity), simplest first.
    pub pareto: Vec<Individual>,
    /// Every generation's record, resumed ones included.
    pub log: Vec<GenLog>,
    /// Evaluations spent (cheap and full), over the whole run.
    pub evaluations: u64,
    /// When a candidate equal to [`SearchConfig::known`] was first evaluated.
    pub first_hit: Option<Hit>,
    /// Why candidates failed: each distinct message with how many candidates it
    /// stopped, most frequent first (at most 5).
    pub errors: Vec<(String, usize)>,
}

/// The first candidate equal to the known answer: when, and at what cost.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// The generation it was born in.
    pub generation: usize,
    /// Evaluations spent up to the end of that generation.
    pub evaluations: u64,
    /// Seconds of search up to the end of that generation (summed over generations,
    /// so time between an interruption and a resume does not count).
    pub seconds: f64,
    /// The candidate, as evaluated.
    pub genome: Genome,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct CacheEntry {
    hurdle: Option<f64>,
    full: Option<Evaluation>,
    /// Why the candidate failed (at whichever stage it failed first).
    error: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Counters {
    evaluations: u64,
    cache_hits: u64,
    hurdle_rejections: u64,
    failures: u64,
    next_id: u64,
}

/// The state of a run between generations: everything a checkpoint holds.
#[derive(Clone, Debug, PartialEq)]
struct State {
    /// The next generation to run.
    generation: usize,
    islands: Vec<Vec<Individual>>,
    cache: HashMap<u64, CacheEntry>,
    hall: Vec<Individual>,
    pareto: Vec<Individual>,
    counters: Counters,
    /// Seconds of all generations so far.
    seconds: f64,
    first_hit: Option<Hit>,
}

/// A search over the formulas of some holes.
pub struct Search<'a, E: Evaluator> {
    cfg: SearchConfig,
    holes: Vec<HoleSpec>,
    eval: &'a E,
    /// Per hole: probe argument vectors for functional fingerprints.
    probes: Vec<Vec<Vec<f64>>>,
}

/// Probe points per hole for functional fingerprints.
const PROBES: usize = 24;

impl<'a, E: Evaluator> Search<'a, E> {
    /// A search for `holes` (each with at least... any number of arguments) on `eval`.
    pub fn new(cfg: SearchConfig, holes: Vec<HoleSpec>, eval: &'a E) -> Result<Self, TrainError> {
        cfg.validate()?;
        if holes.is_empty() {
            return Err(TrainError::Task(
                "the rule has no holes `?f(...)`: nothing to search".into(),
            ));
        }
        // Probes: small integers (reward-like signals are often +-1, 0) and spread values.
        let mut rng = ChaCha8Rng::seed_from_u64(0x005E_ED0F_9B0B);
        let probes = holes
            .iter()
            .map(|h| {
                (0..PROBES)
                    .map(|k| {
                        (0..h.args.len())
                            .map(|_| {
                                if k < 4 {
                                    [-1.0, 0.0, 1.0, 2.0][rng.gen_range(0..4)]
                                } else {
                                    rng.gen_range(-2.0..2.0)
                                }
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Ok(Search {
            cfg,
            holes,
            eval,
            probes,
        })
    }

    /// The holes, in genome order.
    pub fn holes(&self) -> &[HoleSpec] {
        &self.holes
    }

    /// The functional fingerprint of a genome: its values on the probes, rounded to
    /// about 9 significant digits, hashed.
    pub fn key(&self, g: &Genome) -> u64 {
        let mut bytes = Vec::new();
        for (t, probes) in g.trees.iter().zip(&self.probes) {
            bytes.extend(0xFFFF_0000_FFFFu64.to_le_bytes());
            for p in probes {
                bytes.extend(quantise(t.eval(p, self.cfg.ops.protected)).to_le_bytes());
            }
        }
        fnv1a(&bytes)
    }

    /// Runs until a limit. With `dir`, writes `log.jsonl` and `checkpoint.json` there
    /// (after every generation, atomically) and, if `resume`, continues from its
    /// checkpoint; without, runs in memory.
    pub fn run(
        &self,
        dir: Option<&Path>,
        resume: bool,
        observer: &mut dyn FnMut(&GenLog),
    ) -> Result<SearchResult, TrainError> {
        let started = Instant::now();
        let fingerprint = json!({"search": self.cfg.fingerprint(), "problem": self.eval.fingerprint(),
            "holes": self.holes.iter().map(|h| json!({"name": h.name, "args": h.args})).collect::<Vec<_>>()});
        let mut log = Vec::new();
        let mut state = None;
        let mut log_file = None;
        if let Some(dir) = dir {
            std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
            let ck = dir.join("checkpoint.json");
            let log_path = dir.join("log.jsonl");
            if resume {
                let s = self.load(&ck, &fingerprint)?;
                log = read_log(&log_path, s.generation)?;
                state = Some(s);
            } else if ck.exists() {
                return Err(TrainError::Io {
                    path: ck.display().to_string(),
                    msg: "a search is already there: resume it (--resume) or choose another output directory".into(),
                });
            }
            let text: String = log.iter().map(|l| format!("{}\n", l.to_json())).collect();
            write_atomic(&log_path, text.as_bytes())?;
            log_file = Some(
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&log_path)
                    .map_err(|e| io_err(&log_path, e))?,
            );
        }
        let mut state = match state {
            Some(s) => s,
            None => State {
                generation: 0,
                islands: vec![Vec::new(); self.cfg.islands],
                cache: HashMap::new(),
                hall: Vec::new(),
                pareto: Vec::new(),
                counters: Counters::default(),
                seconds: 0.0,
                first_hit: None,
            },
        };
        let stop = loop {
            if self.cfg.stop_on_hit && state.first_hit.is_some() {
                break StopReason::Found;
            }
            if let Some(l) = log.last() {
                if self.cfg.target.is_some_and(|t| l.best_fitness >= t) {
                    break StopReason::Target;
                }
            }
            if state.generation >= self.cfg.generations.max(1) {
                break StopReason::Generations;
            }
            if self
                .cfg
                .max_evaluations
                .is_some_and(|m| state.counters.evaluations >= m)
            {
                break StopReason::Evaluations;
            }
            if self
                .cfg
                .max_seconds
                .is_some_and(|m| started.elapsed().as_secs_f64() >= m)
            {
                break StopReason::Time;
            }
            let t0 = Instant::now();
            let evals_before = state.counters.evaluations;
            let hit = self.generation(&mut state);
            let seconds = t0.elapsed().as_secs_f64();
            state.seconds += seconds;
            if let (Some(genome), None) = (hit, &state.first_hit) {
                state.first_hit = Some(Hit {
                    generation: state.generation,
                    evaluations: state.counters.evaluations,
                    seconds: state.seconds,
                    genome,
                });
            }
            let rec = self.record(&state, seconds, state.counters.evaluations - evals_before);
            state.generation += 1;
            if let (Some(dir), Some(f)) = (dir, log_file.as_mut()) {
                let path = dir.join("log.jsonl");
                writeln!(f, "{}", rec.to_json())
                    .and_then(|_| f.flush())
                    .map_err(|e| io_err(&path, e))?;
                self.save(&dir.join("checkpoint.json"), &state, &fingerprint)?;
            }
            observer(&rec);
            log.push(rec);
        };
        Ok(SearchResult {
            stop,
            hall_of_fame: state.hall.clone(),
            pareto: state.pareto.clone(),
            log,
            evaluations: state.counters.evaluations,
            first_hit: state.first_hit.clone(),
            errors: error_summary(&state.cache),
        })
    }

    fn record(&self, state: &State, seconds: f64, evals: u64) -> GenLog {
        let best = state.hall.first();
        let members: Vec<f64> = state
            .islands
            .iter()
            .flatten()
            .map(|i| i.fitness)
            .filter(|f| f.is_finite())
            .collect();
        GenLog {
            generation: state.generation,
            best_fitness: best.map_or(f64::NEG_INFINITY, |b| b.fitness),
            best_metric: best.map_or(f64::NAN, |b| b.metric),
            best_formulas: best.map(|b| b.formulas(&self.holes)).unwrap_or_default(),
            best_complexity: best.map_or(0, |b| b.complexity),
            mean_fitness: if members.is_empty() {
                f64::NAN
            } else {
                members.iter().sum::<f64>() / members.len() as f64
            },
            evaluations: state.counters.evaluations,
            cache_hits: state.counters.cache_hits,
            hurdle_rejections: state.counters.hurdle_rejections,
            failures: state.counters.failures,
            seconds,
            evals_per_second: if seconds > 0.0 {
                evals as f64 / seconds
            } else {
                0.0
            },
        }
    }

    /// One generation (generation 0 draws the initial populations); returns the first
    /// newcomer equal to the known answer, if any.
    fn generation(&self, state: &mut State) -> Option<Genome> {
        let gen = state.generation;
        let protected = self.cfg.ops.protected;
        // 1. Breed, sequentially per island, from the island's own stream.
        let mut children: Vec<(usize, Genome, u64)> = Vec::new();
        for (island, members) in state.islands.iter().enumerate() {
            let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(
                mix_seed(self.cfg.seed, gen as u64),
                island as u64,
            ));
            let count = if gen == 0 {
                self.cfg.strategy.population()
            } else {
                self.cfg.strategy.lambda()
            };
            let mut seen: Vec<u64> = members.iter().map(|m| m.key).collect();
            for _ in 0..count {
                let mut attempt = 0;
                let (g, key) = loop {
                    let g = if gen == 0 || members.is_empty() {
                        self.random_genome(&mut rng)
                    } else {
                        self.breed(members, &mut rng)
                    };
                    let g = Genome {
                        trees: g
                            .trees
                            .iter()
                            .map(|t| simplify::canonical(t, protected))
                            .collect(),
                    };
                    let key = self.key(&g);
                    attempt += 1;
                    if !seen.contains(&key) || attempt >= 10 {
                        break (g, key);
                    }
                };
                seen.push(key);
                children.push((island, g, key));
            }
        }
        // 2. Evaluate what the cache does not know: first the hurdle, then in full.
        let thresholds: Vec<Option<f64>> = state
            .islands
            .iter()
            .map(|members| {
                let q = self.cfg.hurdle?;
                let mut h: Vec<f64> = members.iter().filter_map(|m| m.hurdle).collect();
                if h.is_empty() {
                    return None;
                }
                h.sort_by(f64::total_cmp);
                Some(h[((h.len() - 1) as f64 * q).round() as usize])
            })
            .collect();
        let mut todo_hurdle: Vec<(u64, Genome)> = Vec::new();
        for (_, g, key) in &children {
            let known = state.cache.get(key);
            let needs = self.cfg.hurdle.is_some()
                && known.is_none_or(|c| c.hurdle.is_none() && c.full.is_none())
                && !todo_hurdle.iter().any(|(k, _)| k == key);
            if needs {
                todo_hurdle.push((*key, g.clone()));
            } else if known.is_some() {
                state.counters.cache_hits += 1;
            }
        }
        let hurdles: Vec<Evaluation> = todo_hurdle
            .par_iter()
            .map(|(_, g)| self.eval.evaluate(g, Stage::Hurdle).sanitised())
            .collect();
        state.counters.evaluations += hurdles.len() as u64;
        for ((key, _), e) in todo_hurdle.iter().zip(hurdles) {
            if e.error.is_some() {
                state.counters.failures += 1;
            }
            let entry = state.cache.entry(*key).or_default();
            entry.hurdle = Some(e.fitness);
            entry.error = e.error;
        }
        let mut todo_full: Vec<(u64, Genome)> = Vec::new();
        for (island, g, key) in &children {
            let entry = state.cache.get(key).cloned().unwrap_or_default();
            if entry.full.is_some() || todo_full.iter().any(|(k, _)| k == key) {
                continue;
            }
            let passes = match (entry.hurdle, thresholds[*island]) {
                (Some(h), Some(t)) => h >= t && h.is_finite(),
                (Some(h), None) => h.is_finite(),
                (None, _) => true,
            };
            if passes {
                todo_full.push((*key, g.clone()));
            } else if entry.hurdle.is_some_and(f64::is_finite) {
                // (A candidate that failed its cheap evaluation counts as a failure.)
                state.counters.hurdle_rejections += 1;
            }
        }
        let fulls: Vec<Evaluation> = todo_full
            .par_iter()
            .map(|(_, g)| self.eval.evaluate(g, Stage::Full).sanitised())
            .collect();
        state.counters.evaluations += fulls.len() as u64;
        for ((key, _), e) in todo_full.iter().zip(fulls) {
            if e.error.is_some() {
                state.counters.failures += 1;
            }
            let entry = state.cache.entry(*key).or_default();
            if entry.error.is_none() {
                entry.error.clone_from(&e.error);
            }
            entry.full = Some(e);
        }
        // 3. Children with a full evaluation join their islands.
        let mut newcomers: Vec<Vec<Individual>> = vec![Vec::new(); state.islands.len()];
        for (island, g, key) in children {
            let entry = &state.cache[&key];
            let Some(full) = &entry.full else { continue };
            let (genome, evaluated) = match &full.tuned {
                Some(trees) => (
                    Genome {
                        trees: trees.clone(),
                    },
                    Some(g),
                ),
                None => (g, None),
            };
            let ind = Individual {
                evaluated,
                complexity: genome.complexity(protected),
                genome,
                fitness: full.fitness,
                metric: full.metric,
                hurdle: entry.hurdle,
                id: state.counters.next_id,
                born: gen,
                key,
            };
            state.counters.next_id += 1;
            newcomers[island].push(ind);
        }
        let mut hit = None;
        for (members, new) in state.islands.iter_mut().zip(newcomers) {
            for ind in &new {
                if hit.is_none() && self.is_known(ind) {
                    hit = Some(ind.evaluated.clone().unwrap_or_else(|| ind.genome.clone()));
                }
                offer(
                    &mut state.hall,
                    &mut state.pareto,
                    ind,
                    self.cfg.hall_of_fame,
                );
            }
            self.select(members, new);
        }
        // 4. Migration around the ring.
        let n = state.islands.len();
        if n > 1
            && self.cfg.migration_interval > 0
            && gen > 0
            && gen.is_multiple_of(self.cfg.migration_interval)
        {
            let sent: Vec<Vec<Individual>> = state
                .islands
                .iter()
                .map(|m| {
                    let mut best = m.clone();
                    best.sort_by(better);
                    best.truncate(self.cfg.migrants);
                    best
                })
                .collect();
            for (i, migrants) in sent.into_iter().enumerate() {
                let to = &mut state.islands[(i + 1) % n];
                for m in migrants {
                    if to.iter().any(|x| x.key == m.key) || to.is_empty() {
                        continue;
                    }
                    let worst = (0..to.len())
                        .max_by(|&a, &b| better(&to[a], &to[b]))
                        .unwrap_or(0);
                    to[worst] = m;
                }
            }
        }
        hit
    }

    /// Whether `ind` (as evaluated, or with its tuned constants) equals the known
    /// answer up to a positive scale per hole.
    fn is_known(&self, ind: &Individual) -> bool {
        let Some(known) = &self.cfg.known else {
            return false;
        };
        let same = |g: &Genome| {
            g.trees
                .iter()
                .zip(known)
                .zip(&self.probes)
                .all(|((t, k), p)| same_up_to_scale(t, k, p, self.cfg.ops.protected))
        };
        same(&ind.genome) || ind.evaluated.as_ref().is_some_and(same)
    }

    /// Survivor selection of `members` with `new` children.
    /// With `niching`, an island holds one individual per shape (its trees up to the
    /// values of their constants): a child of a member's shape replaces it if better
    /// and is dropped otherwise, so constants can improve without variants of one
    /// formula filling the island.
    fn select(&self, members: &mut Vec<Individual>, new: Vec<Individual>) {
        match self.cfg.strategy {
            Strategy::MuPlusLambda { mu, .. } => {
                members.extend(new);
                members.sort_by(better);
                if self.cfg.niching {
                    let mut shapes = Vec::new();
                    members.retain(|m| {
                        let s = shape(&m.genome);
                        let fresh = !shapes.contains(&s);
                        shapes.push(s);
                        fresh
                    });
                }
                members.truncate(mu);
            }
            Strategy::Tournament {
                population, aging, ..
            } => {
                for child in new {
                    let same = self
                        .cfg
                        .niching
                        .then(|| {
                            let s = shape(&child.genome);
                            members.iter().position(|m| shape(&m.genome) == s)
                        })
                        .flatten();
                    match same {
                        Some(i) if better(&child, &members[i]).is_lt() => members[i] = child,
                        Some(_) => {}
                        None => members.push(child),
                    }
                }
                while members.len() > population {
                    let out = if aging {
                        (0..members.len()).min_by_key(|&i| members[i].id)
                    } else {
                        (0..members.len()).max_by(|&a, &b| better(&members[a], &members[b]))
                    };
                    members.remove(out.unwrap_or(0));
                }
            }
        }
    }

    fn random_genome(&self, rng: &mut ChaCha8Rng) -> Genome {
        Genome {
            trees: self
                .holes
                .iter()
                .map(|h| {
                    Tree::random(
                        rng,
                        &self.cfg.ops,
                        h.args.len(),
                        self.cfg.init_depth.min(self.cfg.limits.max_depth),
                        self.cfg.const_prob,
                    )
                })
                .collect(),
        }
    }

    /// A child of `members`: tournament-picked parent(s), crossover, then a mutation of
    /// one hole's tree.
    fn breed(&self, members: &[Individual], rng: &mut ChaCha8Rng) -> Genome {
        let pick = |rng: &mut ChaCha8Rng| -> &Individual {
            let mut best: Option<&Individual> = None;
            for _ in 0..self.cfg.strategy.tournament() {
                let c = &members[rng.gen_range(0..members.len())];
                if best.is_none_or(|b| better(c, b).is_lt()) {
                    best = Some(c);
                }
            }
            best.unwrap_or(&members[0])
        };
        let mut g = pick(rng).genome.clone();
        if members.len() > 1 && rng.gen_bool(self.cfg.crossover) {
            let other = pick(rng);
            let h = rng.gen_range(0..g.trees.len());
            g.trees[h] =
                variation::crossover(&g.trees[h], &other.genome.trees[h], rng, self.cfg.limits);
        }
        let h = rng.gen_range(0..g.trees.len());
        g.trees[h] = variation::mutate(
            &g.trees[h],
            rng,
            &self.cfg.ops,
            self.holes[h].args.len(),
            self.cfg.limits,
        );
        g
    }

    fn save(&self, path: &Path, s: &State, fingerprint: &Value) -> Result<(), TrainError> {
        let mut cache: Vec<(&u64, &CacheEntry)> = s.cache.iter().collect();
        cache.sort_by_key(|(k, _)| **k);
        let ck = json!({
            "format": "ruleopt-search-checkpoint/1",
            "run": fingerprint,
            "next_generation": s.generation,
            "islands": s.islands.iter().map(|m| m.iter().map(Individual::to_json).collect::<Vec<_>>()).collect::<Vec<_>>(),
            "hall_of_fame": s.hall.iter().map(Individual::to_json).collect::<Vec<_>>(),
            "pareto": s.pareto.iter().map(Individual::to_json).collect::<Vec<_>>(),
            "cache": cache.iter().map(|(k, c)| json!({
                "key": format!("{k:016x}"),
                "hurdle": c.hurdle.map(finite_or_null),
                "full": c.full.as_ref().map(Evaluation::to_json),
                "error": c.error,
            })).collect::<Vec<_>>(),
            "counters": {
                "evaluations": s.counters.evaluations, "cache_hits": s.counters.cache_hits,
                "hurdle_rejections": s.counters.hurdle_rejections,
                "failures": s.counters.failures, "next_id": s.counters.next_id,
            },
            "seconds": s.seconds,
            "first_hit": s.first_hit.as_ref().map(|h| json!({
                "generation": h.generation, "evaluations": h.evaluations,
                "seconds": h.seconds, "genome": h.genome.to_json(),
            })),
        });
        write_atomic(path, ck.to_string().as_bytes())
    }

    fn load(&self, path: &Path, fingerprint: &Value) -> Result<State, TrainError> {
        let fail = |msg: String| TrainError::Resume {
            path: path.display().to_string(),
            msg,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let ck: Value =
            serde_json::from_str(&text).map_err(|e| fail(format!("not valid JSON: {e}")))?;
        if ck.get("run") != Some(fingerprint) {
            return Err(fail(format!(
                "it belongs to another search (rule, task, options or configuration differ):\n  checkpoint: {}\n  this run:   {fingerprint}",
                ck.get("run").cloned().unwrap_or(Value::Null)
            )));
        }
        let inds = |v: Option<&Value>| -> Result<Vec<Individual>, TrainError> {
            v.and_then(Value::as_array)
                .ok_or_else(|| fail("missing a list of individuals".into()))?
                .iter()
                .map(|i| Individual::from_json(i).map_err(&fail))
                .collect()
        };
        let islands = ck
            .get("islands")
            .and_then(Value::as_array)
            .ok_or_else(|| fail("no `islands`".into()))?
            .iter()
            .map(|m| inds(Some(m)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut cache = HashMap::new();
        for c in ck
            .get("cache")
            .and_then(Value::as_array)
            .ok_or_else(|| fail("no `cache`".into()))?
        {
            let key = c
                .get("key")
                .and_then(Value::as_str)
                .and_then(|s| u64::from_str_radix(s, 16).ok())
                .ok_or_else(|| fail("a cache entry has no `key`".into()))?;
            let hurdle = match c.get("hurdle") {
                None | Some(Value::Null) => None,
                Some(h) => Some(h.as_f64().unwrap_or(f64::NEG_INFINITY)),
            };
            let full = match c.get("full") {
                None | Some(Value::Null) => None,
                Some(f) => Some(Evaluation::from_json(f).map_err(&fail)?),
            };
            let error = c.get("error").and_then(Value::as_str).map(str::to_string);
            cache.insert(
                key,
                CacheEntry {
                    hurdle,
                    full,
                    error,
                },
            );
        }
        let cn = ck
            .get("counters")
            .ok_or_else(|| fail("no `counters`".into()))?;
        let u = |k: &str| {
            cn.get(k)
                .and_then(Value::as_u64)
                .ok_or_else(|| fail(format!("no `counters.{k}`")))
        };
        Ok(State {
            generation: ck
                .get("next_generation")
                .and_then(Value::as_u64)
                .ok_or_else(|| fail("no `next_generation`".into()))?
                as usize,
            islands,
            cache,
            hall: inds(ck.get("hall_of_fame"))?,
            pareto: inds(ck.get("pareto"))?,
            seconds: ck.get("seconds").and_then(Value::as_f64).unwrap_or(0.0),
            first_hit: match ck.get("first_hit") {
                None | Some(Value::Null) => None,
                Some(h) => Some(Hit {
                    generation: h.get("generation").and_then(Value::as_u64).unwrap_or(0) as usize,
                    evaluations: h.get("evaluations").and_then(Value::as_u64).unwrap_or(0),
                    seconds: h.get("seconds").and_then(Value::as_f64).unwrap_or(0.0),
                    genome: Genome::from_json(h.get("genome").unwrap_or(&Value::Null))
                        .map_err(&fail)?,
                }),
            },
            counters: Counters {
                evaluations: u("evaluations")?,
                cache_hits: u("cache_hits")?,
                hurdle_rejections: u("hurdle_rejections")?,
                failures: u("failures")?,
                next_id: u("next_id")?,
            },
        })
    }
}

/// Whether `t` equals `c * known` for some `c > 0` on the `probes` (relative
/// tolerance 1e-6), and `known` is not zero there: the test of "found the known rule up
/// to a positive scale and algebraic identity".
pub fn same_up_to_scale(t: &Tree, known: &Tree, probes: &[Vec<f64>], protected: bool) -> bool {
    let x: Vec<f64> = probes.iter().map(|p| t.eval(p, protected)).collect();
    let y: Vec<f64> = probes.iter().map(|p| known.eval(p, protected)).collect();
    if x.iter().chain(&y).any(|v| !v.is_finite()) {
        return false;
    }
    let yy: f64 = y.iter().map(|v| v * v).sum();
    if yy == 0.0 {
        return false;
    }
    let c = x.iter().zip(&y).map(|(a, b)| a * b).sum::<f64>() / yy;
    let scale = x.iter().chain(&y).fold(0.0f64, |m, v| m.max(v.abs()));
    c > 0.0
        && x.iter()
            .zip(&y)
            .all(|(a, b)| (a - c * b).abs() <= 1e-6 * scale.max(c.abs() * scale))
}

/// The distinct failure messages of the cache, with counts, most frequent first.
fn error_summary(cache: &HashMap<u64, CacheEntry>) -> Vec<(String, usize)> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for e in cache.values().filter_map(|c| c.error.as_deref()) {
        *counts.entry(e).or_default() += 1;
    }
    let mut v: Vec<(String, usize)> = counts
        .into_iter()
        .map(|(m, n)| (m.to_string(), n))
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(5);
    v
}

/// A hash of a genome's trees with every constant's value left out.
fn shape(g: &Genome) -> u64 {
    use crate::expr::Node;
    let mut bytes = Vec::new();
    for t in &g.trees {
        for n in t.nodes.iter().chain([&Node::Arg(255)]) {
            let x: u64 = match n {
                Node::Arg(i) => u64::from(*i),
                Node::Const(_) => 1 << 20,
                Node::Op(o) => (2 << 20) + *o as u64,
            };
            bytes.extend(x.to_le_bytes());
        }
    }
    fnv1a(&bytes)
}

/// Total order "a is better than b" as `Less`: higher fitness, then lower complexity,
/// then younger (larger id: neutral drift), then id.
fn better(a: &Individual, b: &Individual) -> std::cmp::Ordering {
    b.fitness
        .total_cmp(&a.fitness)
        .then(a.complexity.cmp(&b.complexity))
        .then(b.id.cmp(&a.id))
}

/// Offers `ind` to the hall of fame (the best `size` distinct shapes) and the Pareto
/// front (no other member at least as fit and at most as complex, one strictly).
fn offer(hall: &mut Vec<Individual>, pareto: &mut Vec<Individual>, ind: &Individual, size: usize) {
    if !ind.fitness.is_finite() {
        return;
    }
    // One entry per shape (formula up to its constants): the best.
    let s = shape(&ind.genome);
    let same = hall
        .iter()
        .position(|h| h.key == ind.key || shape(&h.genome) == s);
    let admit = match same {
        Some(i) if better(ind, &hall[i]).is_lt() && hall[i].key != ind.key => {
            hall.remove(i);
            true
        }
        Some(_) => false,
        None => true,
    };
    if admit {
        hall.push(ind.clone());
        hall.sort_by(|a, b| {
            b.fitness
                .total_cmp(&a.fitness)
                .then(a.complexity.cmp(&b.complexity))
                .then(a.id.cmp(&b.id))
        });
        hall.truncate(size);
    }
    let dominated = pareto.iter().any(|p| {
        p.fitness >= ind.fitness
            && p.complexity <= ind.complexity
            && (p.fitness > ind.fitness || p.complexity < ind.complexity || p.key == ind.key)
    });
    if !dominated {
        pareto.retain(|p| {
            !(ind.fitness >= p.fitness
                && ind.complexity <= p.complexity
                && (ind.fitness > p.fitness || ind.complexity < p.complexity))
        });
        pareto.push(ind.clone());
        pareto.sort_by(|a, b| a.complexity.cmp(&b.complexity).then(a.id.cmp(&b.id)));
    }
}

fn quantise(x: f64) -> u64 {
    if x.is_nan() {
        return 0x7FF8_0000_0000_0000;
    }
    if x == 0.0 || !x.is_finite() {
        return (x + 0.0).to_bits();
    }
    // 9 significant decimal digits, so round-off of equivalent forms collapses.
    let e = x.abs().log10().floor();
    let scale = 10f64.powf(8.0 - e);
    ((x * scale).round() / scale).to_bits()
}

fn finite_or_null(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

fn io_err(path: &Path, e: std::io::Error) -> TrainError {
    TrainError::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    }
}

/// The first `upto` records of a search's `log.jsonl`.
pub fn read_log(path: &Path, upto: usize) -> Result<Vec<GenLog>, TrainError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io_err(path, e)),
    };
    let mut out = Vec::new();
    for line in text.lines() {
        if out.len() == upto {
            break;
        }
        let rec = serde_json::from_str::<Value>(line)
            .ok()
            .and_then(|v| GenLog::from_json(&v));
        match rec {
            Some(r) => out.push(r),
            None => break, // a torn last line
        }
    }
    Ok(out)
}
