use crate::{project, ruleopt};

#[test]
fn emits_ast() {
    let dir = project();
    let run = ruleopt(dir.path(), &["compile", "models.rule", "--emit", "ast"]);
    run.expect_code(0);
    assert!(run.stdout.contains("LIF"), "{}", run.stdout);
}

#[test]
fn emits_ir() {
    let dir = project();
    let run = ruleopt(dir.path(), &["compile", "net/small.rule", "--emit", "ir"]);
    run.expect_code(0);
    assert!(run.stdout.contains("Small"), "{}", run.stdout);
    let named = ruleopt(
        dir.path(),
        &[
            "compile",
            "net/small.rule",
            "--network",
            "Small",
            "--emit",
            "ir",
        ],
    );
    named.expect_code(0);
    assert_eq!(named.stdout, run.stdout);
}

#[test]
fn unknown_network_is_an_error() {
    let dir = project();
    let run = ruleopt(
        dir.path(),
        &[
            "compile",
            "net/small.rule",
            "--network",
            "Smal",
            "--emit",
            "ir",
        ],
    );
    run.expect_code(1);
    assert!(run.all().contains("Smal"), "{}", run.all());
}

#[test]
fn bad_emit_is_a_usage_error() {
    let dir = project();
    ruleopt(dir.path(), &["compile", "models.rule", "--emit", "clif"]).expect_code(2);
}
