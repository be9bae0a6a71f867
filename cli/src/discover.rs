//! `ruleopt search` (module `discover`, as the crate `search` has the name): evolution of a rule's holes ([`search::evolve`]) on a task of the
//! `benchmarks` crate, each candidate checked, compiled, tuned and scored by
//! [`search::rules::RuleProblem`]; a progress bar; the hall of fame written as rules.

use crate::args::{SearchArgs, StrategyArg};
use crate::compare::{chart_svg, Series};
use crate::load::Session;
use crate::train::{task_metric, task_options};
use crate::{bundled, Error, Output};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use search::evolve::{GenLog, Individual, Search, SearchConfig, SearchResult, Strategy};
use search::expr::OpSet;
use search::rules::{EvalConfig, RuleProblem};
use search::train::{write_atomic, Task, TrainConfig, TrainError};
use search::variation::Limits;
use serde_json::json;
use std::path::{Path, PathBuf};

/// The task of the bundled search.
pub const DEFAULT_TASK: &str = "reward-driven";

/// `ruleopt search`.
pub fn search(a: &SearchArgs, o: &mut Output<'_>) -> Result<(), Error> {
    if let Some(t) = a.threads {
        benchmarks::set_threads(t as usize)?;
    }
    let (mut session, task_name) = match (&a.file, &a.task) {
        (Some(f), Some(t)) => (Session::open(f)?, t.clone()),
        (Some(_), None) => {
            return Err(Error::Train(TrainError::Task(
                "which task? `--task NAME` (the fitness is its metric)".into(),
            )))
        }
        (None, t) => (
            Session::bundled_at(bundled::SEARCH_ROOT),
            t.clone().unwrap_or_else(|| DEFAULT_TASK.to_string()),
        ),
    };
    let options = task_options(a.task_options.as_deref())?;
    let task = benchmarks::tasks::by_name(&task_name, &options)?;
    // The template must check (holes and all) before anything runs.
    let (module, files) = session.module_and_files(a.network.as_deref(), o.err, o.err_color)?;
    let ops = OpSet::parse(&a.ops, !a.unprotected)
        .map_err(|msg| Error::Train(TrainError::Config { field: "ops", msg }))?;
    let tournament = a.tournament.map(|t| t as usize);
    let strategy = match a.strategy {
        StrategyArg::MuPlusLambda => Strategy::MuPlusLambda {
            mu: a.mu as usize,
            lambda: a.lambda as usize,
            tournament: tournament.unwrap_or(1),
        },
        StrategyArg::Tournament => Strategy::Tournament {
            population: a.population as usize,
            lambda: a.lambda as usize,
            tournament: tournament.unwrap_or(3),
            aging: !a.no_aging,
        },
    };
    let cfg = SearchConfig {
        strategy,
        islands: a.islands as usize,
        migration_interval: a.migration_interval as usize,
        migrants: a.migrants as usize,
        ops,
        limits: Limits {
            max_size: a.max_size as usize,
            max_depth: a.max_depth as usize,
        },
        crossover: a.crossover,
        niching: !a.no_niching,
        hurdle: (!a.no_hurdle).then_some(a.hurdle),
        generations: a.generations as usize,
        max_evaluations: a.max_evaluations,
        max_seconds: a.max_minutes.map(|m| m * 60.0),
        target: a.target,
        hall_of_fame: a.hall_of_fame as usize,
        seed: a.seed,
        ..SearchConfig::default()
    };
    let eval_cfg = EvalConfig {
        tune_iterations: a.tune_iterations as usize,
        train: TrainConfig {
            batch: a.tune_batch as usize,
            lr: a.lr,
            seed: a.seed,
            precision: a.precision.into(),
            ..TrainConfig::default()
        },
        episodes: a.episodes as usize,
        hurdle_episodes: a.hurdle_episodes as usize,
        eval_seed: u64::MAX - a.seed,
        protected: !a.unprotected,
    };
    let problem = RuleProblem::new(
        session.sources.clone(),
        files,
        a.network.clone(),
        &task,
        eval_cfg,
    )
    .map_err(|e| Error::Train(TrainError::Task(e)))?;
    let holes = problem.hole_specs();
    let cfg = SearchConfig {
        known: known_trees(&a.known, &holes)?,
        stop_on_hit: a.stop_on_hit,
        ..cfg
    };
    let runner = Search::new(cfg.clone(), holes.clone(), &problem)?;
    let dir = a.out.clone().unwrap_or_else(|| {
        PathBuf::from("runs").join(format!("search-{}-{}", module.name, task_name))
    });
    writeln!(
        o.err,
        "searching {} `{}` of {} on task {} ({}) in {}: {} generations, operators {}",
        crate::plural(holes.len(), "hole"),
        holes
            .iter()
            .map(|h| format!("?{}({})", h.name, h.args.join(", ")))
            .collect::<Vec<_>>()
            .join(", "),
        session.root_name(),
        task_name,
        task_metric(&task),
        dir.display(),
        cfg.generations,
        cfg.ops
            .ops
            .iter()
            .map(|o| o.name())
            .collect::<Vec<_>>()
            .join(" "),
    )
    .map_err(Error::Output)?;
    let bar =
        ProgressBar::with_draw_target(Some(cfg.generations as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} generations  {msg}  [{elapsed_precise} < {eta_precise}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let hidden = bar.is_hidden();
    let every = (cfg.generations / 20).max(1);
    let mut notes = Vec::new();
    let result = runner.run(Some(&dir), a.resume, &mut |g: &GenLog| {
        let msg = format!(
            "best {:.4}  {}  {:.1} evals/s",
            g.best_fitness,
            g.best_formulas.join("; "),
            g.evals_per_second
        );
        bar.set_position(g.generation as u64 + 1);
        bar.set_message(msg.clone());
        let n = g.generation + 1;
        if hidden && (n.is_multiple_of(every) || n == cfg.generations) {
            notes.push(format!("generation {n}/{}: {msg}", cfg.generations));
        }
    });
    bar.finish_and_clear();
    for n in &notes {
        writeln!(o.err, "{n}").map_err(Error::Output)?;
    }
    let result = result?;
    let source = match &a.file {
        Some(f) => f.display().to_string(),
        None => bundled::SEARCH_ROOT.to_string(),
    };
    report(&problem, &task, &result, &holes, &dir, &source, a, o)
}

/// Writes the hall of fame, the summary and the plots; prints the best rule.
#[allow(clippy::too_many_arguments)]
fn report(
    problem: &RuleProblem<'_, benchmarks::tasks::env::EnvTask>,
    task: &benchmarks::tasks::env::EnvTask,
    result: &SearchResult,
    holes: &[search::evolve::HoleSpec],
    dir: &Path,
    source: &str,
    a: &SearchArgs,
    o: &mut Output<'_>,
) -> Result<(), Error> {
    let metric = task_metric(task);
    let hof_dir = dir.join("hall-of-fame");
    std::fs::create_dir_all(&hof_dir).map_err(|e| Error::Write {
        path: hof_dir.display().to_string(),
        source: e,
    })?;
    let test_episodes = (a.episodes as usize).max(16);
    let test_seed = u64::MAX / 2 - a.seed;
    let mut rows = Vec::new();
    for (rank, ind) in result.hall_of_fame.iter().enumerate() {
        let stem = format!("{:02}", rank + 1);
        let formulas = ind.formulas(holes);
        let header: Vec<String> = [
            format!(
                "Found by `ruleopt search {source} --task {}` (seed {}): rank {} of the hall of fame.",
                task.name(),
                a.seed,
                rank + 1
            ),
            format!("Task options: {}", task.options()),
        ]
        .into_iter()
        .chain(formulas.iter().cloned())
        .chain([format!(
            "Fitness {} ({metric} {}), complexity {}, born in generation {}.",
            ind.fitness, ind.metric, ind.complexity, ind.born
        )])
        .collect();
        let evaluated = ind.evaluated.clone().unwrap_or_else(|| ind.genome.clone());
        let values_name = format!("{stem}.json");
        let row = match problem.realise(&evaluated, test_episodes, test_seed, &values_name, &header)
        {
            Ok(r) => {
                let path = hof_dir.join(format!("{stem}.rule"));
                write_atomic(&path, r.text.as_bytes())?;
                if !r.values.params.is_empty() {
                    write_atomic(&hof_dir.join(&values_name), r.values.to_json().as_bytes())?;
                }
                json!({"rank": rank + 1, "formulas": formulas, "fitness": ind.fitness,
                       "metric": ind.metric, "test_metric": r.test.metric,
                       "complexity": ind.complexity, "born": ind.born,
                       "file": format!("hall-of-fame/{stem}.rule")})
            }
            Err(e) => json!({"rank": rank + 1, "formulas": formulas, "fitness": ind.fitness,
                              "metric": ind.metric, "complexity": ind.complexity,
                              "born": ind.born, "error": e}),
        };
        rows.push(row);
    }
    let pareto: Vec<serde_json::Value> = result
        .pareto
        .iter()
        .map(|p| json!({"formulas": p.formulas(holes), "fitness": p.fitness, "metric": p.metric, "complexity": p.complexity}))
        .collect();
    let summary = json!({
        "rule": source, "task": task.name(), "task_options": task.options(), "metric": task.metric_name(),
        "stop": result.stop.describe(), "generations": result.log.len(),
        "evaluations": result.evaluations,
        "seconds": result.log.iter().map(|g| g.seconds).sum::<f64>(),
        "test_episodes": test_episodes,
        "first_hit": result.first_hit.as_ref().map(|h| json!({
            "generation": h.generation, "evaluations": h.evaluations, "seconds": h.seconds,
            "formulas": h.genome.formulas(holes),
        })),
        "hall_of_fame": rows, "pareto": pareto,
        "failures": result.errors.iter().map(|(m, n)| json!({"reason": m, "candidates": n})).collect::<Vec<_>>(),
    });
    write_atomic(
        &dir.join("summary.json"),
        format!("{summary:#}\n").as_bytes(),
    )?;
    write_atomic(
        &dir.join("summary.md"),
        summary_md(&summary, &metric).as_bytes(),
    )?;
    // Plots.
    let gens = |f: &dyn Fn(&GenLog) -> f64| -> Vec<(f64, f64)> {
        result
            .log
            .iter()
            .map(|g| (g.generation as f64, f(g)))
            .collect()
    };
    let fitness = chart_svg(
        "ruleopt search: fitness over generations",
        "generation",
        "fitness",
        &[
            Series {
                name: "best so far".into(),
                points: gens(&|g| g.best_fitness),
                line: true,
                dots: false,
            },
            Series {
                name: "population mean".into(),
                points: gens(&|g| g.mean_fitness),
                line: true,
                dots: false,
            },
        ],
    )?;
    write_atomic(&dir.join("fitness.svg"), fitness.as_bytes())?;
    let pts = |v: &[Individual]| -> Vec<(f64, f64)> {
        v.iter().map(|i| (i.complexity as f64, i.fitness)).collect()
    };
    let pareto_svg = chart_svg(
        "ruleopt search: fitness against complexity",
        "complexity (nodes after simplification)",
        "fitness",
        &[
            Series {
                name: "hall of fame".into(),
                points: pts(&result.hall_of_fame),
                line: false,
                dots: true,
            },
            Series {
                name: "Pareto front".into(),
                points: pts(&result.pareto),
                line: true,
                dots: true,
            },
        ],
    )?;
    write_atomic(&dir.join("pareto.svg"), pareto_svg.as_bytes())?;
    // The verdict.
    writeln!(
        o.out,
        "{} after {} generations and {} evaluations ({:.1} s)",
        result.stop.describe(),
        result.log.len(),
        result.evaluations,
        result.log.iter().map(|g| g.seconds).sum::<f64>()
    )
    .map_err(Error::Output)?;
    match result.hall_of_fame.first() {
        Some(best) => {
            writeln!(
                o.out,
                "best rule (fitness {:.4}, {metric} {:.4}, complexity {}):",
                best.fitness, best.metric, best.complexity
            )
            .map_err(Error::Output)?;
            for f in best.formulas(holes) {
                writeln!(o.out, "  {f}").map_err(Error::Output)?;
            }
        }
        None => writeln!(o.out, "no candidate could be evaluated").map_err(Error::Output)?,
    }
    if !result.errors.is_empty() {
        let total: usize = result.errors.iter().map(|(_, n)| n).sum();
        writeln!(
            o.out,
            "candidates that failed, by reason (most frequent first; {total} shown):"
        )
        .map_err(Error::Output)?;
        for (msg, n) in &result.errors {
            writeln!(o.out, "  {n} x {msg}").map_err(Error::Output)?;
        }
    }
    writeln!(
        o.out,
        "wrote {} (hall of fame: {})",
        [
            "summary.md",
            "summary.json",
            "fitness.svg",
            "pareto.svg",
            "log.jsonl",
            "checkpoint.json"
        ]
        .iter()
        .map(|f| dir.join(f).display().to_string())
        .collect::<Vec<_>>()
        .join(", "),
        hof_dir.display()
    )
    .map_err(Error::Output)?;
    Ok(())
}

/// `--known HOLE=FORMULA` for every hole, as trees in the holes' argument names.
fn known_trees(
    known: &[(String, String)],
    holes: &[search::evolve::HoleSpec],
) -> Result<Option<Vec<search::expr::Tree>>, Error> {
    if known.is_empty() {
        return Ok(None);
    }
    let bad = |msg: String| {
        Error::Train(TrainError::Config {
            field: "known",
            msg,
        })
    };
    for (name, _) in known {
        if !holes.iter().any(|h| &h.name == name) {
            return Err(bad(format!(
                "the rule has no hole `?{name}` (its holes: {})",
                holes
                    .iter()
                    .map(|h| h.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    holes
        .iter()
        .map(|h| {
            let (_, text) = known
                .iter()
                .find(|(n, _)| *n == h.name)
                .ok_or_else(|| bad(format!("no formula for the hole `?{}`", h.name)))?;
            let names: Vec<&str> = h.args.iter().map(String::as_str).collect();
            search::expr::Tree::parse(text, &names)
                .map_err(|e| bad(format!("`{}={text}`: {e}", h.name)))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn summary_md(s: &serde_json::Value, metric: &str) -> String {
    let mut md = format!(
        "# ruleopt search\n\nRule `{}`, task `{}` (options `{}`); fitness = {metric}.\nStopped: {} after {} generations, {} evaluations, {:.1} s.\n\n## Hall of fame\n\n| rank | formula | fitness | test {metric} ({} episodes) | complexity | generation | file |\n|---|---|---|---|---|---|---|\n",
        s["rule"].as_str().unwrap_or(""),
        s["task"].as_str().unwrap_or(""),
        s["task_options"],
        s["stop"].as_str().unwrap_or(""),
        s["generations"],
        s["evaluations"],
        s["seconds"].as_f64().unwrap_or(0.0),
        s["test_episodes"],
    );
    let formulas = |v: &serde_json::Value| -> String {
        v["formulas"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str())
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join("<br>")
            })
            .unwrap_or_default()
    };
    let num = |v: &serde_json::Value| v.as_f64().map_or("-".into(), |x| format!("{x:.4}"));
    for r in s["hall_of_fame"].as_array().into_iter().flatten() {
        md += &format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r["rank"],
            formulas(r),
            num(&r["fitness"]),
            num(&r["test_metric"]),
            r["complexity"],
            r["born"],
            r["file"].as_str().map_or_else(
                || format!("error: {}", r["error"].as_str().unwrap_or("")),
                |f| format!("[{f}]({f})")
            ),
        );
    }
    if let Some(h) = s.get("first_hit").filter(|h| !h.is_null()) {
        md += &format!(
            "\nThe known rule was first evaluated in generation {}, after {} evaluations and {:.1} s: {}.\n",
            h["generation"], h["evaluations"], h["seconds"].as_f64().unwrap_or(0.0), formulas(h)
        );
    }
    md += "\n## Pareto front (fitness against complexity)\n\n| complexity | fitness | formula |\n|---|---|---|\n";
    for p in s["pareto"].as_array().into_iter().flatten() {
        md += &format!(
            "| {} | {} | {} |\n",
            p["complexity"],
            num(&p["fitness"]),
            formulas(p)
        );
    }
    if let Some(f) = s["failures"].as_array().filter(|f| !f.is_empty()) {
        md += "\n## Candidates that failed, by reason\n\n| candidates | reason |\n|---|---|\n";
        for r in f {
            md += &format!(
                "| {} | {} |\n",
                r["candidates"],
                r["reason"]
                    .as_str()
                    .unwrap_or("")
                    .replace('|', "\\|")
                    .replace('\n', " ")
            );
        }
    }
    md += "\nPlots: [fitness.svg](fitness.svg), [pareto.svg](pareto.svg).\n";
    md
}
