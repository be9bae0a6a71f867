//! The `ruleopt` command line: arguments, files, terminal output and rendering, and
//! the `bench` command over the `benchmarks` crate.
//!
//! Central design decision: everything the binary does goes through [`run`], which
//! writes to two `Write` streams it is given instead of the process's stdout/stderr, so
//! the whole command line is testable as a library; `main.rs` only parses arguments,
//! decides on colour, and maps the result to an exit code. `lang` keeps diagnostics as
//! data; they become text only here ([`render_diagnostics`]).
#![warn(missing_docs)]

pub mod args;
pub mod bench;
pub mod bundled;
pub mod compare;
pub mod discover;
pub mod load;
pub mod raster;
pub mod rediscover;
pub mod render;
pub mod simulate;
pub mod train;

pub use args::Cli;
pub use render::render_diagnostics;

use args::{Backend, CheckArgs, Command, CompileArgs, Emit, SimulateArgs};
use load::Session;
use std::io::Write;
use std::path::Path;

/// Why a command failed. Diagnostics about the input have been printed by then;
/// these are the one-line summaries `main` prints after `error: `.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file named on the command line could not be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The path as given.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// An output file could not be written.
    #[error("cannot write `{path}`: {source}")]
    Write {
        /// The path as given.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Writing to stdout or stderr failed.
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
    /// The input has errors (already rendered).
    #[error("`{file}` has {}", plural(*errors, "error"))]
    Rejected {
        /// The root file.
        file: String,
        /// Number of errors.
        errors: usize,
    },
    /// `check` found errors in some files (already rendered).
    #[error("{failed} of {} failed the check", plural(*total, "file"))]
    CheckFailed {
        /// Files with errors.
        failed: usize,
        /// Files checked.
        total: usize,
    },
    /// Lowering produced IR that does not validate: a bug in `lang`.
    #[error("the IR of network `{network}` is invalid (this is a bug in ruleopt): {message}")]
    Invalid {
        /// Network.
        network: String,
        /// The validator's message.
        message: String,
    },
    /// `--record` names no variable.
    #[error("unknown variable `{name}` in --record{hint}")]
    UnknownVar {
        /// The name given.
        name: String,
        /// "; did you mean ..." or empty.
        hint: String,
    },
    /// `--rate` names no input population.
    #[error("unknown input population `{name}` in --rate{hint}")]
    UnknownInput {
        /// The name given.
        name: String,
        /// "; did you mean ..." or empty.
        hint: String,
    },
    /// `--signal` names no signal.
    #[error("unknown signal `{name}` in --signal{hint}")]
    UnknownSignal {
        /// The name given.
        name: String,
        /// "; did you mean ..." or empty.
        hint: String,
    },
    /// A rate whose spike probability per step exceeds 1.
    #[error("rate {rate} Hz of `{name}` is too high for dt = {dt} ms (at most one spike per step: {} Hz)", 1000.0 / dt)]
    RateTooHigh {
        /// Input population.
        name: String,
        /// Rate in Hz.
        rate: f64,
        /// Time step in ms.
        dt: f64,
    },
    /// Parameters or initial states could not be drawn.
    #[error("cannot initialise the network: {0}")]
    Init(String),
    /// The interpreter failed.
    #[error("simulation failed: {0}")]
    Interp(String),
    /// The raster plot could not be drawn.
    #[error("cannot draw the raster plot: {0}")]
    Plot(String),
    /// The JIT refused the network (a hole, or a bug in the JIT).
    #[error("cannot compile the network: {0}")]
    Jit(#[from] jit::JitError),
    /// The network cannot be differentiated (a hole).
    #[error("cannot differentiate the network: {0}")]
    Grad(String),
    /// A benchmark failed.
    #[error(transparent)]
    Bench(#[from] benchmarks::BenchError),
    /// Training failed.
    #[error(transparent)]
    Train(#[from] search::train::TrainError),
    /// A feature that does not exist yet.
    #[error("{what} is not implemented yet: {why}")]
    NotImplemented {
        /// What was asked for.
        what: String,
        /// What it waits for.
        why: String,
    },
}

impl Error {
    /// The process exit code: 2 for what is not implemented (like a usage error), 1
    /// otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::NotImplemented { .. } => 2,
            _ => 1,
        }
    }
}

/// `1 error`, `2 errors`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Where a command writes, and whether each stream gets colour.
pub struct Output<'a> {
    /// Results (IR text, tables, `check`'s report).
    pub out: &'a mut dyn Write,
    /// Diagnostics of `compile` and `simulate`, progress notes.
    pub err: &'a mut dyn Write,
    /// Colour on `out`.
    pub out_color: bool,
    /// Colour on `err`.
    pub err_color: bool,
}

/// Runs one command.
pub fn run(cli: &Cli, o: &mut Output<'_>) -> Result<(), Error> {
    match &cli.command {
        Command::Check(a) => check(a, o),
        Command::Compile(a) => compile(a, o),
        Command::Simulate(a) => simulate(a, o),
        Command::Bench(a) => bench::bench(a, o),
        Command::Train(a) => train::train(a, o),
        Command::Compare(a) => compare::compare(a, o),
        Command::Search(a) => discover::search(a, o),
    }
}

/// `ruleopt check`: every file is checked even if an earlier one fails; diagnostics go
/// to `out`, since they are what was asked for.
fn check(args: &CheckArgs, o: &mut Output<'_>) -> Result<(), Error> {
    let mut failed = 0;
    for path in &args.files {
        let mut session = match Session::open(path) {
            Ok(s) => s,
            Err(e) => {
                writeln!(o.out, "error: {e}").map_err(Error::Output)?;
                failed += 1;
                continue;
            }
        };
        match session.check() {
            Ok(checked) => {
                load::write_diagnostics(
                    &session.sources,
                    &checked.program.warnings,
                    o.out,
                    o.out_color,
                )?;
                let (models, networks) =
                    (checked.program.models.len(), checked.program.networks.len());
                writeln!(
                    o.out,
                    "{}: ok: {}, {}",
                    session.root_name(),
                    plural(models, "model"),
                    plural(networks, "network")
                )
                .map_err(Error::Output)?;
            }
            Err(diags) => {
                load::write_diagnostics(&session.sources, &diags, o.out, o.out_color)?;
                let errors = diags.iter().filter(|d| d.is_error()).count();
                writeln!(
                    o.out,
                    "{}: {}",
                    session.root_name(),
                    plural(errors, "error")
                )
                .map_err(Error::Output)?;
                failed += 1;
            }
        }
    }
    match failed {
        0 => Ok(()),
        _ => Err(Error::CheckFailed {
            failed,
            total: args.files.len(),
        }),
    }
}

/// `ruleopt compile`.
fn compile(args: &CompileArgs, o: &mut Output<'_>) -> Result<(), Error> {
    let mut session = Session::open(&args.file)?;
    let text = match args.emit {
        Emit::Ast => {
            let file = session
                .parse_root()
                .map_err(|d| session.reject(&d, o.err, o.err_color))?;
            file.to_string()
        }
        Emit::Ir => {
            let root = session
                .parse_root()
                .map_err(|d| session.reject(&d, o.err, o.err_color))?;
            let has_network = root
                .items
                .iter()
                .any(|i| matches!(i, lang::ast::Item::Network(_)));
            if has_network || args.network.is_some() {
                session
                    .module(args.network.as_deref(), o.err, o.err_color)?
                    .to_string()
            } else {
                // A file of models: each model lowered on its own, as `check` does.
                let checked = session
                    .check()
                    .map_err(|d| session.reject(&d, o.err, o.err_color))?;
                let mut text = String::new();
                for item in &root.items {
                    let lang::ast::Item::Model(m) = item else {
                        continue;
                    };
                    let module = lang::lower::lower_model(&checked.program, &m.name.name)
                        .map_err(|d| session.reject(&d, o.err, o.err_color))?;
                    text += &format!(
                        "; model {} lowered alone (see `ruleopt compile --help`)\n{module}\n",
                        m.name.name
                    );
                }
                text
            }
        }
        Emit::Clif => {
            let module = session.module(args.network.as_deref(), o.err, o.err_color)?;
            let kernel = jit::compile(
                &module,
                jit::Options {
                    precision: args.precision.into(),
                },
            )?;
            kernel.clif.clone()
        }
        Emit::Grad => {
            let module = session.module(args.network.as_deref(), o.err, o.err_color)?;
            let adjoint = lang::diff::diff(&module).map_err(|e| Error::Grad(e.to_string()))?;
            adjoint.module.to_string()
        }
    };
    o.out.write_all(text.as_bytes()).map_err(Error::Output)?;
    if !text.ends_with('\n') {
        writeln!(o.out).map_err(Error::Output)?;
    }
    Ok(())
}

/// `ruleopt simulate`.
fn simulate(args: &SimulateArgs, o: &mut Output<'_>) -> Result<(), Error> {
    let mut session = match &args.file {
        Some(path) => Session::open(path)?,
        None => Session::bundled(),
    };
    let (mut module, files) =
        session.module_and_files(args.network.as_deref(), o.err, o.err_color)?;
    let task = match &args.task {
        Some(name) => {
            let task = benchmarks::tasks::by_name(
                name,
                &train::task_options(args.task_options.as_deref())?,
            )?;
            let file = args
                .file
                .clone()
                .unwrap_or_else(|| std::path::PathBuf::from(bundled::ROOT));
            module = train::fit_to_task(&file, module, files, &task, o)?.0;
            Some(task)
        }
        None => None,
    };
    let cfg = simulate::SimConfig {
        steps: args.steps as usize,
        batch: args.batch as usize,
        seed: args.seed,
        rates: args.rates.clone(),
        signals: args.signals.clone(),
        record: args.record.clone(),
        backend: match args.backend {
            Backend::Interp => simulate::Backend::Interp,
            Backend::Jit => simulate::Backend::Jit(args.precision.into()),
        },
    };
    let result = match &task {
        Some(task) => {
            let (result, score) = simulate::on_task(&module, task, &cfg)?;
            simulate::write_table(&result, o.out).map_err(Error::Output)?;
            writeln!(
                o.out,
                "task {}: {} {:.4}, loss {:.4} (mean over {})",
                task.name,
                train::task_metric(task),
                score.metric,
                score.loss,
                plural(cfg.batch, "episode")
            )
            .map_err(Error::Output)?;
            result
        }
        None => {
            let result = simulate::simulate(&module, &cfg)?;
            simulate::write_table(&result, o.out).map_err(Error::Output)?;
            result
        }
    };
    if let Some(path) = &args.out {
        let json = serde_json::to_string(&result).map_err(|e| Error::Write {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        write_file(path, &json)?;
    }
    if let Some(path) = &args.raster {
        write_file(path, &raster::raster_svg(&result)?)?;
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|source| Error::Write {
        path: path.display().to_string(),
        source,
    })
}
