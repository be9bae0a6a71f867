//! `ruleopt bench rediscover`: the rediscovery benchmarks of rule search. Each is a
//! rule with a hole whose answer is known (`rules/search/`); every seed runs
//! `ruleopt search` with `--known` and `--stop-on-hit`, and the table reports how many
//! runs found the rule, with evaluations and time to the first hit, beside the published
//! figures (Jordan et al. 2021, eLife 10:e66273).

use crate::args::{Cli, Command, RediscoverArgs};
use crate::{Error, Output};
use search::train::{write_atomic, TrainError};
use serde_json::Value;
use std::path::Path;

/// One rediscovery benchmark.
pub struct Rediscovery {
    /// Task name (`--task`).
    pub task: &'static str,
    /// The rule with the hole.
    pub file: &'static str,
    /// `HOLE=FORMULA` of the known rule.
    pub known: &'static str,
    /// The search's settings.
    pub settings: &'static [&'static str],
    /// What was published.
    pub published: &'static str,
}

/// The benchmarks.
pub const BENCHMARKS: &[Rediscovery] = &[
    Rediscovery {
        task: "reward-driven",
        file: "rules/search/reward_driven.rule",
        known: "f=e * (r - 1)",
        settings: &[
            "--strategy",
            "mu+lambda",
            "--mu",
            "4",
            "--lambda",
            "4",
            "--generations",
            "500",
            "--episodes",
            "8",
            "--hurdle-episodes",
            "2",
        ],
        published: "4 of 8 runs in 500 generations, (mu + lambda) with mu = lambda = 4",
    },
    Rediscovery {
        task: "error-driven",
        file: "rules/search/error_driven.rule",
        known: "f=sbar * (v - post.out)",
        settings: &[
            "--strategy",
            "mu+lambda",
            "--mu",
            "4",
            "--lambda",
            "4",
            "--generations",
            "1000",
            "--episodes",
            "2",
            "--hurdle-episodes",
            "1",
        ],
        published: "2 of 6 runs in 1000 generations, (mu + lambda) with mu = lambda = 4",
    },
    Rediscovery {
        task: "oja-pca",
        file: "rules/search/oja_pca.rule",
        known: "f=post.out * (pre.out - post.out * w)",
        settings: &[
            "--strategy",
            "tournament",
            "--population",
            "64",
            "--lambda",
            "16",
            "--islands",
            "2",
            "--generations",
            "300",
            "--episodes",
            "8",
            "--hurdle-episodes",
            "2",
        ],
        published: "(none)",
    },
];

/// One run's outcome, from its `summary.json`.
struct Outcome {
    hit: Option<(u64, f64, u64)>,
    seconds: f64,
    evaluations: u64,
}

/// `ruleopt bench rediscover`.
pub fn rediscover(a: &RediscoverArgs, o: &mut Output<'_>) -> Result<(), Error> {
    if let Some(t) = a.threads {
        benchmarks::set_threads(t as usize)?;
    }
    let chosen: Vec<&Rediscovery> = if a.tasks.is_empty() {
        BENCHMARKS.iter().collect()
    } else {
        a.tasks
            .iter()
            .map(|t| {
                BENCHMARKS.iter().find(|b| b.task == t).ok_or_else(|| {
                    Error::Train(TrainError::Task(format!(
                        "no rediscovery benchmark `{t}`; they are {}",
                        BENCHMARKS
                            .iter()
                            .map(|b| b.task)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                })
            })
            .collect::<Result<_, _>>()?
    };
    let mut md = String::from(
        "| task | settings | runs | found | evaluations to the hit (median, range) | seconds to the hit (median, range) | longest run (s) | published |\n|---|---|---|---|---|---|---|---|\n",
    );
    for b in chosen {
        let mut outcomes = Vec::new();
        for seed in 0..a.seeds {
            let dir = a.out.join(b.task).join(format!("seed-{seed}"));
            let summary = dir.join("summary.json");
            if !summary.exists() {
                let mut argv: Vec<String> = ["ruleopt", "search", b.file, "--task", b.task]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                argv.extend(b.settings.iter().map(|s| s.to_string()));
                argv.extend([
                    "--known".to_string(),
                    b.known.to_string(),
                    "--stop-on-hit".into(),
                    "--seed".into(),
                    seed.to_string(),
                    "--max-minutes".into(),
                    a.max_minutes.to_string(),
                    "--out".into(),
                    dir.display().to_string(),
                ]);
                if dir.join("checkpoint.json").exists() {
                    argv.push("--resume".into());
                }
                let cli = <Cli as clap::Parser>::try_parse_from(&argv)
                    .map_err(|e| Error::Train(TrainError::Task(e.to_string())))?;
                let Command::Search(sa) = &cli.command else {
                    unreachable!("the argv starts with `search`")
                };
                writeln!(o.err, "{} seed {seed}: {}", b.task, dir.display())
                    .map_err(Error::Output)?;
                let mut sink = Vec::new();
                let mut inner = Output {
                    out: &mut sink,
                    err: o.err,
                    out_color: false,
                    err_color: o.err_color,
                };
                crate::discover::search(sa, &mut inner)?;
            }
            let out = outcome(&summary)?;
            writeln!(
                o.err,
                "{} seed {seed}: {}",
                b.task,
                match out.hit {
                    Some((e, s, g)) =>
                        format!("found in generation {g}, {e} evaluations, {s:.1} s"),
                    None => format!(
                        "not found ({} evaluations, {:.1} s)",
                        out.evaluations, out.seconds
                    ),
                }
            )
            .map_err(Error::Output)?;
            outcomes.push(out);
        }
        md += &row(b, &outcomes);
    }
    md += &format!(
        "\nSettings (beside `--known HOLE=FORMULA --stop-on-hit --seed S --max-minutes {}`):\n\n",
        a.max_minutes
    );
    for b in BENCHMARKS {
        md += &format!(
            "- `{}`: `ruleopt search {} --task {} {}`, known `{}`\n",
            b.task,
            b.file,
            b.task,
            b.settings.join(" "),
            b.known
        );
    }
    std::fs::create_dir_all(&a.out).map_err(|e| Error::Write {
        path: a.out.display().to_string(),
        source: e,
    })?;
    write_atomic(&a.out.join("RESULTS.md"), md.as_bytes())?;
    write!(o.out, "{md}").map_err(Error::Output)?;
    Ok(())
}

fn outcome(summary: &Path) -> Result<Outcome, Error> {
    let text = std::fs::read_to_string(summary).map_err(|source| Error::Read {
        path: summary.display().to_string(),
        source,
    })?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| Error::Train(TrainError::Task(format!("{}: {e}", summary.display()))))?;
    let hit = v.get("first_hit").filter(|h| !h.is_null()).map(|h| {
        (
            h["evaluations"].as_u64().unwrap_or(0),
            h["seconds"].as_f64().unwrap_or(0.0),
            h["generation"].as_u64().unwrap_or(0),
        )
    });
    Ok(Outcome {
        hit,
        seconds: v["seconds"].as_f64().unwrap_or(0.0),
        evaluations: v["evaluations"].as_u64().unwrap_or(0),
    })
}

fn row(b: &Rediscovery, outcomes: &[Outcome]) -> String {
    let hits: Vec<&(u64, f64, u64)> = outcomes.iter().filter_map(|o| o.hit.as_ref()).collect();
    let stat = |mut v: Vec<f64>, fmt: &dyn Fn(f64) -> String| -> String {
        if v.is_empty() {
            return "-".into();
        }
        v.sort_by(f64::total_cmp);
        let med = if v.len() % 2 == 1 {
            v[v.len() / 2]
        } else {
            (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
        };
        format!("{} ({}-{})", fmt(med), fmt(v[0]), fmt(v[v.len() - 1]))
    };
    let strategy = b
        .settings
        .iter()
        .position(|s| *s == "--strategy")
        .and_then(|i| b.settings.get(i + 1))
        .copied()
        .unwrap_or("mu+lambda");
    format!(
        "| {} | {} | {} | {} | {} | {} | {:.1} | {} |\n",
        b.task,
        strategy,
        outcomes.len(),
        hits.len(),
        stat(hits.iter().map(|h| h.0 as f64).collect(), &|x| format!(
            "{x:.0}"
        )),
        stat(hits.iter().map(|h| h.1).collect(), &|x| format!("{x:.1}")),
        outcomes.iter().map(|o| o.seconds).fold(0.0, f64::max),
        b.published
    )
}
