use crate::{project, ruleopt};

#[test]
fn good_files_pass() {
    let dir = project();
    let run = ruleopt(dir.path(), &["check", "models.rule", "net/small.rule"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("models.rule: ok: 2 models, 0 networks"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("net/small.rule: ok: 2 models, 1 network"),
        "{}",
        run.stdout
    );
}

/// The `(line, col)` after the first `name:` in `text`.
fn location(text: &str, name: &str) -> Option<(usize, usize)> {
    let rest = &text[text.find(&format!("{name}:"))? + name.len() + 1..];
    let mut numbers = rest.split(|c: char| !c.is_ascii_digit());
    Some((numbers.next()?.parse().ok()?, numbers.next()?.parse().ok()?))
}

#[test]
fn syntax_error_points_at_file_line_col() {
    let dir = project();
    dir.write("bad.rule", "neuron N {\n  state v = 0;\n  v = @;\n}\n");
    let run = ruleopt(dir.path(), &["check", "--color", "never", "bad.rule"]);
    run.expect_code(1);
    assert!(run.stdout.contains("error"), "{}", run.stdout);
    assert_eq!(
        location(&run.stdout, "bad.rule"),
        Some((3, 7)),
        "{}",
        run.stdout
    );
    assert!(
        !run.all().contains('\u{1b}'),
        "no colour when not a terminal"
    );
}

#[test]
fn every_file_is_checked_and_any_error_fails() {
    let dir = project();
    dir.write("bad.rule", "neuron N {\n  state v = 0\n}\n");
    let run = ruleopt(dir.path(), &["check", "bad.rule", "models.rule"]);
    run.expect_code(1);
    assert!(run.stdout.contains("models.rule: ok"), "{}", run.stdout);
    assert!(
        run.stderr.contains("1 of 2 files failed the check"),
        "{}",
        run.stderr
    );
}

#[test]
fn missing_file_is_an_error_not_a_panic() {
    let dir = project();
    let run = ruleopt(dir.path(), &["check", "no_such.rule"]);
    run.expect_code(1);
    assert!(
        run.all().contains("cannot read `no_such.rule`"),
        "{}",
        run.all()
    );
}

#[test]
fn missing_import_names_the_file() {
    let dir = project();
    dir.write("lonely.rule", "import \"gone.rule\";\n");
    let run = ruleopt(dir.path(), &["check", "lonely.rule"]);
    run.expect_code(1);
    assert!(run.all().contains("gone.rule"), "{}", run.all());
    assert!(run.all().contains("lonely.rule:1:"), "{}", run.all());
}

#[test]
fn colour_on_request() {
    let dir = project();
    dir.write("bad.rule", "neuron N {\n  state v = 0\n}\n");
    let run = ruleopt(dir.path(), &["check", "--color", "always", "bad.rule"]);
    run.expect_code(1);
    assert!(run.stdout.contains('\u{1b}'), "{}", run.stdout);
}

#[test]
fn no_files_is_a_usage_error() {
    let dir = project();
    ruleopt(dir.path(), &["check"]).expect_code(2);
}
