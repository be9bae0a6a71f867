//! Filling holes: a program's text with each hole `?f(args)` replaced by a formula.
//!
//! `ruleopt search` proposes a formula for every hole; it is written *into the source
//! text* at the hole's place, and the new text goes through the whole front end again
//! (parse, check, lower). So a candidate is checked like anything a user writes, the
//! rule that runs is exactly the text that is saved, and comments and layout of the
//! template are kept.
//!
//! A formula's tunable constants become `learn` parameters declared in the model (or
//! network) that holds the hole, so the gradient outer loop tunes them like any other
//! meta-parameter.

use crate::ast::{Expr, ExprKind, File, Init, Item, Member, NetMember, Stmt};
use crate::source::{FileId, Sources, Span};
use std::collections::BTreeMap;

/// Where a hole is written.
#[derive(Clone, Debug, PartialEq)]
pub struct Site {
    /// The hole's name (`f` of `?f(...)`).
    pub name: String,
    /// The whole `?f(...)`.
    pub span: Span,
    /// Its arguments as written (source text).
    pub args: Vec<String>,
    /// The model (or network) the hole is in.
    pub owner: String,
    /// The span of that model or network.
    pub owner_span: Span,
}

/// One hole of a program: its name, arguments (as written at the first site) and every
/// place it is used.
#[derive(Clone, Debug, PartialEq)]
pub struct Hole {
    /// Its name.
    pub name: String,
    /// Its arguments as written where it is first used.
    pub args: Vec<String>,
    /// Every use, in source order of the files.
    pub sites: Vec<Site>,
}

/// The holes of `files`, in order of their first use.
pub fn holes(sources: &Sources, files: &[(FileId, File)]) -> Vec<Hole> {
    let mut sites = Vec::new();
    for (_, file) in files {
        for item in &file.items {
            match item {
                Item::Import(_) => {}
                Item::Model(m) => {
                    let mut exprs = Vec::new();
                    for member in &m.members {
                        member_exprs(member, &mut exprs);
                    }
                    collect(sources, &exprs, &m.name.name, m.span, &mut sites);
                }
                Item::Network(n) => {
                    let mut exprs = Vec::new();
                    for member in &n.members {
                        net_member_exprs(member, &mut exprs);
                    }
                    collect(sources, &exprs, &n.name.name, n.span, &mut sites);
                }
            }
        }
    }
    let mut out: Vec<Hole> = Vec::new();
    for site in sites {
        match out.iter_mut().find(|h| h.name == site.name) {
            Some(h) => h.sites.push(site),
            None => out.push(Hole {
                name: site.name.clone(),
                args: site.args.clone(),
                sites: vec![site],
            }),
        }
    }
    out
}

/// What one site of a hole becomes.
#[derive(Clone, Debug, PartialEq)]
pub struct Filling {
    /// The expression text written in place of `?f(...)` (parenthesised by [`fill`]).
    pub expr: String,
    /// `learn` parameters to declare in the site's owner: `(name, initial value)`.
    /// A name declared by several sites of one owner is declared once (first value).
    pub learn: Vec<(String, f64)>,
}

/// A copy of `sources` in which every hole site of `files` is replaced by what
/// `filling` returns for it, and the parameters it asks for are declared at the start
/// of the site's model or network. File ids are unchanged: parse the files of `files`
/// again from the result (see [`reparse`]).
pub fn fill(
    sources: &Sources,
    files: &[(FileId, File)],
    filling: &mut dyn FnMut(&Site) -> Filling,
) -> Sources {
    // Edits per file: (byte range, replacement), applied from the back.
    let mut edits: BTreeMap<FileId, Vec<(usize, usize, String)>> = BTreeMap::new();
    // Declarations per owner: owner span -> names already declared, text.
    let mut decls: BTreeMap<(FileId, u32), (Vec<String>, String)> = BTreeMap::new();
    for hole in holes(sources, files) {
        for site in &hole.sites {
            let f = filling(site);
            edits.entry(site.span.file).or_default().push((
                site.span.start as usize,
                site.span.end as usize,
                format!("({})", f.expr),
            ));
            let key = (site.owner_span.file, site.owner_span.start);
            let (names, text) = decls.entry(key).or_default();
            for (name, value) in f.learn {
                if !names.contains(&name) {
                    text.push_str(&format!("\n  learn {name} = {};", literal(value)));
                    names.push(name);
                }
            }
        }
    }
    for ((file, start), (_, text)) in decls {
        if text.is_empty() {
            continue;
        }
        let src = &sources.get(file).text;
        // The declarations go right after the owner's `{`.
        if let Some(brace) = src[start as usize..].find('{') {
            let at = start as usize + brace + 1;
            edits.entry(file).or_default().push((at, at, text));
        }
    }
    let mut out = sources.clone();
    for (file, mut list) in edits {
        list.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
        let mut text = sources.get(file).text.clone();
        for (start, end, with) in list {
            text.replace_range(start..end, &with);
        }
        out.set_text(file, text);
    }
    out
}

/// Parses the files `ids` of `sources` again (after [`fill`]); imports are not
/// followed: the ids are those of the original load.
pub fn reparse(
    sources: &Sources,
    ids: &[FileId],
) -> Result<Vec<(FileId, File)>, Vec<crate::Diagnostic>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for &id in ids {
        match crate::syntax::parse(sources, id) {
            Ok(f) => out.push((id, f)),
            Err(d) => errors.extend(d),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// A number as rule text that reads back as exactly `c`: the shorter of the plain and
/// the exponent form of its shortest round-trip digits (`0.5`, `1e-12`, `-3`), and
/// `(1 / 0)`, `(-1 / 0)`, `(0 / 0)` for the non-finite values.
pub fn literal(c: f64) -> String {
    if c.is_nan() {
        return "(0 / 0)".into();
    }
    if c.is_infinite() {
        return if c > 0.0 { "(1 / 0)" } else { "(-1 / 0)" }.into();
    }
    let plain = format!("{c}");
    let sci = format!("{c:e}");
    // Both forms round-trip; keep the shorter (`{}` on a tie).
    if sci.len() < plain.len() {
        sci
    } else {
        plain
    }
}

fn collect(sources: &Sources, exprs: &[&Expr], owner: &str, owner_span: Span, out: &mut Vec<Site>) {
    let mut stack: Vec<&Expr> = exprs.iter().rev().copied().collect();
    while let Some(e) = stack.pop() {
        match &e.kind {
            ExprKind::Num(..) | ExprKind::Path(_) => {}
            ExprKind::Unary(_, a) => stack.push(a),
            ExprKind::Binary(_, a, b) => {
                stack.push(b);
                stack.push(a);
            }
            ExprKind::Call(c) => stack.extend(c.args.iter().rev().map(|a| &a.value)),
            ExprKind::Hole(name, args) => {
                let text = &sources.get(e.span.file).text;
                out.push(Site {
                    name: name.name.clone(),
                    span: e.span,
                    args: args
                        .iter()
                        .map(|a| text[a.span.start as usize..a.span.end as usize].to_string())
                        .collect(),
                    owner: owner.to_string(),
                    owner_span,
                });
                // Holes inside hole arguments are rejected by the checker; not visited.
            }
        }
    }
}

fn init_exprs<'a>(init: &'a Init, out: &mut Vec<&'a Expr>) {
    match init {
        Init::Expr(e) => out.push(e),
        Init::Dist(c) => out.extend(c.args.iter().map(|a| &a.value)),
        Init::File { .. } => {}
    }
}

fn stmt_exprs<'a>(s: &'a Stmt, out: &mut Vec<&'a Expr>) {
    match s {
        Stmt::Let { value, .. } | Stmt::Assign { value, .. } => out.push(value),
        Stmt::Ode { rhs, .. } => out.push(rhs),
        Stmt::On { body, .. } => body.iter().for_each(|s| stmt_exprs(s, out)),
    }
}

fn member_exprs<'a>(m: &'a Member, out: &mut Vec<&'a Expr>) {
    match m {
        Member::Param(p) => {
            init_exprs(&p.init, out);
            if let Some((lo, hi)) = &p.bounds {
                out.extend([lo, hi]);
            }
        }
        Member::State(s) => {
            if let Some(i) = &s.init {
                init_exprs(i, out);
            }
            if let Some((lo, hi)) = &s.clip {
                out.extend([lo, hi]);
            }
        }
        Member::Input(_) | Member::Modulator(_) | Member::Output(_) => {}
        Member::Spike(s) => {
            out.extend([&s.lhs, &s.rhs]);
            if let Some(c) = &s.surrogate {
                out.extend(c.args.iter().map(|a| &a.value));
            }
        }
        Member::Reset(stmts, _) => stmts.iter().for_each(|s| stmt_exprs(s, out)),
        Member::Refractory(e) | Member::Weight(e) => out.push(e),
        Member::Stmt(s) => stmt_exprs(s, out),
    }
}

fn net_member_exprs<'a>(m: &'a NetMember, out: &mut Vec<&'a Expr>) {
    match m {
        NetMember::Dt(e) => out.push(e),
        NetMember::Input { .. } | NetMember::Signal { .. } | NetMember::Readout(..) => {}
        NetMember::Population { args, .. } => args.iter().for_each(|a| init_exprs(&a.init, out)),
        NetMember::Projection(p) => {
            p.args.iter().for_each(|a| init_exprs(&a.init, out));
            if let Some(c) = &p.connect {
                out.extend(c.args.iter().map(|a| &a.value));
            }
        }
        NetMember::Param(p) => {
            init_exprs(&p.init, out);
            if let Some((lo, hi)) = &p.bounds {
                out.extend([lo, hi]);
            }
        }
        NetMember::Modulator { value, .. } => out.push(value),
    }
}
