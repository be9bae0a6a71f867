//! Filling holes with formulas (`lang::fill`): the text `ruleopt search` evaluates.

use crate::common::{load_file, render};
use lang::fill::{fill, holes, reparse, Filling};
use lang::ir::{Expr, VarKind};

/// The files of a loaded root (re-parsed from its sources, in load order).
fn loaded(rel: &str) -> (lang::Sources, Vec<(lang::FileId, lang::ast::File)>) {
    let (sources, prog) = load_file(rel);
    prog.unwrap_or_else(|d| panic!("{}", render(&sources, &d)));
    let ids: Vec<lang::FileId> = sources.iter().map(|(id, _)| id).collect();
    let files = reparse(&sources, &ids).unwrap();
    (sources, files)
}

#[test]
fn holes_are_found_with_their_arguments_and_owner() {
    let (sources, files) = loaded("rules/networks/hole_network.rule");
    let hs = holes(&sources, &files);
    assert_eq!(hs.len(), 1);
    assert_eq!(hs[0].name, "f");
    assert_eq!(hs[0].args, ["pre.out", "post.out", "x", "y", "e"]);
    assert_eq!(hs[0].sites.len(), 1);
    assert_eq!(hs[0].sites[0].owner, "HoleEligibility");
    let at = hs[0].sites[0].span;
    assert_eq!(
        &sources.get(at.file).text[at.start as usize..at.end as usize],
        "?f(pre.out, post.out, x, y, e)"
    );
}

#[test]
fn a_filled_hole_lowers_with_its_constants_as_learn_parameters() {
    let (sources, files) = loaded("rules/networks/hole_network.rule");
    let filled = fill(&sources, &files, &mut |site| {
        let a = &site.args;
        Filling {
            expr: format!("c_f_0 * {} * {} - c_f_1 * {} * {}", a[1], a[2], a[3], a[0]),
            learn: vec![("c_f_0".into(), 0.01), ("c_f_1".into(), -0.012)],
        }
    });
    let ids: Vec<lang::FileId> = files.iter().map(|(id, _)| *id).collect();
    let files2 = reparse(&filled, &ids).unwrap_or_else(|d| panic!("{}", render(&filled, &d)));
    let prog =
        lang::check::check(&filled, &files2).unwrap_or_else(|d| panic!("{}", render(&filled, &d)));
    let m = lang::lower::lower(&prog, None).unwrap_or_else(|d| panic!("{}", render(&filled, &d)));
    lang::validate::validate(&m).unwrap();
    assert!(
        !m.exprs().iter().any(|(_, e)| matches!(e, Expr::Hole(..))),
        "{m}"
    );
    for (name, value) in [("recur.c_f_0", 0.01), ("recur.c_f_1", -0.012)] {
        let v = m
            .var_by_name(name)
            .unwrap_or_else(|| panic!("no {name} in\n{m}"));
        assert!(matches!(m.vars[v].kind, VarKind::Param { learn: true, .. }));
        let inst = lang::init::instantiate(&m, 0).unwrap();
        assert_eq!(inst.params[v.index()], [value]);
    }
    // Only the file with the hole changed; the edit is in its text, comments kept.
    let site = &holes(&sources, &files)[0].sites[0];
    let text = &filled.get(site.span.file).text;
    assert!(
        text.contains("e += (c_f_0 * post.out * x - c_f_1 * y * pre.out);"),
        "{text}"
    );
    assert!(text.contains("learn c_f_1 = -0.012;"), "{text}");
    assert!(text.contains("// eligibility trace"), "{text}");
    for (id, f) in sources.iter() {
        if id != site.span.file {
            assert_eq!(f.text, filled.get(id).text);
        }
    }
}

#[test]
fn a_wrong_formula_is_a_front_end_error_not_a_panic() {
    let (sources, files) = loaded("rules/networks/hole_network.rule");
    let filled = fill(&sources, &files, &mut |_| Filling {
        expr: "nosuchname * 2".into(),
        learn: vec![],
    });
    let ids: Vec<lang::FileId> = files.iter().map(|(id, _)| *id).collect();
    let files2 = reparse(&filled, &ids).unwrap();
    assert!(lang::check::check(&filled, &files2)
        .and_then(|p| lang::lower::lower(&p, None))
        .is_err());
}
