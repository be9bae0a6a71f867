//! Every file in `rules/` checks, lowers, validates, and has AST/IR snapshots.

use crate::common::*;

fn rule_files() -> Vec<String> {
    let mut out = Vec::new();
    let root = repo().join("rules");
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rule") {
                out.push(p.strip_prefix(repo()).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn corpus_checks() {
    let mut failures = String::new();
    for f in rule_files() {
        let (sources, prog) = load_file(&f);
        if let Err(d) = prog {
            failures += &render(&sources, &d);
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

#[test]
#[ignore]
fn dump() {
    let f = std::env::var("DUMP").unwrap();
    let (sources, prog) = load_file(&f);
    let prog = prog.unwrap_or_else(|d| panic!("{}", render(&sources, &d)));
    let m = lang::lower::lower(&prog, None).unwrap_or_else(|d| panic!("{}", render(&sources, &d)));
    println!("{m}");
    lang::validate::validate(&m).unwrap();
}
