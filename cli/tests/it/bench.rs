use crate::{project, repo, ruleopt, TempDir, HOLE_NETWORK};

#[test]
fn w1_json_is_one_object() {
    let dir = TempDir::fresh();
    let run = ruleopt(
        dir.path(),
        &[
            "bench",
            "w1",
            "--mode",
            "fwd",
            "--n",
            "8",
            "--repeats",
            "2",
            "--json",
        ],
    );
    run.expect_code(0);
    assert_eq!(run.stdout.trim().lines().count(), 1, "{}", run.stdout);
    let r: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON object");
    assert_eq!(r["workload"], "w1");
    assert_eq!(r["mode"], "fwd");
    assert_eq!(
        (r["n"].as_u64(), r["steps"].as_u64()),
        (Some(8), Some(1000))
    );
    assert_eq!(
        (r["batch"].as_u64(), r["threads"].as_u64()),
        (Some(16), Some(2))
    );
    assert_eq!(r["times_s"].as_array().map(Vec::len), Some(2));
    for key in [
        "median_s",
        "min_s",
        "compile_s",
        "compile_total_s",
        "synapse_updates_per_s",
        "loss",
    ] {
        assert!(
            r[key].as_f64().is_some_and(|x| x.is_finite() && x > 0.0),
            "{key}: {r}"
        );
    }
    assert!(r["peak_rss_bytes"].as_u64().is_some_and(|b| b > 0), "{r}");
}

#[test]
fn w1_text_line_and_one_thread() {
    let dir = TempDir::fresh();
    let run = ruleopt(
        dir.path(),
        &[
            "bench",
            "w1",
            "--n",
            "4",
            "--repeats",
            "1",
            "--threads",
            "1",
        ],
    );
    run.expect_code(0);
    let line = run.stdout.trim();
    assert!(
        line.starts_with("w1 fwd N=4 B=16 T=1000 f32, episode-major, 1 thread:"),
        "{line}"
    );
    assert!(
        line.contains("synapse updates/s") && line.contains("loss"),
        "{line}"
    );
}

/// With the shared reference parameters and inputs, the loss is the JAX float32
/// reference's (`grads_N64_float32.json`: 1.3864508867263794).
#[test]
fn w1_params_reproduce_the_reference_loss() {
    let dir = TempDir::fresh();
    let params = repo().join("benchmarks/w1/params_N64.json");
    let params = params.to_str().expect("utf-8 path");
    let run = ruleopt(
        dir.path(),
        &[
            "bench",
            "w1",
            "--params",
            params,
            "--repeats",
            "1",
            "--json",
        ],
    );
    run.expect_code(0);
    let r: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(r["n"], 64, "N comes from the file");
    let loss = r["loss"].as_f64().expect("loss");
    let want = 1.386_450_886_726_379_4;
    assert!(((loss - want) / want).abs() < 1e-5, "loss {loss} vs {want}");
}

#[test]
fn w1_errors() {
    let dir = project();
    let run = ruleopt(
        dir.path(),
        &[
            "bench",
            "w1",
            "--n",
            "4",
            "--repeats",
            "1",
            "--grads-out",
            "g.json",
        ],
    );
    run.expect_code(2);
    assert!(run.stderr.contains("`--grads-out`"), "{}", run.stderr);
    let run = ruleopt(dir.path(), &["bench", "w1", "--params", "none.json"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("cannot read `none.json`"),
        "{}",
        run.stderr
    );
    dir.write("bad.json", "{\"N\": 3}");
    let run = ruleopt(dir.path(), &["bench", "w1", "--params", "bad.json"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("is not a W1 parameter file"),
        "{}",
        run.stderr
    );
    for args in [
        &["bench", "w2"][..],
        &["bench", "w1", "--n", "0"],
        &["bench", "w1", "--repeats", "0"],
        &["bench", "w1", "--mode", "fast"],
    ] {
        ruleopt(dir.path(), args).expect_code(2);
    }
}

#[test]
fn compile_latency_table() {
    let dir = project();
    dir.write("holey.rule", HOLE_NETWORK);
    let w1 = repo().join("rules/networks/w1.rule");
    let run = ruleopt(
        dir.path(),
        &[
            "bench",
            "compile",
            "net",
            "holey.rule",
            w1.to_str().expect("utf-8 path"),
            "--repeats",
            "2",
        ],
    );
    run.expect_code(0);
    let out = &run.stdout;
    assert!(out.contains("total (ms)"), "{out}");
    let row = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row {name} in\n{out}"))
            .to_string()
    };
    assert!(row("Small ").contains("net/small.rule"), "{out}");
    assert!(row("W1 ").contains("w1.rule"), "{out}");
    assert!(row("Holey ").contains("has no expression yet"), "{out}");
    let run = ruleopt(
        dir.path(),
        &[
            "bench",
            "compile",
            "net/small.rule",
            "--repeats",
            "1",
            "--json",
        ],
    );
    run.expect_code(0);
    let r: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(r[0]["network"], "Small");
    assert!(r[0]["total_ms"].as_f64().is_some_and(|t| t > 0.0), "{r}");
}

#[test]
fn compile_latency_defaults_to_the_corpus() {
    let run = ruleopt(&repo(), &["bench", "compile", "--repeats", "1"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("rules/networks/w1.rule"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("HoleNetwork"), "{}", run.stdout);
}

/// `--mode grad` times the gradients and writes them in the shared format.
#[test]
fn w1_gradients() {
    let dir = project();
    let run = ruleopt(
        dir.path(),
        &[
            "bench",
            "w1",
            "--mode",
            "grad",
            "--n",
            "8",
            "--repeats",
            "1",
            "--checkpoint",
            "7",
            "--json",
            "--grads-out",
            "g.json",
        ],
    );
    run.expect_code(0);
    let r: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(r["mode"], "grad");
    assert!(r["loss"].as_f64().expect("loss").is_finite());
    let g: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("g.json")).expect("g.json"))
            .expect("JSON");
    assert_eq!(g["N"], 8);
    assert_eq!(g["grads"]["W_rec"]["shape"], serde_json::json!([8, 8]));
    assert_eq!(g["grads"]["b_m"]["shape"], serde_json::json!([]));
    let data = g["grads"]["W_rec"]["data"].as_array().expect("data");
    assert!(data.iter().all(|x| x.as_f64().is_some_and(f64::is_finite)));
    assert!(
        data.iter().any(|x| x.as_f64() != Some(0.0)),
        "the gradient is not all zero"
    );
}

/// `--memory-budget` (by default 1 GiB) picks the checkpoint interval (at N = 8 the
/// smallest footprint's: its segments fit in any cache), or says that the budget is too
/// small; it conflicts with `--checkpoint`.
#[test]
fn w1_gradients_within_a_memory_budget() {
    let dir = project();
    let base = [
        "bench",
        "w1",
        "--mode",
        "grad",
        "--n",
        "8",
        "--repeats",
        "1",
    ];
    let with =
        |extra: &[&'static str]| -> Vec<&str> { base.iter().chain(extra).copied().collect() };
    for extra in [&["--memory-budget", "1GiB", "--json"][..], &["--json"][..]] {
        let run = ruleopt(dir.path(), &with(extra));
        run.expect_code(0);
        let r: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
        assert!(
            r["order"]
                .as_str()
                .expect("order")
                .contains("checkpoint every 28 steps"),
            "{}",
            r["order"]
        );
    }
    ruleopt(
        dir.path(),
        &with(&["--memory-budget", "1GiB", "--checkpoint", "5"]),
    )
    .expect_code(2);
    let run = ruleopt(dir.path(), &with(&["--memory-budget", "1KiB"]));
    run.expect_code(1);
    assert!(
        run.stderr.contains("more than the budget of 1024"),
        "{}",
        run.stderr
    );
    let run = ruleopt(
        dir.path(),
        &[
            "bench",
            "w1",
            "--mode",
            "grad",
            "--memory-budget",
            "1 parsec",
        ],
    );
    run.expect_code(2);
}
