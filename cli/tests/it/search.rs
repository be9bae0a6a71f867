//! `ruleopt search`: the bundled search end to end, its outputs, reproducibility across
//! thread counts, kill -9 and resume, memetic tuning, and bad input.

use crate::{ruleopt, TempDir, HOLE_NETWORK, MODELS};
use std::path::Path;

/// Short episodes of the bundled reward-driven task.
const SHORT: &str = r#"{"trials": 60}"#;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The arguments of `search` with the bundled rule and short episodes, plus `extra`.
fn search_args(extra: &[&str]) -> Vec<String> {
    [
        "search",
        "--task-options",
        SHORT,
        "--episodes",
        "2",
        "--hurdle-episodes",
        "1",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect()
}

/// Runs `search` with [`search_args`].
fn search(dir: &Path, extra: &[&str]) -> crate::Run {
    ruleopt(dir, &strs(&search_args(extra)))
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Log lines without their timings.
fn log_lines(path: &Path) -> Vec<String> {
    read(path)
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            let o = v.as_object_mut().expect("object");
            o.remove("seconds");
            o.remove("evals_per_second");
            v.to_string()
        })
        .collect()
}

/// The hall of fame of a summary, without timings.
fn hall(path: &Path) -> serde_json::Value {
    json(path)["hall_of_fame"].clone()
}

#[test]
fn the_bundled_search_writes_rules_that_run() {
    let dir = TempDir::fresh();
    let run = search(dir.path(), &["--generations", "4", "--out", "s"]);
    run.expect_code(0);
    assert!(run.stdout.contains("best rule (fitness"), "{}", run.stdout);
    assert!(run.stdout.contains("f(r, e) = "), "{}", run.stdout);
    let s = dir.path().join("s");
    for f in [
        "summary.md",
        "summary.json",
        "fitness.svg",
        "pareto.svg",
        "checkpoint.json",
    ] {
        assert!(s.join(f).exists(), "{f} missing");
    }
    assert_eq!(read(&s.join("log.jsonl")).lines().count(), 4);
    let summary = json(&s.join("summary.json"));
    assert_eq!(summary["task"], "reward-driven");
    let hof = summary["hall_of_fame"].as_array().expect("hall of fame");
    assert!(!hof.is_empty());
    // Best first; every rule of the hall of fame checks and runs where it is.
    for w in hof.windows(2) {
        assert!(w[0]["fitness"].as_f64() >= w[1]["fitness"].as_f64());
    }
    for r in hof {
        let file = r["file"].as_str().expect("a file");
        let text = read(&s.join(file));
        assert!(text.contains("// f(r, e) = "), "{text}");
        assert!(!text.contains("?f("), "{text}");
        ruleopt(&s, &["check", file]).expect_code(0);
        ruleopt(&s, &["simulate", file, "-T", "200"]).expect_code(0);
    }
    assert!(read(&s.join("summary.md")).contains("## Pareto front"));
}

#[test]
fn a_seed_gives_the_same_search_at_one_and_two_threads() {
    let dir = TempDir::fresh();
    for (t, out) in [("1", "one"), ("2", "two")] {
        search(
            dir.path(),
            &[
                "--generations",
                "5",
                "--threads",
                t,
                "--seed",
                "3",
                "--out",
                out,
            ],
        )
        .expect_code(0);
    }
    let p = |run: &str, f: &str| dir.path().join(run).join(f);
    assert_eq!(
        log_lines(&p("one", "log.jsonl")),
        log_lines(&p("two", "log.jsonl"))
    );
    assert_eq!(
        hall(&p("one", "summary.json")),
        hall(&p("two", "summary.json"))
    );
    for f in ["01.rule", "02.rule"] {
        assert_eq!(
            read(&p("one", &format!("hall-of-fame/{f}"))),
            read(&p("two", &format!("hall-of-fame/{f}")))
        );
    }
}

/// A search killed with SIGKILL mid-way and resumed ends as an uninterrupted one.
#[test]
fn kill_9_then_resume_equals_an_uninterrupted_search() {
    let dir = TempDir::fresh();
    let args = |out: &str| search_args(&["--generations", "30", "--seed", "1", "--out", out]);
    ruleopt(dir.path(), &strs(&args("whole"))).expect_code(0);
    let log = dir.path().join("killed/log.jsonl");
    let done_at_kill = crate::kill_once_logged(dir.path(), &args("killed"), &log, 3);
    assert!(
        (3..30).contains(&done_at_kill),
        "the search was not killed mid-way ({done_at_kill} generations logged)"
    );
    let mut resume = args("killed");
    resume.push("--resume".into());
    ruleopt(dir.path(), &strs(&resume)).expect_code(0);
    let p = |run: &str, f: &str| dir.path().join(run).join(f);
    assert_eq!(
        log_lines(&p("killed", "log.jsonl")),
        log_lines(&p("whole", "log.jsonl"))
    );
    assert_eq!(
        hall(&p("killed", "summary.json")),
        hall(&p("whole", "summary.json"))
    );
}

#[test]
fn memetic_tuning_writes_the_tuned_rule() {
    let dir = TempDir::fresh();
    let run = search(
        dir.path(),
        &[
            "--generations",
            "2",
            "--tune-iterations",
            "2",
            "--tune-batch",
            "2",
            "--lr",
            "0.05",
            "--out",
            "m",
        ],
    );
    run.expect_code(0);
    let s = dir.path().join("m");
    let summary = json(&s.join("summary.json"));
    let best = &summary["hall_of_fame"][0];
    let text = read(&s.join(best["file"].as_str().expect("file")));
    // The tuned learning rate is written as a literal override (eta starts at 0.5).
    assert!(text.contains("eta = "), "{text}");
    ruleopt(&s, &["check", best["file"].as_str().unwrap()]).expect_code(0);
    assert!(best["test_metric"].as_f64().is_some());
}

#[test]
fn bad_input_is_named() {
    let dir = TempDir::fresh();
    let r = search(dir.path(), &["--ops", "+,foo"]);
    r.expect_code(1);
    assert!(
        r.stderr.contains("`ops`") && r.stderr.contains("foo"),
        "{}",
        r.stderr
    );
    let r = search(dir.path(), &["--known", "g=r * e"]);
    r.expect_code(1);
    assert!(r.stderr.contains("no hole `?g`"), "{}", r.stderr);
    let r = search(dir.path(), &["--known", "f=r * q"]);
    r.expect_code(1);
    assert!(r.stderr.contains("unknown name `q`"), "{}", r.stderr);
    let r = search(dir.path(), &["--task", "nosuch"]);
    r.expect_code(1);
    assert!(r.stderr.contains("unknown task `nosuch`"), "{}", r.stderr);
    // A file needs a task; a file without holes has nothing to search.
    dir.write("models.rule", MODELS);
    dir.write("holey.rule", HOLE_NETWORK);
    let r = ruleopt(dir.path(), &["search", "holey.rule"]);
    r.expect_code(1);
    assert!(r.stderr.contains("--task"), "{}", r.stderr);
    dir.write(
        "plain.rule",
        &HOLE_NETWORK.replace("?f(pre.out, post.out, e)", "pre.out"),
    );
    let r = ruleopt(
        dir.path(),
        &["search", "plain.rule", "--task", "reward-driven"],
    );
    r.expect_code(1);
    assert!(r.stderr.contains("no holes"), "{}", r.stderr);
    // A rule that cannot run on the task is refused before the search starts.
    let r = ruleopt(
        &crate::repo(),
        &[
            "search",
            "rules/networks/hole_network.rule",
            "--task",
            "reward-driven",
        ],
    );
    r.expect_code(1);
    assert!(
        r.stderr.contains("even with its holes set to 0") && r.stderr.contains("50 input channels"),
        "{}",
        r.stderr
    );
    // A syntax error in the template is a diagnostic with a caret.
    dir.write("bad.rule", "network N { input x[2] }");
    let r = ruleopt(
        dir.path(),
        &["search", "bad.rule", "--task", "reward-driven"],
    );
    r.expect_code(1);
    assert!(r.stderr.contains("bad.rule:1:"), "{}", r.stderr);
    // An existing search is not overwritten.
    search(dir.path(), &["--generations", "1", "--out", "r"]).expect_code(0);
    let r = search(dir.path(), &["--generations", "1", "--out", "r"]);
    r.expect_code(1);
    assert!(r.stderr.contains("already there"), "{}", r.stderr);
    let r = search(
        dir.path(),
        &[
            "--generations",
            "2",
            "--out",
            "r",
            "--resume",
            "--seed",
            "4",
        ],
    );
    r.expect_code(1);
    assert!(r.stderr.contains("another search"), "{}", r.stderr);
}

/// The rediscovery benchmark finds the error-driven rule (Jordan et al. 2021) and
/// tabulates it; finished runs are kept.
#[test]
fn rediscovery_benchmark_finds_and_tabulates() {
    let dir = TempDir::fresh();
    let out = dir.path().join("rd");
    let out_s = out.display().to_string();
    let args = [
        "bench",
        "rediscover",
        "--task",
        "error-driven",
        "--seeds",
        "1",
        "--max-minutes",
        "5",
        "--out",
        out_s.as_str(),
    ];
    let run = ruleopt(&crate::repo(), &args);
    run.expect_code(0);
    assert!(
        run.stdout.contains("| error-driven | mu+lambda | 1 | 1 |"),
        "{}",
        run.stdout
    );
    let table = read(&out.join("RESULTS.md"));
    assert!(table.contains("2 of 6 runs"), "{table}");
    let summary = json(&out.join("error-driven/seed-0/summary.json"));
    assert_eq!(summary["stop"], "the known rule was found");
    // Run again: the finished run is read, not repeated.
    let before = read(&out.join("error-driven/seed-0/log.jsonl"));
    ruleopt(&crate::repo(), &args).expect_code(0);
    assert_eq!(before, read(&out.join("error-driven/seed-0/log.jsonl")));
}
