use crate::{project, ruleopt, HOLE_NETWORK};

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
    ruleopt(dir.path(), &["compile", "models.rule", "--emit", "asm"]).expect_code(2);
    ruleopt(
        dir.path(),
        &[
            "compile",
            "net/small.rule",
            "--emit",
            "clif",
            "--precision",
            "f16",
        ],
    )
    .expect_code(2);
}

#[test]
fn emits_clif() {
    let dir = project();
    let run = ruleopt(dir.path(), &["compile", "net/small.rule", "--emit", "clif"]);
    run.expect_code(0);
    let clif = &run.stdout;
    assert!(clif.contains("function"), "{clif}");
    for inst in ["fmul", "load"] {
        assert!(clif.contains(inst), "no `{inst}` in\n{clif}");
    }
    assert!(
        clif.contains("load.f32") && !clif.contains("load.f64"),
        "f32 by default"
    );
    let run = ruleopt(
        dir.path(),
        &[
            "compile",
            "net/small.rule",
            "--emit",
            "clif",
            "--precision",
            "f64",
        ],
    );
    run.expect_code(0);
    assert!(run.stdout.contains("load.f64"), "{}", run.stdout);
}

#[test]
fn clif_of_a_network_with_a_hole_is_an_error() {
    let dir = project();
    dir.write("holey.rule", HOLE_NETWORK);
    let run = ruleopt(dir.path(), &["compile", "holey.rule", "--emit", "clif"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("the hole `?f` has no expression yet"),
        "{}",
        run.stderr
    );
    ruleopt(dir.path(), &["compile", "holey.rule", "--emit", "ir"]).expect_code(0);
}

#[test]
fn emits_the_adjoint_step() {
    let dir = project();
    let run = ruleopt(dir.path(), &["compile", "net/small.rule", "--emit", "grad"]);
    run.expect_code(0);
    let ir = &run.stdout;
    // Adjoints of the LIF states and the gradient of nothing learnable (w is a param).
    assert!(ir.contains("update adj.rec.v = "), "{ir}");
    assert!(ir.contains("var adj.rec.v : state Pop(rec)"), "{ir}");
    // A surrogate derivative appears (the spike's), as arithmetic on the membrane.
    assert!(ir.contains("abs"), "{ir}");
}
