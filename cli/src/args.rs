//! The command line, as clap derive types. Parsing flags is clap's job; everything a
//! flag's value means (does that variable exist?) is checked later, against the module.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// `ruleopt`: check, compile, simulate and benchmark `.rule` files.
#[derive(Debug, Parser)]
#[command(
    name = "ruleopt",
    version,
    about = "A language for spiking neuron models and plasticity rules: check, compile and simulate .rule files.",
    after_help = "Examples:\n  ruleopt check rules/neurons/lif.rule\n  ruleopt compile net.rule --emit ir\n  ruleopt simulate --steps 500 --rate x=40Hz\n  ruleopt bench w1 --mode fwd --n 128"
)]
pub struct Cli {
    /// When to colour diagnostics: `auto` colours only when the stream is a terminal.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// When to use colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when writing to a terminal.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl ColorChoice {
    /// Whether to colour a stream that is (or is not) a terminal.
    pub fn enabled(self, is_terminal: bool) -> bool {
        match self {
            ColorChoice::Auto => is_terminal,
            ColorChoice::Always => true,
            ColorChoice::Never => false,
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and check .rule files (and their imports), printing every diagnostic.
    #[command(
        after_help = "Examples:\n  ruleopt check rules/neurons/lif.rule\n  ruleopt check --color never a.rule b.rule"
    )]
    Check(CheckArgs),
    /// Print a file's AST, a network's IR after lowering and validation, or its
    /// Cranelift IR.
    #[command(
        after_help = "Examples:\n  ruleopt compile net.rule --emit ast\n  ruleopt compile net.rule --network Example --emit ir\n  ruleopt compile net.rule --emit clif --precision f64"
    )]
    Compile(CompileArgs),
    /// Run a network (JIT-compiled, or on the reference interpreter) with Poisson inputs
    /// and constant signals.
    #[command(
        after_help = "Input populations get Poisson spikes (default 20 Hz each); signals such as `reward` get a\nconstant (default 0). Without FILE, runs the bundled network rules/networks/lif_network.rule.\n\nExamples:\n  ruleopt simulate\n  ruleopt simulate net.rule -T 2000 -B 4 --rate x=40Hz --signal reward=1\n  ruleopt simulate --record rec.v --out run.json --raster run.svg\n  ruleopt simulate net.rule --backend interp"
    )]
    Simulate(SimulateArgs),
    /// Measure speed and memory: the W1 workload, or compile latency.
    #[command(
        after_help = "Examples:\n  ruleopt bench w1 --mode fwd --n 128\n  ruleopt bench w1 --n 64 --params benchmarks/w1/params_N64.json --json\n  ruleopt bench compile rules/networks"
    )]
    Bench(BenchArgs),
    /// Meta-train a network's `learn` parameters on a task: Adam on gradients through
    /// whole episodes (BPTT through the plasticity), checkpointed every iteration.
    #[command(
        after_help = "Writes into the output directory: log.jsonl (one line per iteration), checkpoint.json (after\nevery iteration; --resume continues from it), and at the end learned.rule (the network, self-\ncontained, with the learned values), learned.json (the values), eval.json (loss, metric and reward per\ntrial on held-out episodes) and training.svg (the curves).\n\nTasks: w1, cue-reward, t-maze, evidence, evidence-reversal, one-shot, regression, reward-driven,\nerror-driven, oja-pca; each module of\nbenchmarks/src/tasks/ documents its task and options (all take `input` and `readout`).\n\nExamples:\n  ruleopt train rules/networks/w1.rule --task w1 --iterations 50\n  ruleopt train net.rule --task w1 --task-options '{\"contrast\": 0.3, \"steps\": 500}' --lr 0.003\n  ruleopt train net.rule --out runs/a --resume"
    )]
    Train(TrainArgs),
    /// Meta-train several networks on several tasks with several seeds and tabulate the
    /// held-out results (the plasticity-rule comparison).
    #[command(
        after_help = "Each network (default: every file of rules/comparison) is resized to each task's inputs and\nchoices and trained like `ruleopt train` into OUT/TASK/NETWORK/seed-S/. OUT/RESULTS.md gets a\nsummary (a row per network, a column per task) and a table per task (held-out metric, mean ± sd\nover seeds, training time), OUT/TASK-training.svg and OUT/TASK-within-episode.svg the curves. Finished runs are kept and stopped ones resumed, so\nthe command can be interrupted and run again; --report-only tabulates the finished runs alone.\n\nBudget: every network gets the same iterations on a task (lr 0.01, 16 episodes each): cue-reward 600,\nt-maze 60, evidence 150, evidence-reversal 60, one-shot 600, regression 600, any other task 100;\n--iterations sets one number for all.\n\nExamples:\n  ruleopt compare --report benchmarks/comparison      (the whole table, as in the repository)\n  ruleopt compare --task cue-reward --seeds 3 --iterations 2000\n  ruleopt compare rules/comparison/backpropamine.rule rules/comparison/lif_static.rule --task t-maze \\\n      --task-options 't-maze={\"trials\": 20}'"
    )]
    Compare(CompareArgs),
    /// Discover rules: evolve formulas for the holes `?f(...)` of a rule (tuning their
    /// constants by gradient), and write the best as .rule files.
    #[command(
        after_help = "Without FILE, runs the bundled search: rules/search/reward_driven.rule on the reward-driven\ntask (Jordan et al. 2021), a few minutes on 2 cores.\n\nWrites into the output directory: log.jsonl (one line per generation), checkpoint.json (after\nevery generation; --resume continues from it), and at the end hall-of-fame/NN.rule (the best\nrules, self-contained, formulas filled in), summary.md and summary.json (formulas, fitness,\ncomplexity, the Pareto front), fitness.svg and pareto.svg.\n\nExamples:\n  ruleopt search\n  ruleopt search rules/search/oja_pca.rule --task oja-pca --ops '+,-,*' --generations 200\n  ruleopt search net.rule --task t-maze --strategy tournament --population 32 --islands 2\n  ruleopt search --out runs/search --resume"
    )]
    Search(SearchArgs),
}

/// Survivor selection of `ruleopt search`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StrategyArg {
    /// (mu + lambda): the best mu of parents and children survive.
    #[value(name = "mu+lambda")]
    MuPlusLambda,
    /// Tournament selection; children replace the oldest (--aging) or the worst.
    Tournament,
}

/// `ruleopt search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The .rule file with holes (default: the bundled reward-driven search).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Which network (default: the only, or last, network of FILE).
    #[arg(long, value_name = "NAME")]
    pub network: Option<String>,
    /// The task whose metric is the fitness (default with FILE: required).
    #[arg(long, value_name = "NAME")]
    pub task: Option<String>,
    /// The task's options as a JSON object, or `@FILE`.
    #[arg(long, value_name = "JSON")]
    pub task_options: Option<String>,
    /// Operators of the formulas, comma separated: + - * / pow min max neg exp log tanh
    /// sigmoid sqrt abs square.
    #[arg(long, value_name = "OPS", default_value = "+,-,*")]
    pub ops: String,
    /// Use the partial operators (/, log, sqrt, pow, exp) as they are, not their
    /// protected forms.
    #[arg(long)]
    pub unprotected: bool,
    /// Survivor selection.
    #[arg(long, value_enum, default_value_t = StrategyArg::MuPlusLambda)]
    pub strategy: StrategyArg,
    /// (mu + lambda): parents kept.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub mu: u32,
    /// Children per generation and island.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub lambda: u32,
    /// Tournament: population size.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub population: u32,
    /// Tournament size for picking parents (1: uniformly).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub tournament: Option<u32>,
    /// Tournament: children replace the worst instead of the oldest.
    #[arg(long)]
    pub no_aging: bool,
    /// Independent populations, with migration around a ring.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub islands: u32,
    /// Generations between migrations.
    #[arg(long, default_value_t = 10)]
    pub migration_interval: u32,
    /// Individuals each island sends.
    #[arg(long, default_value_t = 1)]
    pub migrants: u32,
    /// Largest tree (nodes) per hole.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_size: u32,
    /// Deepest tree per hole.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_depth: u32,
    /// Probability that a child comes from crossover (then mutation).
    #[arg(long, default_value_t = 0.0)]
    pub crossover: f64,
    /// Let an island hold several individuals of one shape (formula up to its
    /// constants' values); by default a child of a member's shape replaces it only if
    /// better.
    #[arg(long)]
    pub no_niching: bool,
    /// Quantile of the parents' cheap scores a child must reach to be evaluated in full.
    #[arg(long, default_value_t = 0.5, conflicts_with = "no_hurdle")]
    pub hurdle: f64,
    /// Evaluate every child in full.
    #[arg(long)]
    pub no_hurdle: bool,
    /// Generations.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..))]
    pub generations: u32,
    /// Stop after this many evaluations.
    #[arg(long, value_name = "N")]
    pub max_evaluations: Option<u64>,
    /// Stop (checkpointed; --resume continues) after this many minutes.
    #[arg(long, value_name = "MINUTES")]
    pub max_minutes: Option<f64>,
    /// Stop when the best fitness reaches this.
    #[arg(long, value_name = "FITNESS")]
    pub target: Option<f64>,
    /// Gradient steps on each candidate's constants and `learn` parameters before its
    /// fitness is taken (0: no tuning).
    #[arg(long, default_value_t = 0)]
    pub tune_iterations: u32,
    /// Episodes per tuning step.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub tune_batch: u32,
    /// Adam's learning rate for tuning.
    #[arg(long, default_value_t = 0.01)]
    pub lr: f64,
    /// Held-out episodes of each full evaluation.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub episodes: u32,
    /// Episodes of the cheap first evaluation.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub hurdle_episodes: u32,
    /// Rules kept in the hall of fame.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub hall_of_fame: u32,
    /// Seed of the search, the network's instance and all episodes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// A known answer for a hole, `HOLE=FORMULA` in the hole's argument names (e.g.
    /// `f=e * (r - 1)`); repeatable. The search records when it first evaluates a rule
    /// equal to it up to a positive scale (rediscovery benchmarks).
    #[arg(long = "known", value_name = "HOLE=FORMULA", value_parser = parse_task_options)]
    pub known: Vec<(String, String)>,
    /// Stop at the first rule equal to the `--known` answer.
    #[arg(long, requires = "known")]
    pub stop_on_hit: bool,
    /// Element type of the compiled kernels.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// The run's directory (default: runs/search-NETWORK-TASK).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue the search in the output directory from its checkpoint.
    #[arg(long)]
    pub resume: bool,
}

/// Which engine runs a simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The Cranelift JIT (`--precision` applies).
    Jit,
    /// The reference interpreter (f64).
    Interp,
}

/// Element type of compiled code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Precision {
    /// 32-bit floats.
    F32,
    /// 64-bit floats (the interpreter's arithmetic).
    F64,
}

impl From<Precision> for jit::Precision {
    fn from(p: Precision) -> jit::Precision {
        match p {
            Precision::F32 => jit::Precision::F32,
            Precision::F64 => jit::Precision::F64,
        }
    }
}

/// `ruleopt check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The files to check; imports are read relative to the importing file.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

/// What `compile` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Emit {
    /// The syntax tree of the file, printed back as text (imports are not followed).
    Ast,
    /// The canonical text of the network's IR after lowering and validation; for a file
    /// without a network, each model lowered alone (a neuron as a population `self`, a
    /// rule between stand-in populations `pre` and `post`).
    Ir,
    /// The Cranelift IR of the network's step function, before optimisation.
    Clif,
    /// The IR of the network's adjoint step (from symbolic differentiation): the
    /// adjoint of every state and a gradient accumulator for every `learn` parameter.
    Grad,
}

/// `ruleopt compile`.
#[derive(Debug, Args)]
pub struct CompileArgs {
    /// The .rule file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Which network to lower (default: the only, or last, network of FILE).
    #[arg(long, value_name = "NAME")]
    pub network: Option<String>,
    /// What to print.
    #[arg(long, value_enum, default_value_t = Emit::Ir)]
    pub emit: Emit,
    /// Element type of the Cranelift IR (`--emit clif` only).
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
}

/// `ruleopt simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The .rule file holding the network (default: the bundled LIF network).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Which network to run (default: the only, or last, network of FILE).
    #[arg(long, value_name = "NAME")]
    pub network: Option<String>,
    /// Number of time steps (with --task: the task's episode).
    #[arg(short = 'T', long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "task")]
    pub steps: u32,
    /// Number of independent episodes run in lock-step.
    #[arg(short = 'B', long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// Seed of parameter initialisation, connectivity and the Poisson inputs (or the
    /// task's episodes).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Run the network on a task's episodes instead of Poisson inputs: closed-loop, the
    /// training's own forward pass (the JIT), printing the task's metric; a network that
    /// does not fit the task is resized, as by `ruleopt train`.
    #[arg(long, value_name = "NAME")]
    pub task: Option<String>,
    /// The task's options as a JSON object, or `@FILE` to read them from a file.
    #[arg(long, value_name = "JSON", requires = "task")]
    pub task_options: Option<String>,
    /// Poisson rate of an input population, in Hz: `x=20`, `x=20Hz`, `x=20 Hz` (default 20 Hz).
    #[arg(long = "rate", value_name = "NAME=RATE", value_parser = parse_rate, conflicts_with = "task")]
    pub rates: Vec<(String, f64)>,
    /// Constant value of a task signal: `reward=1` (default 0).
    #[arg(long = "signal", value_name = "NAME=VALUE", value_parser = parse_signal, conflicts_with = "task")]
    pub signals: Vec<(String, f64)>,
    /// A variable to record after every step, by qualified name (`rec.v`); repeatable.
    #[arg(long = "record", value_name = "VAR")]
    pub record: Vec<String>,
    /// Write spikes and recordings as JSON to this file.
    #[arg(long, value_name = "FILE.json")]
    pub out: Option<PathBuf>,
    /// Draw a raster plot (episode 0) as SVG to this file.
    #[arg(long, value_name = "FILE.svg")]
    pub raster: Option<PathBuf>,
    /// What runs the network: the JIT compiler or the reference interpreter (not with
    /// --task, which runs the training's forward pass on the JIT).
    #[arg(long, value_enum, default_value_t = Backend::Jit, conflicts_with = "task")]
    pub backend: Backend,
    /// Element type of the JIT's code (the interpreter always computes in f64).
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
}

/// `ruleopt train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The .rule file holding the network.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Which network to train (default: the only, or last, network of FILE).
    #[arg(long, value_name = "NAME")]
    pub network: Option<String>,
    /// The task.
    #[arg(long, value_name = "NAME", default_value = "w1")]
    pub task: String,
    /// The task's options as a JSON object, or `@FILE` to read them from a file.
    #[arg(long, value_name = "JSON")]
    pub task_options: Option<String>,
    /// Outer-loop iterations (Adam steps).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub iterations: u32,
    /// Episodes per iteration.
    #[arg(short = 'B', long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Rescale the gradient to this L2 norm when it is larger.
    #[arg(long, default_value_t = 1.0, conflicts_with = "no_clip")]
    pub clip: f64,
    /// Do not clip the gradient.
    #[arg(long)]
    pub no_clip: bool,
    /// Iterations in a row whose loss or gradient is not finite that are skipped (no
    /// update) before the run fails; 0: fail at the first.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub max_skips: u32,
    /// Seed of the initial parameters and of every batch of episodes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Element type of the compiled kernels.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// BPTT: keep the forward state every K steps (default: chosen within
    /// --memory-budget: the smallest footprint's interval, or a smaller one if its
    /// segments would not stay in the cache and the budget allows).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    pub checkpoint: Option<u32>,
    /// BPTT: memory for the forward checkpoints of the episodes running at once.
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes, default_value = "1GiB")]
    pub memory_budget: u64,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// The run's directory (default: runs/NETWORK-TASK).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue the run in the output directory from its checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Stop after this many minutes (before starting an iteration); the run is
    /// checkpointed, evaluated and written as usual, and `--resume` continues it.
    #[arg(long, value_name = "MINUTES")]
    pub max_minutes: Option<f64>,
    /// Episodes the learned parameters are evaluated on at the end (held out: no
    /// iteration trains on them); 0 skips the evaluation.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub eval_episodes: u32,
}

/// `ruleopt compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Networks: .rule files or directories of them (default: rules/comparison).
    #[arg(value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// A task to compare on; repeatable (default: cue-reward, t-maze, evidence,
    /// evidence-reversal, one-shot, regression).
    #[arg(long = "task", value_name = "NAME")]
    pub tasks: Vec<String>,
    /// Options of one task: `TASK=JSON` or `TASK=@FILE`; repeatable.
    #[arg(long = "task-options", value_name = "TASK=JSON", value_parser = parse_task_options)]
    pub task_options: Vec<(String, String)>,
    /// Seeds per network and task (0, 1, ...).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub seeds: u32,
    /// Outer-loop iterations per run, on every task (default: each task's own budget,
    /// the same for every network: see `ruleopt compare --help`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub iterations: Option<u32>,
    /// Episodes per iteration.
    #[arg(short = 'B', long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 0.01)]
    pub lr: f64,
    /// Train nothing: tabulate and plot the runs that have finished, list the others.
    #[arg(long)]
    pub report_only: bool,
    /// Held-out episodes each run is evaluated on.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub eval_episodes: u32,
    /// Iterations in a row whose loss or gradient is not finite that are skipped (no
    /// update) before a run fails; 0: fail at the first.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub max_skips: u32,
    /// Element type of the compiled kernels.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// The output directory: one directory per run, and the report unless --report.
    #[arg(long, value_name = "DIR", default_value = "runs/compare")]
    pub out: PathBuf,
    /// Where the report goes (RESULTS.md and the plots), e.g. benchmarks/comparison
    /// (default: OUT).
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Stop each run after this many minutes (it is resumed by the next `compare` with
    /// the same settings).
    #[arg(long, value_name = "MINUTES")]
    pub max_minutes: Option<f64>,
}

/// `TASK=JSON`.
fn parse_task_options(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((t, j)) if !t.trim().is_empty() => Ok((t.trim().to_string(), j.to_string())),
        _ => Err(format!("expected TASK=JSON, found `{s}`")),
    }
}

/// `ruleopt bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The workload.
    #[command(subcommand)]
    pub workload: Workload,
}

/// What `bench` measures.
#[derive(Debug, Subcommand)]
pub enum Workload {
    /// W1: plastic recurrent LIF network, three-factor rule, T = 1000, B = 16 (the
    /// workload the JAX and PyTorch references run).
    #[command(
        after_help = "Runs one untimed warm-up, then --repeats timed passes; reports median and minimum wall\ntime, compile time, peak resident memory and synapse updates per second (N*N*B*T / median).\n\nExamples:\n  ruleopt bench w1 --mode fwd --n 256 --repeats 5\n  ruleopt bench w1 --params benchmarks/w1/params_N64.json --json"
    )]
    W1(W1Args),
    /// Compile latency (parse, check, lower, JIT) of every network in some files or
    /// directories.
    #[command(
        after_help = "Examples:\n  ruleopt bench compile\n  ruleopt bench compile rules/networks/w1.rule --repeats 50 --json"
    )]
    Compile(CompileBenchArgs),
    /// Rediscovery: `ruleopt search` on tasks whose rule is known, several seeds each;
    /// success rate, evaluations and time to the first hit, beside the published figures.
    #[command(
        after_help = "Each run is a `ruleopt search` directory OUT/TASK/seed-S (finished runs are kept, stopped ones\nresumed); OUT/RESULTS.md gets the table. Tasks: reward-driven, error-driven (Jordan et al. 2021),\noja-pca; their settings are printed with the table.\n\nExamples:\n  ruleopt bench rediscover --seeds 8\n  ruleopt bench rediscover --task oja-pca --seeds 2 --out runs/rd"
    )]
    Rediscover(RediscoverArgs),
}

/// `ruleopt bench rediscover`.
#[derive(Debug, Args)]
pub struct RediscoverArgs {
    /// A benchmark to run; repeatable (default: all).
    #[arg(long = "task", value_name = "NAME")]
    pub tasks: Vec<String>,
    /// Seeds per benchmark (0, 1, ...).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub seeds: u32,
    /// Time budget of each run, in minutes.
    #[arg(long, value_name = "MINUTES", default_value_t = 10.0)]
    pub max_minutes: f64,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// The output directory.
    #[arg(long, value_name = "DIR", default_value = "runs/rediscover")]
    pub out: PathBuf,
}

/// What a W1 benchmark computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchMode {
    /// The forward pass and the loss.
    Fwd,
    /// Loss and gradients of every learned parameter (not implemented yet).
    Grad,
}

/// `ruleopt bench w1`.
#[derive(Debug, Args)]
pub struct W1Args {
    /// What to compute.
    #[arg(long, value_enum, default_value_t = BenchMode::Fwd)]
    pub mode: BenchMode,
    /// Recurrent neurons (with --params, the file's N is used).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=8192))]
    pub n: u32,
    /// Timed passes, after one untimed warm-up.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeats: u32,
    /// Threads of the pool the batch's episodes are spread over.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: u32,
    /// Element type of the kernel.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// Parameters and inputs from a JSON file of the shared W1 format (else drawn from
    /// --seed).
    #[arg(long, value_name = "FILE.json")]
    pub params: Option<PathBuf>,
    /// Seed of the drawn parameters and inputs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Step the whole batch in lock-step (one parallel split per step, as `simulate`
    /// does) instead of each episode through all its steps.
    #[arg(long)]
    pub lockstep: bool,
    /// With `--mode grad`: keep the forward state every K steps and recompute the steps
    /// in between (memory per episode: T/K + K states; the gradients do not depend on K).
    /// Default: chosen within --memory-budget.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "memory_budget")]
    pub checkpoint: Option<u32>,
    /// With `--mode grad`: memory for the forward checkpoints of the episodes that run
    /// at once (one per thread), e.g. `512MiB`, `2GiB`; the checkpoint interval is the
    /// smallest footprint's, or a smaller one if its segments would not stay in the
    /// cache and the budget allows (as `train` chooses); or it says what would fit.
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes, default_value = "1GiB")]
    pub memory_budget: u64,
    /// With `--mode grad`: write the loss and gradients to FILE in the shared W1 format.
    #[arg(long, value_name = "FILE.json")]
    pub grads_out: Option<PathBuf>,
    /// Print one JSON object instead of a line of text.
    #[arg(long)]
    pub json: bool,
}

/// `ruleopt bench compile`.
#[derive(Debug, Args)]
pub struct CompileBenchArgs {
    /// .rule files, or directories whose .rule files are each a network (default
    /// `rules/networks`).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Timed compilations per network, after one untimed warm-up.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeats: u32,
    /// Element type of the kernels.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `123`, `64KiB`, `512MiB`, `2GiB` (also KB/MB/GB as powers of 1000) to bytes.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let x: f64 = num
        .parse()
        .map_err(|_| format!("expected a size such as 512MiB, got `{s}`"))?;
    let mult: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        u => {
            return Err(format!(
                "unknown unit `{u}` in `{s}`: use B, KiB, MiB, GiB, KB, MB or GB"
            ))
        }
    };
    let v = x * mult;
    if !v.is_finite() || v < 1.0 {
        return Err(format!("a size must be at least 1 byte, got `{s}`"));
    }
    Ok(v as u64)
}

fn split_assignment(s: &str) -> Result<(String, &str), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got `{s}`"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("missing name before `=` in `{s}`"));
    }
    Ok((name.to_string(), value.trim()))
}

/// Parses `NAME=RATE` where RATE is in Hz, optionally written with the unit: `20`,
/// `20Hz`, `20 Hz`.
pub fn parse_rate(s: &str) -> Result<(String, f64), String> {
    let (name, value) = split_assignment(s)?;
    let number = value.strip_suffix("Hz").unwrap_or(value).trim();
    let rate: f64 = number
        .parse()
        .map_err(|_| format!("`{value}` is not a rate in Hz (like `20`, `20Hz` or `20 Hz`)"))?;
    if !rate.is_finite() || rate < 0.0 {
        return Err(format!(
            "a rate must be a finite number >= 0 Hz, got `{value}`"
        ));
    }
    Ok((name, rate))
}

/// Parses `NAME=VALUE` for a constant signal.
pub fn parse_signal(s: &str) -> Result<(String, f64), String> {
    let (name, value) = split_assignment(s)?;
    let v: f64 = value
        .parse()
        .map_err(|_| format!("`{value}` is not a number"))?;
    if !v.is_finite() {
        return Err(format!("a signal value must be finite, got `{value}`"));
    }
    Ok((name, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn rates_accept_optional_unit() {
        for s in ["x=20", "x=20Hz", "x=20 Hz", " x = 20 Hz "] {
            assert_eq!(parse_rate(s), Ok(("x".to_string(), 20.0)), "{s}");
        }
        assert_eq!(parse_rate("x=0.5"), Ok(("x".to_string(), 0.5)));
        for bad in ["x", "=20", "x=fast", "x=-1", "x=inf", "x=20 ms", "x=NaN"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signals_are_numbers() {
        assert_eq!(
            parse_signal("reward=-1.5"),
            Ok(("reward".to_string(), -1.5))
        );
        assert!(parse_signal("reward").is_err());
        assert!(parse_signal("reward=x").is_err());
    }
}
