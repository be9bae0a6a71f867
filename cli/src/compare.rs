//! `ruleopt compare`: meta-trains each of several networks on each of several tasks
//! with several seeds, then tabulates the held-out metric and plots the training and
//! within-episode curves (the plasticity-rule comparison).
//!
//! Layout of the output directory: `TASK/NETWORK/seed-S/` is one `ruleopt train` run
//! (its `network.rule` is the network resized to the task's inputs and choices, the
//! exact text trained); `RESULTS.md` holds the summary (network x task) and a table per
//! task, `TASK-training.svg` and `TASK-within-episode.svg` the curves (these three in
//! `--report DIR` if given, e.g. benchmarks/comparison). A run that finished is not run
//! again, one that stopped is resumed from its checkpoint, one whose training failed is
//! listed with its reason: the command can be interrupted and repeated, and
//! `--report-only` tabulates what has finished.

use crate::args::CompareArgs;
use crate::load::Session;
use crate::train::{resized_text, task_options, Run};
use crate::{Error, Output};
use benchmarks::tasks::env::EnvTask;
use plotters::prelude::*;
use search::train::{read_log, write_atomic, IterLog, Task, TrainConfig};
use std::path::{Path, PathBuf};

/// Where the comparison networks live.
pub const DEFAULT_NETWORKS: &str = "rules/comparison";

/// The tasks compared by default: the online-learning suite.
pub const DEFAULT_TASKS: &[&str] = benchmarks::tasks::ONLINE;

/// Outer-loop iterations per run on each task, the same for every network: 0.5-5
/// minutes of one core for a 100-neuron network (the recurrent plastic rules are the
/// slow ones), so that the whole table, 21 networks x 6 tasks x 3 seeds, is about 12
/// hours of one core (11.7 hours of training iterations measured, 0.3-12 minutes a
/// run); and enough for the networks that learn a task to show it
/// (benchmarks/RESULTS.md, "Online learning").
pub const BUDGETS: &[(&str, u32)] = &[
    ("cue-reward", 600),
    ("t-maze", 60),
    ("evidence", 150),
    ("evidence-reversal", 60),
    ("one-shot", 600),
    ("regression", 600),
];

/// The budget of a task not in [`BUDGETS`].
pub const OTHER_BUDGET: u32 = 100;

/// Iterations per run on `task`: `--iterations`, else the task's budget.
fn iterations(a: &CompareArgs, task: &str) -> u32 {
    a.iterations.unwrap_or_else(|| {
        BUDGETS
            .iter()
            .find(|(t, _)| *t == task)
            .map_or(OTHER_BUDGET, |&(_, n)| n)
    })
}

/// The file that records why a run failed in training.
const FAILED: &str = "failed.txt";

/// What became of one run.
enum Outcome {
    /// Trained (now or before) and evaluated.
    Done(RunResult),
    /// Not finished (`--report-only`).
    Missing,
    /// Training stopped with an error (the loss or its gradient not finite, ...).
    Failed(String),
}

/// One run's result.
struct RunResult {
    network: String,
    log: Vec<IterLog>,
    /// Held-out metric and within-episode curve.
    metric: f64,
    curve: Vec<f64>,
}

/// `ruleopt compare`.
pub fn compare(a: &CompareArgs, o: &mut Output<'_>) -> Result<(), Error> {
    if let Some(t) = a.threads {
        benchmarks::set_threads(t as usize)?;
    }
    let files = network_files(&a.files)?;
    let tasks: Vec<String> = if a.tasks.is_empty() {
        DEFAULT_TASKS.iter().map(|s| s.to_string()).collect()
    } else {
        a.tasks.clone()
    };
    let report_dir = a.report.as_ref().unwrap_or(&a.out);
    std::fs::create_dir_all(report_dir).map_err(|source| Error::Write {
        path: report_dir.display().to_string(),
        source,
    })?;
    let mut report = String::new();
    let mut columns: Vec<Column> = Vec::new();
    let stems: Vec<String> = files.iter().map(|f| stem(f)).collect();
    let settings = format!(
        "`ruleopt compare` with {} seeds, iterations of {} episodes, lr {}; metric on {} held-out episodes per run (mean ± sd over seeds); training time per run (one `ruleopt train` run, on the threads it was given).\n",
        a.seeds, a.batch, a.lr, a.eval_episodes
    );
    for task_name in &tasks {
        let given = a
            .task_options
            .iter()
            .find(|(t, _)| t == task_name)
            .map(|(_, j)| j.as_str());
        let task = benchmarks::tasks::by_name(task_name, &task_options(given)?)?;
        let budget = iterations(a, task_name);
        let mut results: Vec<RunResult> = Vec::new();
        let mut missing: Vec<(String, u64)> = Vec::new();
        // (network, seed, why) of each run whose training failed.
        let mut failed: Vec<(String, u64, String)> = Vec::new();
        for (file, stem) in files.iter().zip(&stems) {
            let text = resized(file, &task, o)?;
            for seed in 0..u64::from(a.seeds) {
                let dir = a
                    .out
                    .join(task_name)
                    .join(stem)
                    .join(format!("seed-{seed}"));
                if !a.report_only {
                    writeln!(
                        o.err,
                        "== {task_name} / {stem} / seed {seed} ({})",
                        dir.display()
                    )
                    .map_err(Error::Output)?;
                }
                match run_one(a, &task, budget, stem, &text, seed, &dir, o)? {
                    Outcome::Done(r) => results.push(r),
                    Outcome::Missing => missing.push((stem.clone(), seed)),
                    Outcome::Failed(why) => failed.push((stem.clone(), seed, why)),
                }
            }
        }
        let column = Column::new(&task, &results, &failed);
        if results.is_empty() {
            report += &format!(
                "\n## {task_name}\n\nBudget: {budget} iterations per run. No run has finished yet.\n"
            );
        } else {
            report += &table(&task, budget, &column);
        }
        if !missing.is_empty() {
            report += &format!(
                "\nNot finished ({} of {}): {}.\n",
                missing.len(),
                crate::plural(missing.len() + results.len() + failed.len(), "run"),
                by_network(&missing)
            );
        }
        if !failed.is_empty() {
            report += &format!(
                "\nFailed in training ({}; deterministic for the seed and settings: delete the run's `{FAILED}` to try again):\n\n",
                crate::plural(failed.len(), "run")
            );
            for (net, seed, why) in &failed {
                report += &format!("- {net} seed {seed}: {why}\n");
            }
        }
        columns.push(column);
        if results.is_empty() {
            continue;
        }
        let metric = task.metric_name().to_string();
        let training = format!("{task_name}-training.svg");
        write_atomic(
            &report_dir.join(&training),
            training_svg(task_name, &metric, &results)?.as_bytes(),
        )?;
        report += &format!("\n![{task_name}: meta-training]({training})\n");
        if results.iter().any(|r| !r.curve.is_empty()) {
            let within = format!("{task_name}-within-episode.svg");
            write_atomic(
                &report_dir.join(&within),
                within_svg(task_name, &results)?.as_bytes(),
            )?;
            report += &format!("\n![{task_name}: within-episode learning]({within})\n");
        }
    }
    let report = format!(
        "# Plasticity-rule comparison\n\n{settings}\n{}{report}",
        summary(&stems, &columns)
    );
    write_atomic(&report_dir.join("RESULTS.md"), report.as_bytes())?;
    writeln!(
        o.out,
        "{report}\nwrote {}",
        report_dir.join("RESULTS.md").display()
    )
    .map_err(Error::Output)
}

/// A network's name in the tables: its file's stem.
fn stem(file: &Path) -> String {
    file.file_stem()
        .map_or_else(|| "network".into(), |s| s.to_string_lossy().into_owned())
}

/// One network's finished runs on one task.
struct Cell {
    network: String,
    /// Mean and sample sd of the held-out metric over the seeds.
    mean: f64,
    sd: f64,
    /// Finished seeds.
    seeds: usize,
    /// Mean training seconds per run.
    seconds: f64,
    /// The most iterations of its runs.
    iterations: usize,
}

/// One task's results: its table, and its column of the summary.
struct Column {
    task: String,
    metric: String,
    higher_is_better: bool,
    /// Per network with a finished run, in first-seen order.
    cells: Vec<Cell>,
    /// Networks with a run that failed in training (once per failed run).
    failed: Vec<String>,
}

impl Column {
    fn new(task: &EnvTask, results: &[RunResult], failed: &[(String, u64, String)]) -> Column {
        let cells = networks(results)
            .into_iter()
            .map(|net| {
                let runs: Vec<&RunResult> = results.iter().filter(|r| r.network == net).collect();
                let (mean, sd) = mean_sd(&runs.iter().map(|r| r.metric).collect::<Vec<_>>());
                let secs: Vec<f64> = runs
                    .iter()
                    .map(|r| r.log.iter().map(|l| l.seconds).sum::<f64>())
                    .collect();
                Cell {
                    network: net.to_string(),
                    mean,
                    sd,
                    seeds: runs.len(),
                    seconds: mean_sd(&secs).0,
                    iterations: runs.iter().map(|r| r.log.len()).max().unwrap_or(0),
                }
            })
            .collect();
        Column {
            task: task.name().to_string(),
            metric: task.metric_name().to_string(),
            higher_is_better: task.higher_is_better(),
            cells,
            failed: failed.iter().map(|(net, _, _)| net.clone()).collect(),
        }
    }

    /// `mean` as a key that sorts the best first.
    fn key(&self, mean: f64) -> f64 {
        if self.higher_is_better {
            -mean
        } else {
            mean
        }
    }
}

/// The summary: one row per network (in the order given), one column per task, the
/// held-out metric's mean ± sd over the finished seeds (their number in brackets when
/// short of the others'), the best mean of each column in bold; `failed k` for runs
/// that failed in training, `-` for none finished.
fn summary(networks: &[String], columns: &[Column]) -> String {
    if columns.is_empty() {
        return String::new();
    }
    let mut s = String::from("## Summary\n\nHeld-out metric, mean ± sd over seeds (best of each task in bold; `[n]`: only n seeds finished):\n\n| network |");
    for c in columns {
        let better = if c.higher_is_better { "↑" } else { "↓" };
        s += &format!(" {} {} {better} |", c.task, c.metric);
    }
    s += "\n|---|";
    s += &"---|".repeat(columns.len());
    s += "\n";
    // Per column: the most seeds any network finished, and the best mean's key.
    let tops: Vec<(usize, f64)> = columns
        .iter()
        .map(|c| {
            let seeds = c.cells.iter().map(|x| x.seeds).max().unwrap_or(0);
            let best = c
                .cells
                .iter()
                .map(|x| c.key(x.mean))
                .fold(f64::INFINITY, f64::min);
            (seeds, best)
        })
        .collect();
    for net in networks {
        s += &format!("| {net} |");
        for (c, &(seeds, best)) in columns.iter().zip(&tops) {
            let failed = c.failed.iter().filter(|f| *f == net).count();
            let mut cell = match c.cells.iter().find(|x| &x.network == net) {
                Some(x) => {
                    let mut t = plus_minus(x.mean, x.sd);
                    if c.key(x.mean) == best {
                        t = format!("**{t}**");
                    }
                    if x.seeds < seeds {
                        t += &format!(" [{}]", x.seeds);
                    }
                    t
                }
                None if failed == 0 => "-".to_string(),
                None => String::new(),
            };
            if failed > 0 {
                if !cell.is_empty() {
                    cell += ", ";
                }
                cell += &format!("failed {failed}");
            }
            s += &format!(" {cell} |");
        }
        s += "\n";
    }
    s + "\n"
}

/// `mean ± sd`, both with the decimals that give the larger of the two three
/// significant digits (`0.927 ± 0.010`, `30.2 ± 31.9`, `-0.0010 ± 0.0486`).
fn plus_minus(mean: f64, sd: f64) -> String {
    let larger = mean.abs().max(sd);
    let digits = if larger.is_finite() && larger > 0.0 {
        (2 - larger.log10().floor() as i32).clamp(0, 6) as usize
    } else {
        3
    };
    format!("{mean:.digits$} ± {sd:.digits$}")
}

/// The `.rule` files to compare: those given (files, or directories of them), or the
/// default directory's.
fn network_files(given: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let given = if given.is_empty() {
        vec![PathBuf::from(DEFAULT_NETWORKS)]
    } else {
        given.to_vec()
    };
    let mut out = Vec::new();
    for p in given {
        if p.is_dir() {
            let mut in_dir: Vec<PathBuf> = std::fs::read_dir(&p)
                .map_err(|source| Error::Read {
                    path: p.display().to_string(),
                    source,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "rule"))
                .collect();
            in_dir.sort();
            out.extend(in_dir);
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

/// The network of `file` as one self-contained text, its input and readout population
/// resized to the task's channels and choices.
fn resized(file: &Path, task: &EnvTask, o: &mut Output<'_>) -> Result<String, Error> {
    let mut session = Session::open(file)?;
    let (module, files) = session.module_and_files(None, o.err, o.err_color)?;
    let header = vec![
        format!("{} resized for task {}", file.display(), task.name()),
        "(written by `ruleopt compare`; the network that this run trains)".into(),
    ];
    resized_text(file, &module, &files, task, &header)
}

/// Trains (or resumes, or reads back) one run; with `--report-only`, only reads back a
/// finished or failed one. A training error is the run's outcome, recorded in its
/// directory, not the command's: the other runs go on.
#[allow(clippy::too_many_arguments)]
fn run_one(
    a: &CompareArgs,
    task: &EnvTask,
    iterations: u32,
    stem: &str,
    text: &str,
    seed: u64,
    dir: &Path,
    o: &mut Output<'_>,
) -> Result<Outcome, Error> {
    let file = dir.join("network.rule");
    let ck = dir.join("checkpoint.json");
    // Held while this process looks at and trains the run; the OS releases it when the
    // process ends, however it ends.
    let _lock = match (!a.report_only).then(|| lock(dir)).transpose()? {
        Some(None) => {
            writeln!(o.err, "   being trained by another process: skipped")
                .map_err(Error::Output)?;
            return Ok(Outcome::Missing);
        }
        Some(Some(lock)) => Some(lock),
        None => None,
    };
    match std::fs::read_to_string(&file) {
        Ok(old) if old != text && ck.exists() && !a.report_only => {
            return Err(Error::Init(format!(
                "{} differs from the network being compared now (the rule file changed since this run started): move {} away to start it again",
                file.display(),
                dir.display()
            )))
        }
        _ => {}
    }
    let metric = task.metric_name().to_string();
    let done = std::fs::read_to_string(&ck)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("next_iteration").and_then(|n| n.as_u64()))
        .is_some_and(|n| n as usize >= iterations as usize)
        && dir.join("eval.json").exists();
    if let Ok(why) = std::fs::read_to_string(dir.join(FAILED)) {
        return Ok(Outcome::Failed(why.trim().to_string()));
    }
    if a.report_only && !done {
        return Ok(Outcome::Missing);
    }
    if !a.report_only {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.display().to_string(),
            source,
        })?;
        write_atomic(&file, text.as_bytes())?;
    }
    if done {
        let eval: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("eval.json")).map_err(|source| Error::Read {
                path: dir.join("eval.json").display().to_string(),
                source,
            })?,
        )
        .map_err(|e| Error::Init(format!("{}: {e}", dir.join("eval.json").display())))?;
        if !a.report_only {
            writeln!(o.err, "   done before: kept").map_err(Error::Output)?;
        }
        return Ok(Outcome::Done(RunResult {
            network: stem.to_string(),
            log: read_log(&dir.join("log.jsonl"), usize::MAX, &metric)?,
            metric: eval
                .get(&metric)
                .and_then(|v| v.as_f64())
                .unwrap_or(f64::NAN),
            curve: eval
                .get("trial_rewards")
                .and_then(|v| v.as_array())
                .map(|xs| xs.iter().filter_map(|x| x.as_f64()).collect())
                .unwrap_or_default(),
        }));
    }
    let mut session = Session::open(&file)?;
    let (module, files) = session.module_and_files(None, o.err, o.err_color)?;
    let cfg = TrainConfig {
        iterations: iterations as usize,
        batch: a.batch as usize,
        lr: a.lr,
        seed,
        precision: a.precision.into(),
        max_seconds: a.max_minutes.map(|m| m * 60.0),
        max_skips: a.max_skips as usize,
        ..TrainConfig::default()
    };
    let outcome = Run {
        file: &file,
        module: &module,
        files: &files,
        task,
        cfg,
        dir,
        resume: ck.exists(),
        eval_episodes: a.eval_episodes as usize,
    }
    .go(o);
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(Error::Train(e)) => {
            let why = e.to_string();
            writeln!(o.err, "   failed: {why}").map_err(Error::Output)?;
            write_atomic(&dir.join(FAILED), format!("{why}\n").as_bytes())?;
            return Ok(Outcome::Failed(why));
        }
        Err(e) => return Err(e),
    };
    let (metric, curve) = outcome
        .eval
        .map_or((f64::NAN, Vec::new()), |e| (e.metric, e.curve));
    Ok(Outcome::Done(RunResult {
        network: stem.to_string(),
        log: outcome.log,
        metric,
        curve,
    }))
}

/// The run's lock (`DIR/.lock`, an advisory file lock), so that several `compare`
/// processes can share one output directory, even one task: each run is trained by
/// one of them, the others skip it. `None` when another process holds it.
fn lock(dir: &Path) -> Result<Option<std::fs::File>, Error> {
    let path = dir.join(".lock");
    let write_err = |source| Error::Write {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(write_err)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(write_err)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(write_err(e)),
    }
}

/// `net (seeds 0, 1), other (seed 2)`: runs grouped by network, in first-seen order.
fn by_network(runs: &[(String, u64)]) -> String {
    let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
    for (net, seed) in runs {
        match groups.iter_mut().find(|(n, _)| n == net) {
            Some((_, seeds)) => seeds.push(seed.to_string()),
            None => groups.push((net, vec![seed.to_string()])),
        }
    }
    groups
        .iter()
        .map(|(net, seeds)| {
            let word = if seeds.len() == 1 { "seed" } else { "seeds" };
            format!("{net} ({word} {})", seeds.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Mean and sample standard deviation.
fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n.max(1.0);
    let var = if xs.len() > 1 {
        xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// The networks in first-seen order.
fn networks(results: &[RunResult]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for r in results {
        if !out.contains(&r.network.as_str()) {
            out.push(&r.network);
        }
    }
    out
}

/// One task's table, best first.
fn table(task: &EnvTask, iterations: u32, column: &Column) -> String {
    let metric = task.metric_name();
    let better = if task.higher_is_better() {
        "higher"
    } else {
        "lower"
    };
    let mut cells: Vec<&Cell> = column.cells.iter().collect();
    cells.sort_by(|a, b| column.key(a.mean).total_cmp(&column.key(b.mean)));
    let mut s = format!(
        "\n## {}\n\nOptions: `{}`. Budget: {iterations} iterations per run. Metric: {metric} ({better} is better).\n\n| network | {metric} (held out) | seeds | iterations | training s per run |\n|---|---|---|---|---|\n",
        task.name(),
        task.options()
    );
    for c in cells {
        s += &format!(
            "| {} | {:.3} ± {:.3} | {} | {} | {:.1} |\n",
            c.network, c.mean, c.sd, c.seeds, c.iterations, c.seconds
        );
    }
    s
}

fn plot_err(e: impl std::fmt::Display) -> Error {
    Error::Plot(e.to_string())
}

/// Lines of `(x, y)` per network, one chart.
fn lines_svg(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    lines: &[(String, Vec<(f64, f64)>)],
) -> Result<String, Error> {
    let series: Vec<Series> = lines
        .iter()
        .map(|(name, points)| Series {
            name: name.clone(),
            points: points.clone(),
            line: true,
            dots: false,
        })
        .collect();
    chart_svg(title, x_desc, y_desc, &series)
}

/// One series of a chart.
pub(crate) struct Series {
    /// Legend label.
    pub name: String,
    /// Its points.
    pub points: Vec<(f64, f64)>,
    /// Join them with a line.
    pub line: bool,
    /// Mark each point.
    pub dots: bool,
}

/// The smallest and largest finite value of `xs`; `(0, 1)` if none is finite (a loss
/// that was never finite still gets an axis).
pub(crate) fn finite_range(xs: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = xs
        .filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(x), hi.max(x))
        });
    if lo.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    }
}

/// One chart of several series, as SVG text.
pub(crate) fn chart_svg(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
) -> Result<String, Error> {
    let pts = || {
        series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let (x0, x1) = finite_range(pts().map(|(x, _)| x));
    let (y0, y1) = finite_range(pts().map(|(_, y)| y));
    let pad = ((y1 - y0) * 0.05).max(1e-6);
    let xpad = if series.iter().any(|s| s.dots) {
        ((x1 - x0) * 0.05).max(0.5)
    } else {
        0.0
    };
    // The legend is a column right of the plot, one row per series, so that many
    // series (a comparison of twenty networks) never cover the lines.
    const ROW: i32 = 22;
    let longest = series
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0);
    let legend_width = (50 + 8 * longest as u32).clamp(120, 360);
    let height = (550).max(60 + ROW as u32 * series.len() as u32);
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (900 + legend_width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let (plot, legend) = root.split_horizontally(900);
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(
                (x0 - xpad)..(x1 + xpad).max(x0 + 1.0),
                (y0 - pad)..(y1 + pad),
            )
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            // Every x here counts something (iterations, trials, generations, nodes).
            .x_label_formatter(&|x| {
                if x1 - x0 >= 5.0 {
                    format!("{x:.0}")
                } else {
                    format!("{x:.1}")
                }
            })
            .draw()
            .map_err(plot_err)?;
        for (i, s) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let finite = || {
                s.points
                    .iter()
                    .copied()
                    .filter(|(x, y)| x.is_finite() && y.is_finite())
            };
            if s.line {
                chart
                    .draw_series(LineSeries::new(finite(), color))
                    .map_err(plot_err)?;
            }
            if s.dots {
                chart
                    .draw_series(finite().map(|p| Circle::new(p, 4, color.filled())))
                    .map_err(plot_err)?;
            }
            let y = 45 + ROW * i as i32;
            if s.line {
                legend
                    .draw(&PathElement::new(
                        vec![(8, y), (32, y)],
                        color.stroke_width(2),
                    ))
                    .map_err(plot_err)?;
            } else {
                legend
                    .draw(&Circle::new((20, y), 4, color.filled()))
                    .map_err(plot_err)?;
            }
            legend
                .draw(&Text::new(s.name.as_str(), (40, y - 7), ("sans-serif", 14)))
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Per network, the training loss against iteration, averaged over seeds.
fn training_svg(task: &str, metric: &str, results: &[RunResult]) -> Result<String, Error> {
    let lines: Vec<(String, Vec<(f64, f64)>)> = networks(results)
        .into_iter()
        .map(|net| {
            let runs: Vec<&RunResult> = results.iter().filter(|r| r.network == net).collect();
            let len = runs.iter().map(|r| r.log.len()).min().unwrap_or(0);
            let per_iteration: Vec<f64> = (0..len)
                .map(|i| {
                    runs.iter().map(|r| r.log[i].score.metric).sum::<f64>() / runs.len() as f64
                })
                .collect();
            (
                net.to_string(),
                moving_average(&per_iteration, (len / 40).max(1)),
            )
        })
        .collect();
    lines_svg(
        &format!("{task}: meta-training ({metric} of the batches, mean over seeds, smoothed)"),
        "iteration",
        metric,
        &lines,
    )
}

/// `(i, mean of xs[i + 1 - width ..= i])` for each `i` (fewer at the start): a trailing
/// moving average, so that a point shows only what happened up to its iteration.
fn moving_average(xs: &[f64], width: usize) -> Vec<(f64, f64)> {
    (0..xs.len())
        .map(|i| {
            let from = (i + 1).saturating_sub(width);
            let w = &xs[from..=i];
            (i as f64, w.iter().sum::<f64>() / w.len() as f64)
        })
        .collect()
}

/// Per network, the reward of each trial of a held-out episode, averaged over seeds.
fn within_svg(task: &str, results: &[RunResult]) -> Result<String, Error> {
    let lines: Vec<(String, Vec<(f64, f64)>)> = networks(results)
        .into_iter()
        .map(|net| {
            let runs: Vec<&RunResult> = results.iter().filter(|r| r.network == net).collect();
            let len = runs.iter().map(|r| r.curve.len()).min().unwrap_or(0);
            let pts = (0..len)
                .map(|k| {
                    let m = runs.iter().map(|r| r.curve[k]).sum::<f64>() / runs.len() as f64;
                    (k as f64 + 1.0, m)
                })
                .collect();
            (net.to_string(), pts)
        })
        .collect();
    lines_svg(
        &format!("{task}: within-episode learning (held-out episodes, mean over seeds)"),
        "trial",
        "reward",
        &lines,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_has_a_cell_per_network_and_task_and_bolds_the_best() {
        let col =
            |task: &str, higher: bool, cells: &[(&str, f64, f64, usize)], failed: &[&str]| Column {
                task: task.into(),
                metric: "m".into(),
                higher_is_better: higher,
                cells: cells
                    .iter()
                    .map(|&(n, mean, sd, seeds)| Cell {
                        network: n.to_string(),
                        mean,
                        sd,
                        seeds,
                        seconds: 1.0,
                        iterations: 2,
                    })
                    .collect(),
                failed: failed.iter().map(|f| f.to_string()).collect(),
            };
        let nets: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let s = summary(
            &nets,
            &[
                col(
                    "up",
                    true,
                    &[("a", 0.9, 0.01, 3), ("b", 0.5, 0.1, 2)],
                    &["b"],
                ),
                col(
                    "down",
                    false,
                    &[("a", 30.2, 31.9, 3), ("c", 1.04, 0.178, 3)],
                    &[],
                ),
            ],
        );
        let rows: Vec<&str> = s.lines().filter(|l| l.starts_with("| ")).collect();
        assert_eq!(rows[0], "| network | up m ↑ | down m ↓ |", "{s}");
        assert_eq!(rows[1], "| a | **0.900 ± 0.010** | 30.2 ± 31.9 |", "{s}");
        assert_eq!(rows[2], "| b | 0.500 ± 0.100 [2], failed 1 | - |", "{s}");
        assert_eq!(rows[3], "| c | - | **1.04 ± 0.18** |", "{s}");
        assert_eq!(summary(&nets, &[]), "");
    }

    #[test]
    fn plus_minus_gives_the_larger_three_significant_digits() {
        assert_eq!(plus_minus(0.92712, 0.00993), "0.927 ± 0.010");
        assert_eq!(plus_minus(30.24, 31.91), "30.2 ± 31.9");
        assert_eq!(plus_minus(-0.00104, 0.0486), "-0.0010 ± 0.0486");
        assert_eq!(plus_minus(5141.2, 748.0), "5141 ± 748");
        assert_eq!(plus_minus(0.0, 0.0), "0.000 ± 0.000");
        assert_eq!(plus_minus(f64::NAN, 0.1), "NaN ± 0.100");
    }

    #[test]
    fn moving_average_trails_and_starts_short() {
        let xs = [1.0, 3.0, 5.0, 7.0];
        assert_eq!(
            moving_average(&xs, 2),
            vec![(0.0, 1.0), (1.0, 2.0), (2.0, 4.0), (3.0, 6.0)]
        );
        assert_eq!(moving_average(&xs, 1)[3], (3.0, 7.0));
        assert!(moving_average(&[], 3).is_empty());
    }

    #[test]
    fn unfinished_runs_are_grouped_by_network() {
        let runs = [
            ("a".to_string(), 0),
            ("b".to_string(), 2),
            ("a".to_string(), 1),
        ];
        assert_eq!(by_network(&runs), "a (seeds 0, 1), b (seed 2)");
    }

    #[test]
    fn every_default_task_has_its_own_budget() {
        for t in DEFAULT_TASKS {
            assert!(BUDGETS.iter().any(|(b, _)| b == t), "{t}");
        }
        for (t, _) in BUDGETS {
            benchmarks::tasks::by_name(t, &serde_json::json!({})).unwrap();
        }
    }

    #[test]
    fn the_range_of_a_plot_ignores_values_that_are_not_finite() {
        assert_eq!(finite_range([2.0, f64::NAN, -1.0].into_iter()), (-1.0, 2.0));
        assert_eq!(
            finite_range([f64::NAN, f64::INFINITY].into_iter()),
            (0.0, 1.0)
        );
        assert_eq!(finite_range(std::iter::empty()), (0.0, 1.0));
    }
}
