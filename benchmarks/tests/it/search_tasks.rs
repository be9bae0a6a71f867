//! The rediscovery tasks of `ruleopt search` (`reward-driven`, `error-driven`,
//! `oja-pca`) on their networks in `rules/search/`: with the hole filled by the known
//! rule (by replacing the hole's text, until search fills holes itself) each scores
//! clearly better on held-out episodes than the hole filled by zero (no plasticity) or
//! by the sign-flipped rule, and than chance.
//!
//! `cargo test -p benchmarks --release --test it -- --nocapture search_tasks` prints
//! the scores and the cost of one episode (forward only, compiled, one thread).

use benchmarks::tasks::by_name;
use search::train::{Score, TrainConfig, Trainer};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The network of `rules/search/{file}` with the hole's text `hole` replaced by `fill`.
fn network(file: &str, hole: &str, fill: &str) -> lang::ir::Module {
    let path = repo().join("rules/search").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(hole), "{file} has no `{hole}`");
    let text = text.replace(hole, &format!("({fill})"));
    let name = path.to_string_lossy().to_string();
    benchmarks::lower_text(&name, &text, None, &mut |importer, import| {
        let p = Path::new(importer)
            .parent()
            .unwrap_or(Path::new("."))
            .join(import);
        let p = p.canonicalize().map_err(|e| e.to_string())?;
        let text = std::fs::read_to_string(&p).map_err(|e| e.to_string())?;
        Ok((p.to_string_lossy().to_string(), text))
    })
    .unwrap_or_else(|e| panic!("{file} with {fill}: {e}"))
}

/// Held-out score of a filled network on `episodes` episodes, and the wall time of one
/// episode in ms (forward only, one thread); printed, as the tests' report.
fn score(
    task: &str,
    options: &Value,
    file: &str,
    hole: &str,
    fill: &str,
    episodes: usize,
) -> (Score, f64) {
    let m = network(file, hole, fill);
    let t = by_name(task, options).unwrap();
    let cfg = TrainConfig {
        batch: 1,
        seed: 1,
        ..TrainConfig::default()
    };
    let compile = Instant::now();
    let tr = Trainer::new(&m, &t, cfg).unwrap();
    let compile_ms = compile.elapsed().as_secs_f64() * 1e3;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    // Seeds no training iteration draws from; the time is the best of 3 runs (the
    // machine may be busy).
    let mut ms = f64::INFINITY;
    let mut s = Score::default();
    for _ in 0..3 {
        let start = Instant::now();
        s = pool
            .install(|| tr.evaluate(episodes, u64::MAX - 7))
            .unwrap();
        ms = ms.min(start.elapsed().as_secs_f64() * 1e3 / episodes as f64);
    }
    report(&format!(
        "{task:>14} {fill:>40}: metric {:>8.4} loss {:>9.4} ({ms:.1} ms/episode; compiled in {compile_ms:.0} ms)",
        s.metric, s.loss
    ));
    (s, ms)
}

#[allow(clippy::print_stdout)] // the scores and costs are what `--nocapture` reports
fn report(line: &str) {
    println!("{line}");
}

#[test]
fn reward_driven_known_rule_beats_zero_flipped_and_chance() {
    let (task, o, file, hole) = (
        "reward-driven",
        Value::Null,
        "reward_driven.rule",
        "?f(r, e)",
    );
    let known = score(task, &o, file, hole, "e * (r - 1)", 8).0;
    let zero = score(task, &o, file, hole, "0", 8).0;
    let flipped = score(task, &o, file, hole, "-e * (r - 1)", 8).0;
    // Chance is 0 (the module's tests: random answers).
    assert!(known.metric > 0.25, "known {}", known.metric);
    assert!(
        known.metric > zero.metric + 0.25,
        "{} vs zero {}",
        known.metric,
        zero.metric
    );
    assert!(
        known.metric > flipped.metric + 0.25,
        "{} vs flipped {}",
        known.metric,
        flipped.metric
    );
    // It learns: the last fifth of the trials earns more than the first.
    let n = known.curve.len();
    let fifth = |c: &[f64]| c.iter().sum::<f64>() / c.len() as f64;
    assert!(fifth(&known.curve[n - n / 5..]) > fifth(&known.curve[..n / 5]) + 0.2);
    assert!(known.loss < zero.loss && known.loss < flipped.loss);
}

#[test]
fn error_driven_known_rule_beats_zero_and_flipped() {
    let (task, o, file, hole) = (
        "error-driven",
        Value::Null,
        "error_driven.rule",
        "?f(v, post.out, sbar)",
    );
    let known = score(task, &o, file, hole, "sbar * (v - post.out)", 16).0;
    let zero = score(task, &o, file, hole, "0", 16).0;
    let flipped = score(task, &o, file, hole, "sbar * (post.out - v)", 16).0;
    // Lower is better; a diverging student scores more than any finite error.
    assert!(
        known.metric < 0.3 * zero.metric,
        "known {} vs zero {}",
        known.metric,
        zero.metric
    );
    assert!(
        flipped.metric > zero.metric,
        "flipped {} vs zero {}",
        flipped.metric,
        zero.metric
    );
    assert!(known.loss < zero.loss);
}

#[test]
fn oja_pca_known_rule_beats_zero_flipped_hebb_and_chance() {
    let (task, o, file, hole) = (
        "oja-pca",
        Value::Null,
        "oja_pca.rule",
        "?f(pre.out, post.out, w)",
    );
    let known = score(
        task,
        &o,
        file,
        hole,
        "post.out * (pre.out - post.out * w)",
        16,
    )
    .0;
    let zero = score(task, &o, file, hole, "0", 16).0;
    let flipped = score(
        task,
        &o,
        file,
        hole,
        "-post.out * (pre.out - post.out * w)",
        16,
    )
    .0;
    let hebb = score(task, &o, file, hole, "pre.out * post.out", 16).0;
    assert!(known.metric > 0.95, "known {}", known.metric);
    for (name, s) in [("zero", &zero), ("flipped", &flipped), ("hebb", &hebb)] {
        assert!(
            known.metric > s.metric + 0.5,
            "known {} vs {name} {}",
            known.metric,
            s.metric
        );
    }
    assert!(known.loss < zero.loss);
}

/// The loss of each task has a finite gradient in the learning rate (what the search
/// tunes by gradient), on the known rule, through whole episodes.
#[test]
fn the_losses_have_finite_gradients_through_the_episode() {
    for (task, file, hole, fill) in [
        (
            "reward-driven",
            "reward_driven.rule",
            "?f(r, e)",
            "e * (r - 1)",
        ),
        (
            "error-driven",
            "error_driven.rule",
            "?f(v, post.out, sbar)",
            "sbar * (v - post.out)",
        ),
        (
            "oja-pca",
            "oja_pca.rule",
            "?f(pre.out, post.out, w)",
            "post.out * (pre.out - post.out * w)",
        ),
    ] {
        let m = network(file, hole, fill);
        let t = by_name(task, &Value::Null).unwrap();
        let cfg = TrainConfig {
            batch: 2,
            seed: 1,
            ..TrainConfig::default()
        };
        let tr = Trainer::new(&m, &t, cfg).unwrap();
        let start = Instant::now();
        let (s, grads) = tr.gradient(0).unwrap();
        let ms = start.elapsed().as_secs_f64() * 1e3 / 2.0;
        report(&format!(
            "{task:>14}: loss and gradient (BPTT) {ms:.1} ms/episode (2 episodes, 2 threads)"
        ));
        assert!(s.loss.is_finite(), "{task}: loss {}", s.loss);
        let eta = tr
            .learned()
            .params
            .iter()
            .position(|(p, _)| m.vars[*p].name.ends_with(".eta"))
            .unwrap_or_else(|| panic!("{task}: no eta"));
        let g = grads[eta][0];
        assert!(g.is_finite() && g != 0.0, "{task}: dloss/deta = {g}");
    }
}
