//! Tasks (online-learning environments) and benchmarks of ruleopt.
//!
//! Central design decision: a benchmark is a library function returning a
//! serialisable result ([`w1::BenchResult`], [`compile::Latency`]), so the same code
//! is driven by `ruleopt bench`, by scripts comparing against the JAX and PyTorch
//! references (`benchmarks/w1_compare.sh`), and by unit tests on small sizes. Timing
//! and memory are measured here; printing is the CLI's job.
#![warn(missing_docs)]

pub mod compile;
pub mod tasks;
pub mod w1;
pub mod w1_grad;

use std::time::Instant;

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A size or count out of range.
    #[error("{0}")]
    Config(String),
    /// A file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The path as given.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A parameter file is not in the shared W1 format.
    #[error("`{path}` is not a W1 parameter file: {why}")]
    Params {
        /// The path as given.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// A network's text does not load, check or lower.
    #[error("network `{network}` does not compile: {message}")]
    Lower {
        /// The network (or file) name.
        network: String,
        /// The first error diagnostic.
        message: String,
    },
    /// Parameters or the initial state could not be drawn.
    #[error("cannot initialise the network: {0}")]
    Init(String),
    /// The JIT refused the module.
    #[error(transparent)]
    Jit(#[from] jit::JitError),
    /// The rayon pool could not be set up.
    #[error("cannot start {threads} rayon threads: {why}")]
    Threads {
        /// Threads asked for.
        threads: usize,
        /// Why not.
        why: String,
    },
}

/// Sets the number of threads of rayon's global pool, which the JIT's runner splits
/// episodes across. Call once, before anything runs on the pool.
pub fn set_threads(threads: usize) -> Result<(), BenchError> {
    if threads == 0 {
        return Err(BenchError::Config("--threads must be at least 1".into()));
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| BenchError::Threads {
            threads,
            why: e.to_string(),
        })
}

/// Peak resident memory of this process so far (Linux `VmHWM`), in bytes; 0 where
/// `/proc/self/status` is unavailable.
pub fn peak_rss_bytes() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// CPU time used by other processes during an interval, as a fraction of all cores
/// (like `LoadMeter` of the references' `w1_common.py`): busy time from `/proc/stat`
/// minus this process's own (`/proc/self/stat`). A benchmark run while something else
/// computes says so. Where `/proc` is unavailable the load reads 0.
#[derive(Clone, Copy, Debug)]
pub struct LoadMeter {
    busy: u64,
    total: u64,
    own: u64,
}

impl LoadMeter {
    /// Starts measuring.
    pub fn start() -> LoadMeter {
        let (busy, total) = system_jiffies();
        LoadMeter {
            busy,
            total,
            own: own_jiffies(),
        }
    }

    /// The other processes' share of all cores since [`LoadMeter::start`], in [0, 1].
    pub fn stop(&self) -> f64 {
        let (busy, total) = system_jiffies();
        let own = own_jiffies().saturating_sub(self.own);
        let other = busy.saturating_sub(self.busy).saturating_sub(own);
        let total = total.saturating_sub(self.total).max(1);
        (other as f64 / total as f64).min(1.0)
    }
}

/// (busy, total) jiffies of all cores: the first line of `/proc/stat`, idle = idle +
/// iowait, over the first eight fields.
fn system_jiffies() -> (u64, u64) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return (0, 0);
    };
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return (0, 0);
    }
    let total: u64 = v.iter().sum();
    (total - v[3] - v[4], total)
}

/// utime + stime of this process, in jiffies (fields 14 and 15 of `/proc/self/stat`,
/// counted after the parenthesised command name).
fn own_jiffies() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    f.iter().sum()
}

/// Median of a non-empty sample (the mean of the middle two for an even count).
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

/// Runs `f` and returns its result and the wall time in seconds.
pub fn timed<R>(f: impl FnOnce() -> R) -> (R, f64) {
    let start = Instant::now();
    let r = f();
    (r, start.elapsed().as_secs_f64())
}

/// Loads, checks and lowers `root` (named `name`), resolving imports with `resolve`,
/// (validation is left to [`jit::compile`], which does it first); errors become
/// [`BenchError::Lower`] with the first error's message.
pub fn lower_text(
    name: &str,
    root: &str,
    network: Option<&str>,
    resolve: &mut lang::Resolver<'_>,
) -> Result<lang::ir::Module, BenchError> {
    let fail = |diags: Vec<lang::Diagnostic>| BenchError::Lower {
        network: network.unwrap_or(name).to_string(),
        message: diags
            .iter()
            .find(|d| d.is_error())
            .map_or_else(|| "unknown error".to_string(), |d| d.message.clone()),
    };
    let mut sources = lang::Sources::new();
    let root = sources.add(name, root);
    let files = lang::load(&mut sources, root, resolve).map_err(fail)?;
    let program = lang::check::check(&sources, &files).map_err(fail)?;
    lang::lower::lower(&program, network).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn load_is_a_fraction() {
        let m = LoadMeter::start();
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        let load = m.stop();
        assert!((0.0..=1.0).contains(&load), "{load}");
    }

    #[test]
    fn peak_rss_is_known_on_linux() {
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(peak_rss_bytes() > 0);
        }
    }
}
