//! The README's example is a real file: it must check, compile and simulate.

use crate::{ruleopt, TempDir};

const README: &str = include_str!("../../../README.md");

/// The first ```rule block of the README.
fn example() -> String {
    let start = README
        .find("```rule\n")
        .expect("README has a ```rule block")
        + "```rule\n".len();
    let len = README[start..].find("```").expect("the block ends");
    README[start..start + len].to_string()
}

#[test]
fn readme_example_runs() {
    let dir = TempDir::fresh();
    dir.write("tiny.rule", &example());
    let run = ruleopt(dir.path(), &["check", "tiny.rule"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("ok: 2 models, 1 network"),
        "{}",
        run.stdout
    );
    ruleopt(dir.path(), &["compile", "tiny.rule", "--emit", "ir"]).expect_code(0);
    let run = ruleopt(
        dir.path(),
        &[
            "simulate",
            "tiny.rule",
            "-T",
            "500",
            "--rate",
            "x=50Hz",
            "--record",
            "rec.v",
            "--out",
            "run.json",
            "--raster",
            "run.svg",
        ],
    );
    run.expect_code(0);
    assert!(dir.path().join("run.json").exists() && dir.path().join("run.svg").exists());
}

/// Every command of the README's first ```sh block runs (on the example saved as
/// `tiny.rule`) and exits with 0.
#[test]
fn readme_commands_run() {
    let start = README.find("```sh\n").expect("README has a ```sh block") + "```sh\n".len();
    let len = README[start..].find("```").expect("the block ends");
    let dir = TempDir::fresh();
    dir.write("tiny.rule", &example());
    let mut ran = 0;
    for line in README[start..start + len].lines() {
        let command = line.split('#').next().unwrap_or_default();
        let words: Vec<&str> = command.split_whitespace().collect();
        let Some((&"ruleopt", args)) = words.split_first() else {
            continue;
        };
        ruleopt(dir.path(), args).expect_code(0);
        ran += 1;
    }
    assert!(ran >= 5, "{ran} commands");
}
