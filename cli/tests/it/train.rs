//! `ruleopt train`: a run end to end, its outputs, kill -9 and resume, and bad input.

use crate::{ruleopt, TempDir};
use std::path::Path;

/// A directory holding W1 with `n` recurrent neurons as `w1.rule`.
fn project(n: usize) -> TempDir {
    let dir = TempDir::fresh();
    dir.write("w1.rule", &benchmarks::w1::source(n));
    dir
}

const FAST: &str = r#"{"steps": 100, "contrast": 0.8, "last": 20}"#;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_run_writes_its_log_checkpoint_and_learned_rule() {
    let dir = project(8);
    let run = ruleopt(
        dir.path(),
        &[
            "train",
            "w1.rule",
            "--task",
            "w1",
            "--task-options",
            FAST,
            "--iterations",
            "4",
            "-B",
            "4",
            "--lr",
            "0.01",
            "--out",
            "run",
        ],
    );
    run.expect_code(0);
    assert!(run.stdout.contains("over 4 iterations"), "{}", run.stdout);
    assert!(run.stdout.contains("wrec.eta = "), "{}", run.stdout);
    let out = dir.path().join("run");
    let log = read(&out.join("log.jsonl"));
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 4);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["iteration"], i);
        assert!(l["loss"].as_f64().is_some_and(f64::is_finite), "{l}");
        assert!(
            l["accuracy"]
                .as_f64()
                .is_some_and(|a| (0.0..=1.0).contains(&a)),
            "{l}"
        );
    }
    assert_eq!(json(&out.join("checkpoint.json"))["next_iteration"], 4);
    assert!(read(&out.join("training.svg")).contains("<svg"));
    // The learned rule runs anywhere: check it and simulate it from another directory.
    let learned = read(&out.join("learned.rule"));
    assert!(
        learned.starts_with("// Learned by `ruleopt train w1.rule --task w1`"),
        "{learned}"
    );
    assert!(learned.contains("W_rec from \"learned.json\""), "{learned}");
    ruleopt(&out, &["check", "learned.rule"]).expect_code(0);
    ruleopt(dir.path(), &["simulate", "run/learned.rule", "-T", "20"]).expect_code(0);
    // Its values are the checkpoint's, exactly.
    let values = json(&out.join("learned.json"));
    let ck = json(&out.join("checkpoint.json"));
    for p in ck["params"].as_array().expect("params") {
        let name = p["name"].as_str().expect("name");
        assert_eq!(values["params"][name]["data"], p["value"], "{name}");
    }
    let eta = values["params"]["wrec.eta"]["data"][0]
        .as_f64()
        .expect("eta");
    assert!(learned.contains(&format!("eta = {eta}")), "{learned}");
    // Training it again from the learned rule starts where this run ended.
    let again = ruleopt(
        &out,
        &[
            "train",
            "learned.rule",
            "--task-options",
            FAST,
            "--iterations",
            "1",
            "-B",
            "4",
            "--out",
            "again",
        ],
    );
    again.expect_code(0);
    let first = json(&out.join("again/checkpoint.json"));
    assert!(first["run"]["network"] == "W1");
}

/// The log line of each iteration, without its timing.
fn log_lines(path: &Path) -> Vec<String> {
    read(path)
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            v.as_object_mut().expect("object").remove("seconds");
            v.to_string()
        })
        .collect()
}

/// A run killed with SIGKILL mid-way and resumed ends with exactly the parameters and
/// log of an uninterrupted run.
#[test]
fn kill_9_then_resume_equals_an_uninterrupted_run() {
    let dir = project(16);
    let args = |out: &str| -> Vec<String> {
        [
            "train",
            "w1.rule",
            "--task-options",
            r#"{"steps": 200, "contrast": 0.8, "last": 20}"#,
            "--iterations",
            "40",
            "-B",
            "4",
            "--lr",
            "0.01",
            "--out",
            out,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    ruleopt(
        dir.path(),
        &args("whole").iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .expect_code(0);
    let log = dir.path().join("killed/log.jsonl");
    let done_at_kill = crate::kill_once_logged(dir.path(), &args("killed"), &log, 3);
    assert!(
        (3..40).contains(&done_at_kill),
        "the run was not killed mid-way ({done_at_kill} iterations logged)"
    );
    let mut resume = args("killed");
    resume.push("--resume".into());
    let run = ruleopt(
        dir.path(),
        &resume.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    run.expect_code(0);
    let p = |run: &str, f: &str| dir.path().join(run).join(f);
    assert!(
        read(&p("killed", "learned.json")) == read(&p("whole", "learned.json")),
        "the resumed run learned other values"
    );
    assert_eq!(
        log_lines(&p("killed", "log.jsonl")),
        log_lines(&p("whole", "log.jsonl"))
    );
}

#[test]
fn bad_input_is_named() {
    let dir = project(8);
    let train = |extra: &[&str]| {
        let mut a = vec![
            "train",
            "w1.rule",
            "--iterations",
            "1",
            "-B",
            "2",
            "--task-options",
            FAST,
        ];
        a.extend_from_slice(extra);
        ruleopt(dir.path(), &a)
    };
    let r = train(&["--task", "w2"]);
    r.expect_code(1);
    assert!(r.stderr.contains("unknown task `w2`"), "{}", r.stderr);
    let r = ruleopt(
        dir.path(),
        &["train", "w1.rule", "--task-options", r#"{"stepz": 3}"#],
    );
    r.expect_code(1);
    assert!(r.stderr.contains("unknown option `stepz`"), "{}", r.stderr);
    let r = ruleopt(
        dir.path(),
        &["train", "w1.rule", "--task-options", "{steps"],
    );
    r.expect_code(1);
    assert!(
        r.stderr.contains("--task-options is not valid JSON"),
        "{}",
        r.stderr
    );
    let r = train(&["--lr=-1"]);
    r.expect_code(1);
    assert!(r.stderr.contains("`lr`"), "{}", r.stderr);
    // An existing run is not overwritten; resuming it with other settings is refused.
    train(&["--out", "r"]).expect_code(0);
    let r = train(&["--out", "r"]);
    r.expect_code(1);
    assert!(r.stderr.contains("already there"), "{}", r.stderr);
    let r = train(&["--out", "r", "--resume", "--seed", "5"]);
    r.expect_code(1);
    assert!(r.stderr.contains("belongs to another run"), "{}", r.stderr);
    // A network without `learn` parameters has nothing to train.
    dir.write(
        "fixed.rule",
        &benchmarks::w1::source(8).replace("learn ", "param "),
    );
    let r = ruleopt(dir.path(), &["train", "fixed.rule", "--task-options", FAST]);
    r.expect_code(1);
    assert!(r.stderr.contains("no `learn` parameters"), "{}", r.stderr);
    // A syntax error in the network is a diagnostic with a caret.
    dir.write("bad.rule", "network N { input x[2] }");
    let r = ruleopt(dir.path(), &["train", "bad.rule"]);
    r.expect_code(1);
    assert!(r.stderr.contains("bad.rule:1:"), "{}", r.stderr);
}

/// A closed-loop task: cue-reward on its network, with held-out evaluation and the
/// within-episode curve.
#[test]
fn cue_reward_trains_and_is_evaluated_on_held_out_episodes() {
    let dir = TempDir::fresh();
    let net = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/networks/cue_reward_network.rule"),
    )
    .expect("the network")
    .replace("LIF[100]", "LIF[12]")
    .replace("import \"../", "import \"rules/");
    for f in [
        "neurons/lif.rule",
        "neurons/leaky_readout.rule",
        "synapses/static.rule",
        "synapses/backpropamine.rule",
    ] {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../rules")
                .join(f),
        )
        .expect("a corpus file");
        dir.write(&format!("rules/{f}"), &text);
    }
    dir.write("net.rule", &net);
    let run = ruleopt(
        dir.path(),
        &[
            "train",
            "net.rule",
            "--task",
            "cue-reward",
            "--task-options",
            r#"{"trials": 4, "window": 5}"#,
            "--iterations",
            "2",
            "-B",
            "3",
            "--eval-episodes",
            "5",
            "--out",
            "cr",
        ],
    );
    run.expect_code(0);
    assert!(
        run.stdout.contains("held-out (5 episodes): loss"),
        "{}",
        run.stdout
    );
    let eval = json(&dir.path().join("cr/eval.json"));
    assert_eq!(eval["episodes"], 5);
    assert_eq!(eval["trial_rewards"].as_array().expect("curve").len(), 4);
    assert!(
        eval["reward"]
            .as_f64()
            .is_some_and(|r| (-1.0..=1.0).contains(&r)),
        "{eval}"
    );
    let log = read(&dir.path().join("cr/log.jsonl"));
    assert!(log.contains("\"trial_rewards\""), "{log}");
    assert!(read(&dir.path().join("cr/training.svg")).contains("trial within a held-out episode"));
    // The learned rule is self-contained: it checks without the imported files.
    ruleopt(&dir.path().join("cr"), &["check", "learned.rule"]).expect_code(0);
}

/// `ruleopt train` resizes a network whose input or readout does not fit the task (a
/// comparison network has 40 inputs; t-maze drives 20), as `ruleopt compare` does.
#[test]
fn train_resizes_a_network_to_the_task() {
    let dir = TempDir::fresh();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let file = repo.join("rules/comparison/backpropamine_readout.rule");
    let run = ruleopt(
        dir.path(),
        &[
            "train",
            &file.display().to_string(),
            "--task",
            "t-maze",
            "--task-options",
            r#"{"trials": 3, "window": 4}"#,
            "--iterations",
            "1",
            "-B",
            "2",
            "--eval-episodes",
            "2",
            "--out",
            "tm",
        ],
    );
    run.expect_code(0);
    assert!(
        run.stderr.contains(
            "resized `BackpropamineReadout` for task t-maze: input `x` 40 -> 20 channels"
        ),
        "{}",
        run.stderr
    );
    let learned = read(&dir.path().join("tm/learned.rule"));
    assert!(learned.contains("input x[20];"), "{learned}");
    ruleopt(&dir.path().join("tm"), &["check", "learned.rule"]).expect_code(0);
}

/// `ruleopt compare`: networks resized to each task, runs kept and resumed, one table
/// and two plots per task.
#[test]
fn compare_tabulates_networks_on_tasks_and_keeps_finished_runs() {
    let dir = TempDir::fresh();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let args = |iterations: &str| -> Vec<String> {
        [
            repo.join("rules/comparison/lif_static.rule")
                .display()
                .to_string(),
            repo.join("rules/comparison/backpropamine.rule")
                .display()
                .to_string(),
            "--task".into(),
            "t-maze".into(),
            "--task-options".into(),
            r#"t-maze={"trials": 4, "window": 4}"#.into(),
            "--seeds".into(),
            "2".into(),
            "--iterations".into(),
            iterations.into(),
            "-B".into(),
            "2".into(),
            "--eval-episodes".into(),
            "2".into(),
            "--out".into(),
            "cmp".into(),
        ]
        .into_iter()
        .collect()
    };
    let run = |extra: &str| {
        let mut a = vec!["compare".to_string()];
        a.extend(args(extra));
        ruleopt(
            dir.path(),
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };
    let first = run("2");
    first.expect_code(0);
    let results = read(&dir.path().join("cmp/RESULTS.md"));
    assert!(results.contains("## t-maze"), "{results}");
    for net in ["lif_static", "backpropamine"] {
        assert!(results.contains(&format!("| {net} | ")), "{results}");
        let trained = read(
            &dir.path()
                .join(format!("cmp/t-maze/{net}/seed-1/network.rule")),
        );
        // t-maze drives 20 channels: the network's 40 inputs were resized.
        assert!(trained.contains("input x[20];"), "{trained}");
        assert!(dir
            .path()
            .join(format!("cmp/t-maze/{net}/seed-0/eval.json"))
            .exists());
    }
    assert!(read(&dir.path().join("cmp/t-maze-training.svg")).contains("<svg"));
    assert!(read(&dir.path().join("cmp/t-maze-within-episode.svg")).contains("lif_static"));
    // Again: every run is kept, none retrained.
    let again = run("2");
    again.expect_code(0);
    assert_eq!(
        again.stderr.matches("done before: kept").count(),
        4,
        "{}",
        again.stderr
    );
    // A run another process is training (it holds the run's lock) is skipped and
    // reported as not finished; the others resume from their checkpoints.
    let held = std::fs::File::open(dir.path().join("cmp/t-maze/lif_static/seed-0/.lock")).unwrap();
    held.try_lock().unwrap();
    let more = run("3");
    more.expect_code(0);
    assert!(
        more.stderr
            .contains("being trained by another process: skipped"),
        "{}",
        more.stderr
    );
    assert!(
        read(&dir.path().join("cmp/RESULTS.md"))
            .contains("Not finished (1 of 4 runs): lif_static (seed 0)."),
        "{}",
        read(&dir.path().join("cmp/RESULTS.md"))
    );
    let log = |seed: u32| {
        read(
            &dir.path()
                .join(format!("cmp/t-maze/lif_static/seed-{seed}/log.jsonl")),
        )
    };
    assert_eq!(log(0).lines().count(), 2);
    assert_eq!(log(1).lines().count(), 3);
    // Released: the next `compare` trains it.
    drop(held);
    run("3").expect_code(0);
    assert_eq!(log(0).lines().count(), 3);
    // A bad option names the task.
    let bad = ruleopt(
        dir.path(),
        &[
            "compare",
            "--task",
            "t-maze",
            "--task-options",
            "t-maze={\"trails\": 3}",
        ],
    );
    bad.expect_code(1);
    assert!(
        bad.stderr.contains("unknown option `trails`"),
        "{}",
        bad.stderr
    );
}

/// A network whose readout overflows f32: the loss is not finite at every iteration.
const BOOM: &str = "synapse S { learn w[synapse] ~ normal(0, 1); weight = w; }\n\
     neuron Boom { input I; state y = 0; y = exp(1000 * I); output y; }\n\
     network Boom { dt = 1 ms; input x[40]; signal reward; population out: Boom[2];\n\
     projection p: x -> out with S(); readout out.y; }\n";

/// An iteration whose loss or gradient is not finite makes no update and is logged as
/// skipped (`null` for the values); more than `--max-skips` in a row stop the run, and
/// a run with skipped iterations resumes.
#[test]
fn iterations_that_are_not_finite_are_skipped_up_to_a_limit() {
    let dir = TempDir::fresh();
    std::fs::write(dir.path().join("boom.rule"), BOOM).unwrap();
    let train = |out: &str, iterations: &str, skips: &str, resume: bool| {
        let mut a = vec![
            "train",
            "boom.rule",
            "--task",
            "t-maze",
            "--task-options",
            r#"{"trials": 2, "window": 3}"#,
            "--iterations",
            iterations,
            "-B",
            "1",
            "--eval-episodes",
            "1",
            "--max-skips",
            skips,
            "--out",
            out,
        ];
        if resume {
            a.push("--resume");
        }
        ruleopt(dir.path(), &a)
    };
    let ok = train("a", "2", "3", false);
    ok.expect_code(0);
    let log = read(&dir.path().join("a/log.jsonl"));
    assert_eq!(log.lines().count(), 2, "{log}");
    for line in log.lines() {
        assert!(line.contains(r#""skipped":true"#), "{line}");
        assert!(line.contains(r#""loss":null"#), "{line}");
    }
    // Resumed: the skipped iterations are read back, and the fourth in a row is too many.
    let more = train("a", "5", "3", true);
    more.expect_code(1);
    assert!(
        more.stderr
            .contains("iteration 3: the loss or its gradient is not finite")
            && more.stderr.contains("(4 iterations in a row)"),
        "{}",
        more.stderr
    );
    assert_eq!(read(&dir.path().join("a/log.jsonl")).lines().count(), 3);
    // No skips allowed: the first fails.
    let strict = train("b", "2", "0", false);
    strict.expect_code(1);
    assert!(
        strict
            .stderr
            .contains("iteration 0: the loss or its gradient is not finite")
            && !strict.stderr.contains("in a row"),
        "{}",
        strict.stderr
    );
}

/// `ruleopt compare`: a run whose training fails is reported with its reason and kept
/// failed while the others go on; `--report-only` trains nothing and lists what has not
/// finished.
#[test]
fn compare_records_failed_runs_and_reports_without_training() {
    let dir = TempDir::fresh();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::write(dir.path().join("boom.rule"), BOOM).unwrap();
    let lif = repo.join("rules/comparison/lif_static.rule");
    let hebb = repo.join("rules/comparison/hebb.rule");
    let args = |nets: &[&str], extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = vec!["compare".into()];
        a.extend(nets.iter().map(|s| s.to_string()));
        a.extend(
            [
                "--task",
                "t-maze",
                "--task-options",
                r#"t-maze={"trials": 4, "window": 4}"#,
                "--seeds",
                "1",
                "--iterations",
                "2",
                "-B",
                "2",
                "--eval-episodes",
                "2",
                "--max-skips",
                "0",
                "--out",
                "cmp",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |a: Vec<String>| {
        ruleopt(
            dir.path(),
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };
    let first = run(args(&["boom.rule", &lif.display().to_string()], &[]));
    first.expect_code(0);
    let results = read(&dir.path().join("cmp/RESULTS.md"));
    assert!(results.contains("| lif_static | "), "{results}");
    // In the summary as failed, not in the task's table.
    assert!(results.contains("| boom | failed 1 |"), "{results}");
    assert_eq!(results.matches("| boom | ").count(), 1, "{results}");
    assert!(
        results.contains("Failed in training (1 run;")
            && results.contains("- boom seed 0: ")
            && results.contains("not finite"),
        "{results}"
    );
    assert!(dir
        .path()
        .join("cmp/t-maze/boom/seed-0/failed.txt")
        .exists());
    // A third network that has not run: listed, not trained; the others read back.
    let report = run(args(
        &[
            "boom.rule",
            &lif.display().to_string(),
            &hebb.display().to_string(),
        ],
        &["--report-only", "--report", "rep"],
    ));
    report.expect_code(0);
    assert!(read(&dir.path().join("rep/t-maze-training.svg")).contains("lif_static"));
    let results = read(&dir.path().join("rep/RESULTS.md"));
    assert!(
        results.contains("![t-maze: meta-training](t-maze-training.svg)"),
        "{results}"
    );
    assert!(
        results.contains("Not finished (1 of 3 runs): hebb (seed 0)."),
        "{results}"
    );
    assert!(results.contains("| lif_static | "), "{results}");
    assert!(!dir.path().join("cmp/t-maze/hebb").exists());
    assert!(!report.stderr.contains("training `"), "{}", report.stderr);
}

/// Every comparison network trains on every task of the online suite (shortened
/// episodes, one iteration), so that the long comparison cannot stop on a network that
/// does not fit a task: `compare` reports no failed and no missing run.
#[test]
fn every_comparison_network_trains_on_every_online_task() {
    let dir = TempDir::fresh();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let short = [
        ("cue-reward", r#"{"trials": 2, "window": 3}"#),
        ("t-maze", r#"{"trials": 2, "window": 3}"#),
        (
            "evidence",
            r#"{"trials": 1, "cues": 1, "cue": 3, "gap": 1, "delay": 2, "recall": 3, "feedback": 2}"#,
        ),
        (
            "evidence-reversal",
            r#"{"trials": 2, "cues": 1, "cue": 3, "gap": 1, "delay": 2, "recall": 3, "feedback": 2}"#,
        ),
        ("one-shot", r#"{"ways": 2, "queries": 2, "window": 3}"#),
        (
            "regression",
            r#"{"examples": 2, "queries": 2, "window": 3}"#,
        ),
    ];
    let mut a: Vec<String> = vec![
        "compare".into(),
        repo.join("rules/comparison").display().to_string(),
    ];
    for (task, options) in short {
        a.extend(["--task".into(), task.to_string()]);
        a.extend(["--task-options".into(), format!("{task}={options}")]);
    }
    a.extend(
        [
            "--seeds",
            "1",
            "--iterations",
            "1",
            "-B",
            "1",
            "--eval-episodes",
            "1",
            "--out",
            "cmp",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let run = ruleopt(
        dir.path(),
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    run.expect_code(0);
    let results = read(&dir.path().join("cmp/RESULTS.md"));
    assert!(!results.contains("Failed"), "{results}");
    assert!(!results.contains("Not finished"), "{results}");
    let networks = std::fs::read_dir(repo.join("rules/comparison"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "rule")
        })
        .count();
    assert!(networks >= 10, "{networks}");
    for (task, _) in short {
        let section = &results[results.find(&format!("## {task}\n")).unwrap()..];
        let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
        assert_eq!(
            section.matches(" | 1 | 1 | ").count(),
            networks,
            "{task}: {section}"
        );
    }
}

/// `--max-minutes` stops a run early, checkpointed; `--resume` finishes it.
#[test]
fn a_time_budget_stops_a_run_that_resume_finishes() {
    let dir = project(8);
    let args = [
        "train",
        "w1.rule",
        "--task-options",
        FAST,
        "--iterations",
        "50",
        "-B",
        "2",
        "--out",
        "r",
    ];
    let mut first = args.to_vec();
    first.extend(["--max-minutes", "0.00001"]);
    let run = ruleopt(dir.path(), &first);
    run.expect_code(0);
    assert!(
        run.stderr
            .contains("stopped at the time budget after 1 of 50"),
        "{}",
        run.stderr
    );
    assert!(dir.path().join("r/learned.rule").exists());
    let mut again = args.to_vec();
    again.push("--resume");
    ruleopt(dir.path(), &again).expect_code(0);
    assert_eq!(read(&dir.path().join("r/log.jsonl")).lines().count(), 50);
}
