//! `ruleopt bench`: runs the benchmarks of the `benchmarks` crate and prints their
//! results, as a line or table of text or as JSON.

use crate::args::{BenchArgs, BenchMode, CompileBenchArgs, W1Args, Workload};
use crate::{load, Error, Output};
use benchmarks::compile::Latency;
use benchmarks::w1::{BenchConfig, BenchResult};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where `bench compile` looks without paths.
pub const DEFAULT_NETWORKS: &str = "rules/networks";

/// `ruleopt bench`.
pub fn bench(args: &BenchArgs, o: &mut Output<'_>) -> Result<(), Error> {
    match &args.workload {
        Workload::W1(a) => w1(a, o),
        Workload::Compile(a) => compile(a, o),
        Workload::Rediscover(a) => crate::rediscover::rediscover(a, o),
    }
}

fn w1(a: &W1Args, o: &mut Output<'_>) -> Result<(), Error> {
    benchmarks::set_threads(a.threads as usize)?;
    let cfg = BenchConfig {
        n: a.n as usize,
        repeats: a.repeats as usize,
        threads: a.threads as usize,
        precision: a.precision.into(),
        params: a.params.clone(),
        seed: a.seed,
        lockstep: a.lockstep,
    };
    let r = if a.mode == BenchMode::Grad {
        let (r, g) = benchmarks::w1_grad::bench_grad(
            &cfg,
            a.checkpoint.map(|k| k as usize),
            a.memory_budget,
        )?;
        if let Some(path) = &a.grads_out {
            let json = benchmarks::w1_grad::to_json(r.n, cfg.precision, &g);
            let text = serde_json::to_string(&json)
                .map_err(|e| Error::Output(std::io::Error::other(e)))?;
            std::fs::write(path, text).map_err(|source| Error::Write {
                path: path.display().to_string(),
                source,
            })?;
        }
        r
    } else {
        if a.grads_out.is_some() {
            return Err(Error::NotImplemented {
                what: "`--grads-out` with `--mode fwd`".into(),
                why: "gradients come from `--mode grad`".into(),
            });
        }
        benchmarks::w1::bench_forward(&cfg)?
    };
    let text = if a.json {
        serde_json::to_string(&r).map_err(|e| Error::Output(std::io::Error::other(e)))?
    } else {
        w1_line(&r)
    };
    writeln!(o.out, "{text}").map_err(Error::Output)
}

/// One readable line of a W1 result.
pub fn w1_line(r: &BenchResult) -> String {
    format!(
        "w1 {} N={} B={} T={} {}, {}, {} thread{}: median {:.4} s, min {:.4} s over {} runs; \
         {:.3e} synapse updates/s; compile {:.1} ms (JIT {:.1} ms); peak RSS {:.1} MiB; loss {:.7}; other load up to {:.0}%",
        r.mode,
        r.n,
        r.batch,
        r.steps,
        r.precision,
        r.order,
        r.threads,
        if r.threads == 1 { "" } else { "s" },
        r.median_s,
        r.min_s,
        r.times_s.len(),
        r.synapse_updates_per_s,
        r.compile_total_s * 1e3,
        r.compile_s * 1e3,
        r.peak_rss_bytes as f64 / (1024.0 * 1024.0),
        r.loss,
        100.0 * r.other_load.iter().copied().fold(0.0, f64::max)
    )
}

/// The `.rule` files named on the command line, directories expanded (sorted).
fn rule_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let default = [PathBuf::from(DEFAULT_NETWORKS)];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let entries = std::fs::read_dir(p).map_err(|source| Error::Read {
                path: p.display().to_string(),
                source,
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|f| f.extension().is_some_and(|x| x == "rule"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

fn compile(a: &CompileBenchArgs, o: &mut Output<'_>) -> Result<(), Error> {
    let mut cache: HashMap<String, String> = HashMap::new();
    let mut results = Vec::new();
    for path in rule_files(&a.paths)? {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
            path: name.clone(),
            source,
        })?;
        // Imports are read once (during the untimed warm-up) and then come from memory.
        let mut resolve = |importer: &str, import: &str| -> Result<(String, String), String> {
            let file = load::import_name(importer, import);
            if let Some(text) = cache.get(&file) {
                return Ok((file, text.clone()));
            }
            let text = std::fs::read_to_string(Path::new(&file))
                .map_err(|e| format!("cannot read `{file}`: {e}"))?;
            cache.insert(file.clone(), text.clone());
            Ok((file, text))
        };
        results.push(benchmarks::compile::latency(
            &name,
            &text,
            &mut resolve,
            a.repeats as usize,
            a.precision.into(),
        ));
    }
    let text = if a.json {
        serde_json::to_string_pretty(&results)
            .map_err(|e| Error::Output(std::io::Error::other(e)))?
    } else {
        latency_table(&results)
    };
    writeln!(o.out, "{}", text.trim_end()).map_err(Error::Output)
}

/// The compile-latency table: one row per network, medians in ms.
pub fn latency_table(rows: &[Latency]) -> String {
    let ms = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
    let header = [
        "network",
        "file",
        "parse+check+lower (ms)",
        "JIT (ms)",
        "total (ms)",
        "note",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                if r.network.is_empty() {
                    "-".to_string()
                } else {
                    r.network.clone()
                },
                r.file.clone(),
                ms(Some(r.lower_ms).filter(|v| v.is_finite())),
                ms(r.jit_ms),
                ms(r.total_ms),
                r.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |c: [&str; 6]| {
        format!(
            "{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {:>w4$}  {}",
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            c[5],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2],
            w3 = width[3],
            w4 = width[4],
        )
        .trim_end()
        .to_string()
    };
    let mut out = line(header) + "\n";
    for r in &cells {
        out += &line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]);
        out += "\n";
    }
    if let Some(r) = rows.first() {
        out += &format!(
            "medians of {} compilations after one warm-up, from text in memory\n",
            r.repeats
        );
    }
    out
}
