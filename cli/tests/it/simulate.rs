use crate::{project, ruleopt, TempDir, HOLE_NETWORK};

#[test]
fn default_network_prints_a_rate_table() {
    let dir = TempDir::fresh();
    let run = ruleopt(dir.path(), &["simulate", "-T", "200"]);
    run.expect_code(0);
    assert!(run.stdout.contains("backend jit f32"), "{}", run.stdout);
    assert!(run.stdout.contains("rate (Hz)"), "{}", run.stdout);
    assert!(run.stdout.contains("(input)"), "{}", run.stdout);
}

#[test]
fn writes_json_and_svg() {
    let dir = project();
    let args = [
        "simulate",
        "net/small.rule",
        "-T",
        "100",
        "-B",
        "2",
        "--seed",
        "7",
    ];
    let run = ruleopt(
        dir.path(),
        &[
            &args[..],
            &["--record", "rec.v", "--out", "x.json", "--raster", "x.svg"],
        ]
        .concat(),
    );
    run.expect_code(0);
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("x.json")).expect("x.json written"),
    )
    .expect("valid JSON");
    assert_eq!(json["network"], "Small");
    assert_eq!(json["steps"], 100);
    assert_eq!(json["batch"], 2);
    assert_eq!(json["seed"], 7);
    assert_eq!(json["dt_ms"], 1.0);
    let pops = json["populations"].as_array().expect("populations");
    let x = pops
        .iter()
        .find(|p| p["name"] == "x")
        .expect("input population x");
    assert_eq!(x["size"], 10);
    let spikes = x["spikes"].as_array().expect("spikes");
    assert!(
        !spikes.is_empty(),
        "20 Hz over 10 channels, 2 episodes, 100 ms gives spikes"
    );
    for s in spikes {
        let s = s.as_array().expect("[step, episode, neuron]");
        assert!(s[0].as_u64().expect("step") < 100 && s[1].as_u64().expect("episode") < 2);
        assert!(s[2].as_u64().expect("neuron") < 10);
    }
    let rate = x["rate_hz"].as_f64().expect("rate");
    assert!((rate - spikes.len() as f64 / (10.0 * 2.0 * 0.1)).abs() < 1e-9);
    let v = json["records"]["rec.v"]
        .as_array()
        .expect("record of rec.v");
    assert_eq!(v.len(), 100);
    assert_eq!(v[0].as_array().expect("values").len(), 2 * 5);
    let svg = std::fs::read_to_string(dir.path().join("x.svg")).expect("x.svg written");
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(100)]);
    assert!(
        svg.contains(">\nrec\n<") || svg.contains(">rec<"),
        "band label"
    );
}

#[test]
fn same_seed_same_run() {
    let dir = project();
    let args = [
        "simulate",
        "net/small.rule",
        "-T",
        "50",
        "--rate",
        "x=100 Hz",
        "--signal",
        "reward=1",
    ];
    ruleopt(dir.path(), &[&args[..], &["--out", "a.json"]].concat()).expect_code(0);
    ruleopt(dir.path(), &[&args[..], &["--out", "b.json"]].concat()).expect_code(0);
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).expect("json written");
    assert_eq!(read("a.json"), read("b.json"));
}

#[test]
fn unknown_record_var_is_an_error_with_a_suggestion() {
    let dir = project();
    let run = ruleopt(
        dir.path(),
        &[
            "simulate",
            "net/small.rule",
            "-T",
            "10",
            "--record",
            "rec.vv",
        ],
    );
    run.expect_code(1);
    assert!(
        run.stderr.contains("unknown variable `rec.vv`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did you mean `rec.v`?"),
        "{}",
        run.stderr
    );
    let default = ruleopt(
        dir.path(),
        &["simulate", "-T", "10", "--record", "no.such_var"],
    );
    default.expect_code(1);
    assert!(
        default.stderr.contains("unknown variable `no.such_var`"),
        "{}",
        default.stderr
    );
}

#[test]
fn bad_rate_and_signal_names_are_errors() {
    let dir = project();
    let run = ruleopt(
        dir.path(),
        &["simulate", "net/small.rule", "-T", "10", "--rate", "y=10"],
    );
    run.expect_code(1);
    assert!(
        run.stderr.contains("unknown input population `y`"),
        "{}",
        run.stderr
    );
    let run = ruleopt(
        dir.path(),
        &[
            "simulate",
            "net/small.rule",
            "-T",
            "10",
            "--signal",
            "rewad=1",
        ],
    );
    run.expect_code(1);
    assert!(
        run.stderr.contains("did you mean `reward`?"),
        "{}",
        run.stderr
    );
    let run = ruleopt(
        dir.path(),
        &["simulate", "net/small.rule", "-T", "10", "--rate", "x=5000"],
    );
    run.expect_code(1);
    assert!(run.stderr.contains("too high"), "{}", run.stderr);
}

#[test]
fn bad_flag_values_are_usage_errors() {
    let dir = project();
    for args in [
        &["simulate", "-T", "0"][..],
        &["simulate", "-B", "-1"],
        &["simulate", "--rate", "x=fast"],
        &["simulate", "--rate", "x"],
        &["simulate", "--signal", "reward=zero"],
        &["simulate", "--steps", "many"],
    ] {
        ruleopt(dir.path(), args).expect_code(2);
    }
}

#[test]
fn missing_file_and_bad_output_path_are_errors() {
    let dir = project();
    let run = ruleopt(dir.path(), &["simulate", "gone.rule"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("cannot read `gone.rule`"),
        "{}",
        run.stderr
    );
    let run = ruleopt(
        dir.path(),
        &[
            "simulate",
            "net/small.rule",
            "-T",
            "5",
            "--out",
            "no/such/dir/x.json",
        ],
    );
    run.expect_code(1);
    assert!(
        run.stderr.contains("cannot write `no/such/dir/x.json`"),
        "{}",
        run.stderr
    );
}

/// The populations of a `--out` file (spikes, rates, mean outputs).
fn populations(dir: &TempDir, file: &str) -> serde_json::Value {
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(file)).expect("json written"),
    )
    .expect("valid JSON");
    json["populations"].clone()
}

#[test]
fn jit_in_f64_gives_the_interpreters_spikes() {
    let dir = project();
    // A strong input so that rec spikes often.
    let args = [
        "simulate",
        "net/small.rule",
        "-T",
        "300",
        "-B",
        "3",
        "--seed",
        "5",
        "--rate",
        "x=200Hz",
    ];
    let interp = ruleopt(
        dir.path(),
        &[&args[..], &["--backend", "interp", "--out", "i.json"]].concat(),
    );
    interp.expect_code(0);
    assert!(
        interp.stdout.contains("backend interp"),
        "{}",
        interp.stdout
    );
    let jit = ruleopt(
        dir.path(),
        &[
            &args[..],
            &["--backend", "jit", "--precision", "f64", "--out", "j.json"],
        ]
        .concat(),
    );
    jit.expect_code(0);
    assert!(jit.stdout.contains("backend jit f64"), "{}", jit.stdout);
    let (i, j) = (populations(&dir, "i.json"), populations(&dir, "j.json"));
    let rec = i
        .as_array()
        .expect("populations")
        .iter()
        .find(|p| p["name"] == "rec")
        .expect("rec");
    assert!(
        rec["spikes"].as_array().is_some_and(|s| s.len() > 10),
        "rec spikes: {rec}"
    );
    assert_eq!(i, j, "same spikes and rates");
    // The default (f32) runs too, and so does the bundled network on both back ends.
    ruleopt(dir.path(), &args).expect_code(0);
    ruleopt(dir.path(), &["simulate", "-T", "50", "--backend", "interp"]).expect_code(0);
}

#[test]
fn a_network_with_a_hole_is_a_clean_error() {
    let dir = project();
    dir.write("holey.rule", HOLE_NETWORK);
    let run = ruleopt(dir.path(), &["simulate", "holey.rule", "-T", "10"]);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("cannot compile the network: the hole `?f` has no expression yet"),
        "{}",
        run.stderr
    );
    let run = ruleopt(
        dir.path(),
        &["simulate", "holey.rule", "-T", "10", "--backend", "interp"],
    );
    run.expect_code(1);
    assert!(run.stderr.contains("hole `?f`"), "{}", run.stderr);
}

#[test]
fn bad_backend_flags_are_usage_errors() {
    let dir = project();
    for args in [
        &["simulate", "--backend", "gpu"][..],
        &["simulate", "--precision", "f16"],
    ] {
        ruleopt(dir.path(), args).expect_code(2);
    }
}

/// `--task`: the network runs the task's closed-loop episodes (the training's forward
/// pass), resized to the task; the recordings have the task's steps and one row of
/// `batch x size` values per step; the same seed gives the same run, another seed
/// other episodes; Poisson-only flags and parameters are refused.
#[test]
fn on_a_task_records_the_episodes_and_prints_the_metric() {
    let dir = TempDir::fresh();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let net = repo.join("rules/comparison/backpropamine_readout.rule");
    let net = net.display().to_string();
    let run = |seed: &str, out: &str| {
        ruleopt(
            dir.path(),
            &[
                "simulate",
                &net,
                "--task",
                "t-maze",
                "--task-options",
                r#"{"trials": 4, "window": 5}"#,
                "-B",
                "3",
                "--seed",
                seed,
                "--record",
                "out.y",
                "--record",
                "ro.E",
                "--out",
                out,
            ],
        )
    };
    let first = run("1", "a.json");
    first.expect_code(0);
    assert!(
        first
            .stderr
            .contains("resized `BackpropamineReadout` for task t-maze"),
        "{}",
        first.stderr
    );
    assert!(
        first.stdout.contains("task t-maze: reward "),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains("(mean over 3 episodes)"),
        "{}",
        first.stdout
    );
    let a = std::fs::read_to_string(dir.path().join("a.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&a).unwrap();
    let steps = json["steps"].as_u64().unwrap() as usize;
    // 4 trials of 4 windows of 5 steps.
    assert_eq!(steps, 80, "{json}");
    let y = json["records"]["out.y"].as_array().unwrap();
    assert_eq!(y.len(), steps);
    assert_eq!(y[0].as_array().unwrap().len(), 3 * 2);
    let e = json["records"]["ro.E"].as_array().unwrap();
    assert_eq!(e[steps - 1].as_array().unwrap().len(), 3 * 2 * 100);
    let x = &json["populations"][0];
    assert_eq!(x["name"], "x");
    assert!(!x["spikes"].as_array().unwrap().is_empty(), "{x}");
    // Deterministic; another seed draws other episodes.
    run("1", "b.json").expect_code(0);
    assert_eq!(
        a,
        std::fs::read_to_string(dir.path().join("b.json")).unwrap()
    );
    run("2", "c.json").expect_code(0);
    assert_ne!(
        a,
        std::fs::read_to_string(dir.path().join("c.json")).unwrap()
    );
    // A parameter is not recorded per step; Poisson flags do not go with a task.
    let param = ruleopt(
        dir.path(),
        &["simulate", &net, "--task", "t-maze", "--record", "ro.eta"],
    );
    param.expect_code(1);
    assert!(
        param.stderr.contains(
            "`ro.eta` is a parameter (the same at every step): only states and inputs are recorded per step"
        ),
        "{}",
        param.stderr
    );
    for flag in [
        &["-T", "10"][..],
        &["--rate", "x=5"],
        &["--backend", "interp"],
    ] {
        let bad = ruleopt(
            dir.path(),
            &[&["simulate", net.as_str(), "--task", "t-maze"][..], flag].concat(),
        );
        bad.expect_code(2);
        assert!(bad.stderr.contains("cannot be used with"), "{}", bad.stderr);
    }
}

/// A project with the reward-delta networks and the files they import, as in `rules/`.
fn reward_delta_project() -> TempDir {
    let dir = TempDir::fresh();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    for f in [
        "cue_reward/reward_delta_decision.rule",
        "cue_reward/reward_delta_decision.json",
        "evidence_reversal/reward_delta_decision.rule",
        "evidence_reversal/reward_delta_decision.json",
        "neurons/presence_memory.rule",
        "neurons/leaky_readout.rule",
        "neurons/leaky_tanh_readout.rule",
        "neurons/rate.rule",
        "synapses/static.rule",
        "synapses/reward_delta.rule",
        "synapses/end_of_modulation.rule",
    ] {
        let text = std::fs::read_to_string(repo.join(f)).expect("a corpus file");
        dir.write(&format!("rules/{f}"), &text);
    }
    dir
}

/// The metric `ruleopt simulate FILE --task TASK -B episodes --seed 3` prints.
fn task_metric(dir: &TempDir, file: &str, task: &str, metric: &str, episodes: &str) -> f64 {
    let run = ruleopt(
        dir.path(),
        &[
            "simulate", file, "--task", task, "-B", episodes, "--seed", "3",
        ],
    );
    run.expect_code(0);
    let head = format!("task {task}: {metric} ");
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with(&head))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    line[head.len()..]
        .split(',')
        .next()
        .and_then(|r| r.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("{line}"))
}

/// Switches the reward-delta rule off in a project (`eta = 0`).
fn rule_off(dir: &TempDir) {
    let rule =
        std::fs::read_to_string(dir.path().join("rules/synapses/reward_delta.rule")).unwrap();
    assert!(rule.contains("learn eta = 0.02;"));
    dir.write(
        "rules/synapses/reward_delta.rule",
        &rule.replace("learn eta = 0.02;", "learn eta = 0;"),
    );
}

/// The cue-reward network of the reward-driven delta rule learns each episode's target
/// within the episode, untrained (its rule's initial values already do): well above
/// chance on held-out episodes, and at chance when the rule is switched off (`eta = 0`),
/// so what it earns is what the synapses learned online.
#[test]
fn reward_delta_network_learns_the_target_within_episodes() {
    let dir = reward_delta_project();
    let net = "rules/cue_reward/reward_delta_decision.rule";
    let learning = task_metric(&dir, net, "cue-reward", "reward", "64");
    assert!(learning > 0.5, "with the rule: {learning}");
    // Resized to a task with fewer channels, its one-to-one memory no longer fits: a
    // clear error, which says the lines are those of the resized network.
    let narrow = ruleopt(
        dir.path(),
        &[
            "simulate",
            net,
            "--task",
            "cue-reward",
            "--task-options",
            r#"{"bits": 10}"#,
        ],
    );
    narrow.expect_code(1);
    assert!(
        narrow.stderr.contains(
            "`one_to_one` needs populations of the same size: `x` has 13 neurons, `mem` 23"
        ) && narrow.stderr.contains("resized for task cue-reward"),
        "{}",
        narrow.stderr
    );
    // Both element types run the task's forward pass, to f32's precision alike.
    let record = |precision: &str| {
        let out = format!("{precision}.json");
        ruleopt(
            dir.path(),
            &[
                "simulate",
                net,
                "--task",
                "cue-reward",
                "-B",
                "2",
                "--seed",
                "3",
                "--precision",
                precision,
                "--record",
                "dec.y",
                "--out",
                &out,
            ],
        )
        .expect_code(0);
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(&out)).unwrap()).unwrap();
        json["records"]["dec.y"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<f64>>()
    };
    let (f32s, f64s) = (record("f32"), record("f64"));
    assert_eq!(f32s.len(), f64s.len());
    assert!(f32s.iter().zip(&f64s).all(|(a, b)| (a - b).abs() < 1e-3));
    assert!(
        f32s.iter().zip(&f64s).any(|(a, b)| a != b),
        "the same element type twice"
    );
    rule_off(&dir);
    let off = task_metric(&dir, net, "cue-reward", "reward", "64");
    assert!(off.abs() < 0.25, "without the rule: {off}");
}

/// The same design on evidence-reversal (whether the majority or the minority side pays
/// is learned from the rewards within each episode): far above chance untrained, at
/// chance without the rule.
#[test]
fn reward_delta_network_learns_evidence_reversal_online() {
    let dir = reward_delta_project();
    let net = "rules/evidence_reversal/reward_delta_decision.rule";
    let learning = task_metric(&dir, net, "evidence-reversal", "accuracy", "32");
    assert!(learning > 0.75, "with the rule: {learning}");
    rule_off(&dir);
    let off = task_metric(&dir, net, "evidence-reversal", "accuracy", "32");
    assert!((off - 0.5).abs() < 0.1, "without the rule: {off}");
}
