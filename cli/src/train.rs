//! `ruleopt train`: the outer loop of `search::train` on a task of the `benchmarks`
//! crate, with a progress bar, and the learned network written back as rule text.

use crate::args::TrainArgs;
use crate::compare::finite_range;
use crate::load::{Origin, Session};
use crate::{Error, Output};
use benchmarks::tasks::env::EnvTask;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use plotters::prelude::*;
use search::train::{write_atomic, IterLog, TrainConfig, Trainer};
use std::path::{Path, PathBuf};

/// `ruleopt train`.
pub fn train(a: &TrainArgs, o: &mut Output<'_>) -> Result<(), Error> {
    if let Some(t) = a.threads {
        benchmarks::set_threads(t as usize)?;
    }
    let options = task_options(a.task_options.as_deref())?;
    let task = benchmarks::tasks::by_name(&a.task, &options)?;
    let mut session = Session::open(&a.file)?;
    let (module, files) = session.module_and_files(a.network.as_deref(), o.err, o.err_color)?;
    let (module, files) = fit_to_task(&a.file, module, files, &task, o)?;
    let cfg = TrainConfig {
        iterations: a.iterations as usize,
        batch: a.batch as usize,
        lr: a.lr,
        clip: (!a.no_clip).then_some(a.clip),
        seed: a.seed,
        precision: a.precision.into(),
        checkpoint: a.checkpoint.map(|k| k as usize),
        memory_budget: a.memory_budget,
        max_seconds: a.max_minutes.map(|m| m * 60.0),
        max_skips: a.max_skips as usize,
        ..TrainConfig::default()
    };
    let dir = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(format!("{}-{}", module.name, a.task)));
    let run = Run {
        file: &a.file,
        module: &module,
        files: &files,
        task: &task,
        cfg,
        dir: &dir,
        resume: a.resume,
        eval_episodes: a.eval_episodes as usize,
    };
    run.go(o).map(|_| ())
}

/// `module` (loaded from `file` as `files`) as it runs on `task`: itself, or, when its
/// input or readout does not fit the task, resized to the task's channels and choices
/// (as `ruleopt compare` does: the comparison networks have 40 inputs and 2 choices),
/// with a note on stderr.
pub(crate) fn fit_to_task(
    file: &Path,
    module: lang::ir::Module,
    files: Vec<(lang::FileId, lang::ast::File)>,
    task: &EnvTask,
    o: &mut Output<'_>,
) -> Result<(lang::ir::Module, Vec<(lang::FileId, lang::ast::File)>), Error> {
    let Some(what) = misfit(&module, task)? else {
        return Ok((module, files));
    };
    let header = vec![format!(
        "{} resized for task {} ({what})",
        file.display(),
        task.name
    )];
    let text = resized_text(file, &module, &files, task, &header)?;
    let mut resized = Session::from_text(&file.display().to_string(), text, Origin::Fs);
    let (module, files) = match resized.module_and_files(None, o.err, o.err_color) {
        Ok(checked) => checked,
        Err(e) => {
            // The diagnostics above point into the resized text, not the file.
            writeln!(
                o.err,
                "note: the lines above are those of `{}` resized for task {} ({what}), a self-contained copy of the network and its models",
                file.display(),
                task.name
            )
            .map_err(Error::Output)?;
            return Err(e);
        }
    };
    writeln!(
        o.err,
        "resized `{}` for task {}: {what}",
        module.name, task.name
    )
    .map_err(Error::Output)?;
    Ok((module, files))
}

/// One training run: a checked network, a task, a configuration, a directory.
pub(crate) struct Run<'a> {
    /// The rule file (for the learned rule's header).
    pub file: &'a Path,
    /// The network.
    pub module: &'a lang::ir::Module,
    /// Its parsed files (for writing the learned rule).
    pub files: &'a [(lang::FileId, lang::ast::File)],
    /// The task.
    pub task: &'a EnvTask,
    /// The optimiser and run shape.
    pub cfg: TrainConfig,
    /// The run directory.
    pub dir: &'a Path,
    /// Continue from the directory's checkpoint.
    pub resume: bool,
    /// Held-out episodes for the final evaluation (0: none).
    pub eval_episodes: usize,
}

/// What a finished run gives back.
pub(crate) struct Outcome {
    /// Every iteration's record.
    pub log: Vec<IterLog>,
    /// The score on held-out episodes, if evaluated.
    pub eval: Option<search::train::Score>,
}

impl Run<'_> {
    /// Trains, evaluates, and writes the run's files; prints a summary to `o.out`.
    pub(crate) fn go(self, o: &mut Output<'_>) -> Result<Outcome, Error> {
        let Run {
            file,
            module,
            files,
            task,
            cfg,
            dir,
            resume,
            eval_episodes,
        } = self;
        let task_name = search::train::Task::name(task).to_string();
        let (iterations, batch, seed, lr) = (cfg.iterations, cfg.batch, cfg.seed, cfg.lr);
        let mut trainer = Trainer::new(module, task, cfg)?;
        writeln!(
        o.err,
        "training `{}` on task {} in {}: {} iterations of {} episodes, BPTT checkpoint every {} steps",
        module.name,
        task_name,
        dir.display(),
        iterations,
        batch,
        trainer.checkpoint_interval()
    )
    .map_err(Error::Output)?;
        let total = iterations as u64;
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} iterations  {msg}  [{elapsed_precise} < {eta_precise}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let metric = task_metric(task);
        let quiet_every = (total / 20).max(1);
        let hidden = bar.is_hidden();
        let mut notes: Vec<String> = Vec::new();
        let result = trainer.run(dir, resume, &mut |rec: &IterLog| {
            let msg = format!(
                "loss {:.4}  {metric} {:.3}  |grad| {:.3}{}",
                rec.score.loss,
                rec.score.metric,
                rec.grad_norm,
                if rec.skipped {
                    "  (not finite: no update)"
                } else {
                    ""
                }
            );
            bar.set_position(rec.iteration as u64 + 1);
            bar.set_message(msg.clone());
            // Without a terminal, a line now and then instead of the bar.
            let n = rec.iteration as u64 + 1;
            if hidden && (n.is_multiple_of(quiet_every) || n == total) {
                notes.push(format!(
                    "iteration {n}/{total}: {msg} ({:.2} s)",
                    rec.seconds
                ));
            }
        });
        bar.finish_and_clear();
        for n in &notes {
            writeln!(o.err, "{n}").map_err(Error::Output)?;
        }
        let result = result?;
        if result.log.len() < iterations {
            writeln!(
                o.err,
                "stopped at the time budget after {} of {iterations} iterations: `--resume` continues",
                result.log.len()
            )
            .map_err(Error::Output)?;
        }
        // The learned parameters on held-out episodes.
        let eval = if eval_episodes > 0 {
            let seed = u64::MAX - seed;
            let score = trainer.evaluate(eval_episodes, seed)?;
            let json = serde_json::json!({
                "episodes": eval_episodes, "seed": seed, "loss": score.loss,
                search::train::Task::metric_name(task): score.metric, "trial_rewards": score.curve,
            });
            write_atomic(&dir.join("eval.json"), format!("{json}\n").as_bytes())?;
            Some(score)
        } else {
            None
        };
        // The learned values, as JSON and as a self-contained rule file.
        let values = result.learned.to_values(module);
        write_atomic(&dir.join("learned.json"), values.to_json().as_bytes())?;
        let last = result.log.last();
        let header = vec![
        format!(
            "Learned by `ruleopt train {} --task {}`: {} iterations, seed {}, {} episodes per iteration, lr {}.",
            file.display(),
            task_name,
            result.log.len(),
            seed,
            batch,
            lr
        ),
        format!("Task options: {}", task_options_text(task)),
        match (&eval, last) {
            (Some(e), _) => format!(
                "Held-out episodes ({}): loss {:.6}, {metric} {:.4}.",
                eval_episodes, e.loss, e.metric
            ),
            (None, Some(l)) => format!(
                "Last iteration: loss {:.6}, {metric} {:.4}.",
                l.score.loss, l.score.metric
            ),
            (None, None) => "No iteration ran.".into(),
        },
        "Values of non-scalar parameters: learned.json (internal units: ms).".into(),
    ];
        let text =
            lang::learned::rule_with_values(files, &module.name, &values, "learned.json", &header)
                .map_err(|e| Error::Init(format!("cannot write the learned rule: {e}")))?;
        write_atomic(&dir.join("learned.rule"), text.as_bytes())?;
        if !result.log.is_empty() {
            let curve = eval.as_ref().map_or(&[][..], |e| &e.curve[..]);
            let svg = curves_svg(&module.name, &task_name, &metric, &result.log, curve)?;
            write_atomic(&dir.join("training.svg"), svg.as_bytes())?;
        }
        // The summary.
        if let Some(first) = result.log.first() {
            let l = last.unwrap_or(first);
            writeln!(
            o.out,
            "loss {:.4} -> {:.4}, {metric} {:.3} -> {:.3} over {} iterations ({:.1} s per iteration)",
            first.score.loss,
            l.score.loss,
            first.score.metric,
            l.score.metric,
            result.log.len(),
            result.log.iter().map(|r| r.seconds).sum::<f64>() / result.log.len() as f64
        )
        .map_err(Error::Output)?;
        }
        if let Some(e) = &eval {
            writeln!(
                o.out,
                "held-out ({} episodes): loss {:.4}, {metric} {:.3}",
                eval_episodes, e.loss, e.metric
            )
            .map_err(Error::Output)?;
        }
        for (name, e) in &values.params {
            if e.data.len() == 1 {
                writeln!(o.out, "  {name} = {}", e.data[0]).map_err(Error::Output)?;
            } else {
                let mean = e.data.iter().sum::<f64>() / e.data.len() as f64;
                writeln!(o.out, "  {name}: {} values, mean {mean:.4}", e.data.len())
                    .map_err(Error::Output)?;
            }
        }
        writeln!(
            o.out,
            "wrote {}",
            [
                "learned.rule",
                "learned.json",
                "eval.json",
                "training.svg",
                "log.jsonl",
                "checkpoint.json"
            ]
            .iter()
            .map(|f| dir.join(f))
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
        )
        .map_err(Error::Output)?;
        Ok(Outcome {
            log: result.log,
            eval,
        })
    }
}

/// What of `module` does not fit `task` (its input's channels, its readout's
/// choices), if anything.
fn misfit(module: &lang::ir::Module, task: &EnvTask) -> Result<Option<String>, Error> {
    let (x, y) = task.input_and_readout(module)?;
    let mut what = Vec::new();
    let channels = module.space_size(module.vars[x].space);
    if let Some(c) = task.channels.filter(|&c| c != channels) {
        let input = module.vars[x].name.trim_end_matches(".out");
        what.push(format!("input `{input}` {channels} -> {c} channels"));
    }
    if let (Some(k), lang::ir::Space::Pop(p)) = (task.classes, module.vars[y].space) {
        let size = module.pops[p].size;
        if k != size {
            what.push(format!(
                "readout `{}` {size} -> {k} values",
                module.pops[p].name
            ));
        }
    }
    Ok((!what.is_empty()).then(|| what.join(", ")))
}

/// `module` (loaded from `file` as `files`) as one self-contained rule text, its input
/// and readout population resized to the task's channels and choices, with `header`.
pub(crate) fn resized_text(
    file: &Path,
    module: &lang::ir::Module,
    files: &[(lang::FileId, lang::ast::File)],
    task: &EnvTask,
    header: &[String],
) -> Result<String, Error> {
    let bad = |msg: String| Error::Init(format!("{}: {msg}", file.display()));
    let (x, y) = task.input_and_readout(module)?;
    let input = module.vars[x].name.trim_end_matches(".out").to_string();
    let readout_pop = match module.vars[y].space {
        lang::ir::Space::Pop(p) => Some(module.pops[p].name.clone()),
        _ => None,
    };
    lang::learned::rule_text(files, &module.name, header, |net| {
        if let Some(c) = task.channels {
            lang::learned::set_size(net, &input, c)?;
        }
        if let Some(k) = task.classes {
            let pop = readout_pop
                .as_deref()
                .ok_or("the readout is not a population's")?;
            lang::learned::set_size(net, pop, k)?;
        }
        Ok(())
    })
    .map_err(bad)
}

/// The metric's name, marked when lower is better.
pub(crate) fn task_metric(task: &benchmarks::tasks::env::EnvTask) -> String {
    let name = search::train::Task::metric_name(task);
    if search::train::Task::higher_is_better(task) {
        name.to_string()
    } else {
        format!("{name} (lower is better)")
    }
}

fn task_options_text(task: &benchmarks::tasks::env::EnvTask) -> String {
    search::train::Task::options(task).to_string()
}

/// `--task-options`: inline JSON or `@FILE`.
pub(crate) fn task_options(arg: Option<&str>) -> Result<serde_json::Value, Error> {
    let Some(arg) = arg else {
        return Ok(serde_json::Value::Null);
    };
    let (text, origin) = match arg.strip_prefix('@') {
        Some(path) => (
            std::fs::read_to_string(path).map_err(|source| Error::Read {
                path: path.to_string(),
                source,
            })?,
            path.to_string(),
        ),
        None => (arg.to_string(), "--task-options".to_string()),
    };
    serde_json::from_str(&text).map_err(|e| {
        Error::Train(search::train::TrainError::Task(format!(
            "{origin} is not valid JSON: {e}"
        )))
    })
}

/// Loss and metric against iteration, one panel each, and, for a task with trials, the
/// mean reward of each trial of a held-out episode (online learning within episodes).
fn curves_svg(
    network: &str,
    task: &str,
    metric: &str,
    log: &[IterLog],
    trial_curve: &[f64],
) -> Result<String, Error> {
    let plot_err = |e: &dyn std::fmt::Display| Error::Plot(e.to_string());
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(
            &mut svg,
            (900, if trial_curve.is_empty() { 700 } else { 950 }),
        )
        .into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(&e))?;
        let root = root
            .titled(
                &format!("{network} on {task}: meta-training"),
                ("sans-serif", 20),
            )
            .map_err(|e| plot_err(&e))?;
        let rows = if trial_curve.is_empty() { 2 } else { 3 };
        let panels = root.split_evenly((rows, 1));
        let n = log.len() as f64;
        let series = [
            (
                "loss",
                log.iter().map(|r| r.score.loss).collect::<Vec<f64>>(),
            ),
            (metric, log.iter().map(|r| r.score.metric).collect()),
        ];
        if let Some(panel) = panels.get(2) {
            let (lo, hi) = finite_range(trial_curve.iter().copied().chain([0.0, 1.0]));
            let mut chart = ChartBuilder::on(panel)
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(60)
                .build_cartesian_2d(1.0..trial_curve.len().max(2) as f64, lo..hi)
                .map_err(|e| plot_err(&e))?;
            chart
                .configure_mesh()
                .x_desc("trial within a held-out episode")
                .y_desc("mean reward")
                .draw()
                .map_err(|e| plot_err(&e))?;
            chart
                .draw_series(LineSeries::new(
                    trial_curve
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| r.is_finite())
                        .map(|(k, &r)| (k as f64 + 1.0, r)),
                    &RED,
                ))
                .map_err(|e| plot_err(&e))?;
        }
        for (panel, (label, ys)) in panels.iter().zip(series.iter()) {
            let (lo, hi) = finite_range(ys.iter().copied());
            let pad = ((hi - lo) * 0.05).max(1e-9);
            let mut chart = ChartBuilder::on(panel)
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(60)
                .build_cartesian_2d(
                    log[0].iteration as f64..(log[0].iteration as f64 + n).max(1.0),
                    (lo - pad)..(hi + pad),
                )
                .map_err(|e| plot_err(&e))?;
            chart
                .configure_mesh()
                .x_desc("iteration")
                .y_desc(*label)
                .draw()
                .map_err(|e| plot_err(&e))?;
            chart
                .draw_series(LineSeries::new(
                    log.iter()
                        .zip(ys)
                        .filter(|(_, y)| y.is_finite())
                        .map(|(r, &y)| (r.iteration as f64, y)),
                    &BLUE,
                ))
                .map_err(|e| plot_err(&e))?;
        }
        root.present().map_err(|e| plot_err(&e))?;
    }
    Ok(svg)
}
