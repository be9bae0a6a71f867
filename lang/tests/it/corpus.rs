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
                out.push(
                    p.strip_prefix(repo())
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
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

/// AST and IR text of every file: a model file's models each lowered alone, a
/// network file's networks. CI never writes snapshots: a difference fails.
#[test]
fn corpus_snapshots() {
    for f in rule_files() {
        let (sources, prog) = load_file(&f);
        let prog = prog.unwrap_or_else(|d| panic!("{}", render(&sources, &d)));
        let root = sources.find(&f).unwrap();
        let ast = lang::syntax::parse(&sources, root).unwrap();
        let mut ir = String::new();
        let mut grad = String::new();
        let file_networks: Vec<String> = ast
            .items
            .iter()
            .filter_map(|i| {
                if let lang::ast::Item::Network(n) = i {
                    Some(n.name.name.clone())
                } else {
                    None
                }
            })
            .collect();
        let file_models: Vec<String> = ast
            .items
            .iter()
            .filter_map(|i| {
                if let lang::ast::Item::Model(m) = i {
                    Some(m.name.name.clone())
                } else {
                    None
                }
            })
            .collect();
        if file_networks.is_empty() {
            for name in &file_models {
                let m = lang::lower::lower_model(&prog, name)
                    .unwrap_or_else(|d| panic!("{}", render(&sources, &d)));
                lang::validate::validate(&m).unwrap_or_else(|e| panic!("{f}: {name}: {e}"));
                ir += &format!("{m}\n");
            }
        } else {
            for name in &file_networks {
                let m = lang::lower::lower(&prog, Some(name))
                    .unwrap_or_else(|d| panic!("{}", render(&sources, &d)));
                lang::validate::validate(&m).unwrap_or_else(|e| panic!("{f}: {name}: {e}"));
                ir += &format!("{m}\n");
                // The adjoint step (symbolic differentiation), for networks without holes.
                if let Ok(adj) = lang::diff::diff(&m) {
                    lang::validate::validate(&adj.module)
                        .unwrap_or_else(|e| panic!("{f}: {name}: adjoint: {e}"));
                    grad += &format!("{}\n", adj.module);
                }
            }
        }
        let key = f
            .trim_start_matches("rules/")
            .trim_end_matches(".rule")
            .replace('/', "__");
        insta::assert_snapshot!(format!("ast__{key}"), ast.to_string());
        insta::assert_snapshot!(format!("ir__{key}"), ir);
        if !grad.is_empty() {
            insta::assert_snapshot!(format!("grad__{key}"), grad);
        }
        // The AST text is itself valid source that parses back to the same text.
        let mut again = lang::Sources::new();
        let id = again.add(f.clone(), ast.to_string());
        let reparsed = lang::syntax::parse(&again, id)
            .unwrap_or_else(|d| panic!("{f}: printed AST does not parse: {d:?}"));
        assert_eq!(
            reparsed.to_string(),
            ast.to_string(),
            "{f}: AST text round trip"
        );
    }
}
