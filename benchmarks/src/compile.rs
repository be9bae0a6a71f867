//! Compile latency: how long a network takes from text to a callable kernel (parse,
//! check, lower, then the JIT), the delay a user or a rule search pays per network.

use crate::{lower_text, median, timed};
use jit::Precision;
use serde::Serialize;

/// The compile latency of one network.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    /// The file's name.
    pub file: String,
    /// The network (empty if the file does not lower).
    pub network: String,
    /// Timed compilations, after one untimed warm-up.
    pub repeats: usize,
    /// Median of parse + check + lower, ms.
    pub lower_ms: f64,
    /// Median of the JIT (validation, scheduling, Cranelift, linking), ms; `None` if
    /// the network does not compile.
    pub jit_ms: Option<f64>,
    /// Median of the sum, ms.
    pub total_ms: Option<f64>,
    /// Minimum of the sum, ms.
    pub min_total_ms: Option<f64>,
    /// Why the network does not compile (a hole, an error).
    pub error: Option<String>,
}

/// Compiles the network of `text` (the only or last of the file) `repeats + 1` times,
/// resolving imports with `resolve` (which should not touch the disk after the first
/// call, so that the times measure the compiler alone).
pub fn latency(
    file: &str,
    text: &str,
    resolve: &mut lang::Resolver<'_>,
    repeats: usize,
    precision: Precision,
) -> Latency {
    let mut out = Latency {
        file: file.to_string(),
        network: String::new(),
        repeats,
        lower_ms: f64::NAN,
        jit_ms: None,
        total_ms: None,
        min_total_ms: None,
        error: None,
    };
    let (mut lower, mut jit, mut total) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..=repeats {
        let (m, lower_s) = timed(|| lower_text(file, text, None, resolve));
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                out.error = Some(e.to_string());
                return out;
            }
        };
        out.network.clone_from(&m.name);
        let (kernel, jit_s) = timed(|| jit::compile(&m, jit::Options { precision }));
        if i == 0 {
            continue;
        }
        lower.push(lower_s * 1e3);
        match kernel {
            Ok(_) => {
                jit.push(jit_s * 1e3);
                total.push((lower_s + jit_s) * 1e3);
            }
            Err(e) => out.error = Some(e.to_string()),
        }
    }
    out.lower_ms = median(&lower);
    if out.error.is_none() && !total.is_empty() {
        out.jit_ms = Some(median(&jit));
        out.total_ms = Some(median(&total));
        out.min_total_ms = Some(total.iter().copied().fold(f64::INFINITY, f64::min));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn w1_latency_is_measured() {
        let mut no_imports = |_: &str, _: &str| Err("no imports".to_string());
        let l = latency(
            "w1.rule",
            &crate::w1::source(8),
            &mut no_imports,
            2,
            Precision::F32,
        );
        assert_eq!(l.network, "W1");
        assert_eq!(l.error, None);
        assert!(l.total_ms.is_some_and(|t| t > 0.0) && l.lower_ms > 0.0);
    }

    #[test]
    fn errors_are_reported_not_timed() {
        let mut no_imports = |_: &str, _: &str| Err("no imports".to_string());
        let l = latency("bad.rule", "network {", &mut no_imports, 1, Precision::F32);
        assert!(l.error.is_some() && l.total_ms.is_none());
    }
}
