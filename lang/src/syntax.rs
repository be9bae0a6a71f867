//! Text -> AST. The only module that knows pest: pairs become [`ast`] nodes with spans
//! at once, and pest's errors become [`Diagnostic`]s.

use crate::ast::*;
use crate::diag::Diagnostic;
use crate::source::{FileId, Sources, Span};
use pest::iterators::Pair;
use pest::Parser as _;

mod parser {
    #![allow(missing_docs)]
    #[derive(pest_derive::Parser)]
    #[grammar = "../grammar/rule.pest"]
    pub struct RuleParser;
}
use parser::{Rule, RuleParser};

type P<'i> = Pair<'i, Rule>;

/// Parses one file into an AST.
pub fn parse(sources: &Sources, file: FileId) -> Result<File, Vec<Diagnostic>> {
    let text = &sources.get(file).text;
    let pairs =
        RuleParser::parse(Rule::file, text).map_err(|e| vec![syntax_error(file, text, e)])?;
    let mut cx = Cx {
        file,
        errors: Vec::new(),
    };
    let mut items = Vec::new();
    for pair in pairs.flatten().take(1).flat_map(|f| f.into_inner()) {
        match pair.as_rule() {
            Rule::import => {
                let s = pair
                    .clone()
                    .into_inner()
                    .next()
                    .map(|p| p.as_str())
                    .unwrap_or("\"\"");
                items.push(Item::Import(Import {
                    path: s[1..s.len() - 1].to_string(),
                    span: cx.span(&pair),
                }));
            }
            Rule::model => items.push(Item::Model(cx.model(pair))),
            Rule::network => items.push(Item::Network(cx.network(pair))),
            _ => {}
        }
    }
    if cx.errors.is_empty() {
        Ok(File { items })
    } else {
        Err(cx.errors)
    }
}

/// Parses a standalone expression (used by tests and by `ruleopt search` to read
/// formulas back).
pub fn parse_expr(sources: &Sources, file: FileId) -> Result<Expr, Vec<Diagnostic>> {
    let text = &sources.get(file).text;
    let mut pairs =
        RuleParser::parse(Rule::expr, text).map_err(|e| vec![syntax_error(file, text, e)])?;
    let pair = pairs.next().expect("pest returns the expr pair");
    let end = pair.as_span().end();
    if text[end..].trim().is_empty() {
        let mut cx = Cx {
            file,
            errors: Vec::new(),
        };
        let e = cx.expr(pair);
        if cx.errors.is_empty() {
            Ok(e)
        } else {
            Err(cx.errors)
        }
    } else {
        Err(vec![Diagnostic::error(
            Span::new(file, end, text.len()),
            "unexpected text after the expression",
        )])
    }
}

fn rule_name(r: &Rule) -> Option<&'static str> {
    Some(match r {
        Rule::EOI => "end of file",
        Rule::import => "`import`",
        Rule::model | Rule::model_kind => "`neuron` or `synapse`",
        Rule::network => "`network`",
        Rule::ident | Rule::path => "a name",
        Rule::expr | Rule::sum | Rule::product | Rule::unary | Rule::power | Rule::cmp => {
            "an expression"
        }
        Rule::number | Rule::float => "a number",
        Rule::int => "an integer",
        Rule::unit => "a unit (`ms`, `s`, `Hz`)",
        Rule::string => "a quoted path",
        Rule::init | Rule::init_expr | Rule::init_dist | Rule::init_file => "`=`, `~` or `from`",
        Rule::param_decl => "`param` or `learn`",
        Rule::state_decl => "`state`",
        Rule::bounds => "`in [lo, hi]`",
        Rule::clip => "`clip [lo, hi]`",
        Rule::space => "`[space]`",
        Rule::assign_op => "`=`, `+=`, `-=` or `*=`",
        Rule::cmp_op => "a comparison (`>`, `>=`, `<`, `<=`)",
        Rule::add_op | Rule::mul_op => "an operator",
        Rule::call => "a call",
        Rule::surrogate => "`surrogate`",
        Rule::method => "`using`",
        Rule::size => "`[size]`",
        Rule::net_args => "`(`",
        Rule::connect => "`connect`",
        Rule::block => "`{`",
        Rule::input_decl | Rule::net_input => "`input`",
        Rule::modulator_decl | Rule::net_modulator => "`modulator`",
        Rule::output_decl => "`output`",
        Rule::spike_decl => "`spike`",
        Rule::reset_decl => "`reset`",
        Rule::refractory_decl => "`refractory`",
        Rule::weight_decl => "`weight`",
        Rule::let_stmt => "`let`",
        Rule::ode_stmt => "an ODE `dx/dt = ...`",
        Rule::on_stmt => "`on`",
        Rule::assign_stmt => "an assignment",
        Rule::dt_decl => "`dt`",
        Rule::signal_decl => "`signal`",
        Rule::population => "`population`",
        Rule::projection => "`projection`",
        Rule::readout_decl => "`readout`",
        Rule::hole => "a hole `?name(...)`",
        Rule::arg | Rule::net_arg => "an argument",
        _ => return None,
    })
}

fn syntax_error(file: FileId, text: &str, e: pest::error::Error<Rule>) -> Diagnostic {
    use pest::error::{ErrorVariant, InputLocation};
    let (start, end) = match e.location {
        InputLocation::Pos(p) => (p, p),
        InputLocation::Span((a, b)) => (a, b),
    };
    // Point at the offending token rather than an empty spot.
    let tok_end = if end > start {
        end
    } else {
        let rest = &text[start..];
        let n = rest
            .char_indices()
            .find(|&(i, c)| i > 0 && (c.is_whitespace() || (!c.is_alphanumeric() && c != '_')))
            .map_or(rest.len(), |(i, _)| i);
        start + n.max(rest.chars().next().map_or(0, char::len_utf8))
    };
    let found = text[start..tok_end].trim();
    let found = if found.is_empty() {
        "end of file".to_string()
    } else {
        format!("`{found}`")
    };
    let message = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let mut names: Vec<&str> = positives.iter().filter_map(rule_name).collect();
            names.sort_unstable();
            names.dedup();
            match names.len() {
                0 => format!("syntax error: unexpected {found}"),
                1 => format!("syntax error: expected {}, found {found}", names[0]),
                _ => {
                    let last = names.pop().unwrap_or_default();
                    format!(
                        "syntax error: expected {} or {last}, found {found}",
                        names.join(", ")
                    )
                }
            }
        }
        ErrorVariant::CustomError { message } => format!("syntax error: {message}"),
    };
    // A statement that runs into the next line almost always lacks its `;`.
    let before = text[..start].trim_end();
    if let Some(last) = before.chars().last() {
        let newline_between = text[before.len()..start].contains('\n');
        if newline_between
            && !matches!(last, ';' | '{' | '}')
            && matches!(e.variant, ErrorVariant::ParsingError { .. })
        {
            let at = before.len() - last.len_utf8();
            let tail: String = before
                .chars()
                .rev()
                .take_while(|c| !c.is_whitespace())
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Diagnostic::error(
                Span::new(file, at, before.len()),
                format!("syntax error: expected `;` after `{tail}`"),
            )
            .with_label("add `;` here")
            .with_note(format!("the next line starts with {found}"));
        }
    }
    // "expected `input`, found `input`": the declaration starting here failed further
    // on. A line that does not end its declaration most often lacks its `;`.
    let names: Vec<&str> = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            positives.iter().filter_map(rule_name).collect()
        }
        ErrorVariant::CustomError { .. } => Vec::new(),
    };
    if names.contains(&found.as_str()) {
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line = &text[start..line_end];
        let code = line.split("//").next().unwrap_or(line).trim_end();
        let last = code.chars().last();
        if line_end < text.len() && !matches!(last, Some(';' | '{' | '}') | None) {
            let end = start + code.len();
            let at = end - last.map_or(0, char::len_utf8);
            return Diagnostic::error(
                Span::new(file, at, end),
                format!("syntax error: expected `;` at the end of this {found} declaration"),
            )
            .with_label("add `;` here");
        }
        let message = format!("syntax error: this {found} declaration is malformed");
        return Diagnostic::error(Span::new(file, start, tok_end), message)
            .with_note("see grammar/LANGUAGE.md for its form");
    }
    let mut d = Diagnostic::error(Span::new(file, start, tok_end), message);
    if let ErrorVariant::ParsingError { positives, .. } = &e.variant {
        if positives.iter().any(|r| matches!(r, Rule::ident)) && is_keyword(found.trim_matches('`'))
        {
            d = d.with_note(format!("{found} is a keyword and cannot be used as a name"));
        }
    }
    d
}

fn is_keyword(s: &str) -> bool {
    RuleParser::parse(Rule::keyword, s).is_ok_and(|mut p| p.next().is_some_and(|k| k.as_str() == s))
}

struct Cx {
    file: FileId,
    errors: Vec<Diagnostic>,
}

impl Cx {
    fn span(&self, p: &P) -> Span {
        let s = p.as_span();
        Span::new(self.file, s.start(), s.end())
    }

    fn ident(&self, p: P) -> Ident {
        Ident {
            name: p.as_str().to_string(),
            span: self.span(&p),
        }
    }

    fn model(&mut self, pair: P) -> Model {
        let span = self.span(&pair);
        let mut it = pair.into_inner();
        let kind = match it.next().map(|p| p.as_str()) {
            Some("synapse") => ModelKind::Synapse,
            _ => ModelKind::Neuron,
        };
        let name = self.ident(it.next().expect("grammar: model name"));
        let members = it.map(|p| self.member(p)).collect();
        Model {
            kind,
            name,
            members,
            span,
        }
    }

    fn member(&mut self, p: P) -> Member {
        let span = self.span(&p);
        match p.as_rule() {
            Rule::param_decl => Member::Param(self.param_decl(p)),
            Rule::state_decl => {
                let mut decl = StateDecl {
                    name: Ident {
                        name: String::new(),
                        span,
                    },
                    space: None,
                    init: None,
                    clip: None,
                    span,
                };
                for q in p.into_inner() {
                    match q.as_rule() {
                        Rule::ident => decl.name = self.ident(q),
                        Rule::space => decl.space = Some(self.ident(first(q))),
                        Rule::init => decl.init = Some(self.init(q)),
                        Rule::clip => decl.clip = Some(self.pair_of_exprs(q)),
                        _ => {}
                    }
                }
                Member::State(decl)
            }
            Rule::input_decl => Member::Input(self.ident_list(first(p))),
            Rule::modulator_decl => Member::Modulator(self.ident_list(first(p))),
            Rule::output_decl => Member::Output(self.ident(first(p))),
            Rule::spike_decl => {
                let mut it = p.into_inner();
                let name = self.ident(it.next().expect("grammar: spike name"));
                let lhs = self.expr(it.next().expect("grammar: lhs"));
                let op = cmp_op(it.next().expect("grammar: op").as_str());
                let rhs = self.expr(it.next().expect("grammar: rhs"));
                let surrogate = it.next().map(|s| self.call(first(s)));
                Member::Spike(SpikeDecl {
                    name,
                    lhs,
                    op,
                    rhs,
                    surrogate,
                    span,
                })
            }
            Rule::reset_decl => {
                let q = first(p);
                let body = if q.as_rule() == Rule::block {
                    self.block(q)
                } else {
                    vec![self.stmt(q)]
                };
                Member::Reset(body, span)
            }
            Rule::refractory_decl => Member::Refractory(self.expr(first(p))),
            Rule::weight_decl => Member::Weight(self.expr(first(p))),
            _ => Member::Stmt(self.stmt(p)),
        }
    }

    fn param_decl(&mut self, p: P) -> ParamDecl {
        let span = self.span(&p);
        let mut learn = false;
        let mut name = Ident {
            name: String::new(),
            span,
        };
        let mut space = None;
        let mut init = Init::Expr(Expr {
            kind: ExprKind::Num(0.0, None),
            span,
        });
        let mut bounds = None;
        for q in p.into_inner() {
            match q.as_rule() {
                Rule::param_kind => learn = q.as_str() == "learn",
                Rule::ident => name = self.ident(q),
                Rule::space => space = Some(self.ident(first(q))),
                Rule::init => init = self.init(q),
                Rule::bounds => bounds = Some(self.pair_of_exprs(q)),
                _ => {}
            }
        }
        ParamDecl {
            learn,
            name,
            space,
            init,
            bounds,
            span,
        }
    }

    fn init(&mut self, p: P) -> Init {
        let q = first(p);
        match q.as_rule() {
            Rule::init_dist => Init::Dist(self.call(first(q))),
            Rule::init_file => {
                let span = self.span(&q);
                let s = first(q).as_str();
                Init::File {
                    path: s[1..s.len() - 1].to_string(),
                    span,
                }
            }
            _ => Init::Expr(self.expr(first(q))),
        }
    }

    fn pair_of_exprs(&mut self, p: P) -> (Expr, Expr) {
        let mut it = p.into_inner();
        let a = self.expr(it.next().expect("grammar: lo"));
        let b = self.expr(it.next().expect("grammar: hi"));
        (a, b)
    }

    fn ident_list(&self, p: P) -> Vec<Ident> {
        p.into_inner().map(|q| self.ident(q)).collect()
    }

    fn block(&mut self, p: P) -> Vec<Stmt> {
        p.into_inner().map(|q| self.stmt(q)).collect()
    }

    fn stmt(&mut self, p: P) -> Stmt {
        let span = self.span(&p);
        let rule = p.as_rule();
        let mut it = p.into_inner();
        match rule {
            Rule::let_stmt => {
                let name = self.ident(it.next().expect("grammar: let name"));
                let value = self.expr(it.next().expect("grammar: let value"));
                Stmt::Let { name, value, span }
            }
            Rule::ode_stmt => {
                let var = self.ident(it.next().expect("grammar: ode var"));
                let rhs = self.expr(it.next().expect("grammar: ode rhs"));
                let method = it.next().map(|m| self.ident(first(m)));
                Stmt::Ode {
                    var,
                    rhs,
                    method,
                    span,
                }
            }
            Rule::on_stmt => {
                let who = self.ident(it.next().expect("grammar: on who"));
                let body = self.block(it.next().expect("grammar: on block"));
                Stmt::On { who, body, span }
            }
            _ => {
                let target = self.ident(it.next().expect("grammar: target"));
                let op = match it.next().map(|o| o.as_str()) {
                    Some("+=") => AssignOp::Add,
                    Some("-=") => AssignOp::Sub,
                    Some("*=") => AssignOp::Mul,
                    _ => AssignOp::Set,
                };
                let value = self.expr(it.next().expect("grammar: value"));
                Stmt::Assign {
                    target,
                    op,
                    value,
                    span,
                }
            }
        }
    }

    fn call(&mut self, p: P) -> Call {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let func = self.ident(it.next().expect("grammar: call name"));
        let args = it
            .map(|a| {
                let inner: Vec<P> = a.into_inner().collect();
                let (name, value) = if inner.len() == 2 {
                    let mut i = inner.into_iter();
                    (Some(self.ident(i.next().expect("2"))), i.next().expect("2"))
                } else {
                    (None, inner.into_iter().next().expect("grammar: arg"))
                };
                Arg {
                    name,
                    value: self.expr(value),
                }
            })
            .collect();
        Call { func, args, span }
    }

    fn expr(&mut self, p: P) -> Expr {
        let span = self.span(&p);
        match p.as_rule() {
            Rule::expr => self.expr(first(p)),
            Rule::cmp => {
                let mut it = p.into_inner();
                let lhs = self.expr(it.next().expect("grammar: cmp lhs"));
                match (it.next(), it.next()) {
                    (Some(op), Some(rhs)) => {
                        let rhs = self.expr(rhs);
                        let op = BinOp::Cmp(cmp_op(op.as_str()));
                        Expr {
                            kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                            span,
                        }
                    }
                    _ => lhs,
                }
            }
            Rule::sum | Rule::product => {
                let mut it = p.into_inner();
                let mut acc = self.expr(it.next().expect("grammar: operand"));
                while let (Some(op), Some(rhs)) = (it.next(), it.next()) {
                    let rhs = self.expr(rhs);
                    let op = match op.as_str() {
                        "+" => BinOp::Add,
                        "-" => BinOp::Sub,
                        "*" => BinOp::Mul,
                        _ => BinOp::Div,
                    };
                    let s = acc.span.to(rhs.span);
                    acc = Expr {
                        kind: ExprKind::Binary(op, Box::new(acc), Box::new(rhs)),
                        span: s,
                    };
                }
                acc
            }
            Rule::unary => {
                let inner: Vec<P> = p.into_inner().collect();
                let (negs, rest) = inner.split_at(inner.len() - 1);
                let mut e = self.expr(rest[0].clone());
                for n in negs.iter().rev() {
                    let s = self.span(n).to(e.span);
                    e = Expr {
                        kind: ExprKind::Unary(UnOp::Neg, Box::new(e)),
                        span: s,
                    };
                }
                e
            }
            Rule::power => {
                let mut it = p.into_inner();
                let base = self.expr(it.next().expect("grammar: base"));
                match it.next() {
                    Some(exp) => {
                        let exp = self.expr(exp);
                        Expr {
                            kind: ExprKind::Binary(BinOp::Pow, Box::new(base), Box::new(exp)),
                            span,
                        }
                    }
                    None => base,
                }
            }
            Rule::number => {
                let mut it = p.into_inner();
                let f = it.next().expect("grammar: float");
                let value = match f.as_str().parse::<f64>() {
                    Ok(v) if v.is_finite() => v,
                    _ => {
                        self.errors.push(Diagnostic::error(
                            span,
                            format!("the number `{}` is too large", f.as_str()),
                        ));
                        0.0
                    }
                };
                let unit = it.next().map(|u| match u.as_str() {
                    "ms" => Unit::Ms,
                    "s" => Unit::S,
                    _ => Unit::Hz,
                });
                Expr {
                    kind: ExprKind::Num(value, unit),
                    span,
                }
            }
            Rule::path => {
                // The pair's span may end in whitespace skipped before a `.` that never
                // came: span the identifiers only.
                let ids: Vec<Ident> = p.into_inner().map(|q| self.ident(q)).collect();
                let span = ids[0].span.to(ids[ids.len() - 1].span);
                Expr {
                    kind: ExprKind::Path(ids),
                    span,
                }
            }
            Rule::call => Expr {
                kind: ExprKind::Call(self.call(p)),
                span,
            },
            Rule::hole => {
                let mut it = p.into_inner();
                let name = self.ident(it.next().expect("grammar: hole name"));
                let args = it.map(|a| self.expr(a)).collect();
                Expr {
                    kind: ExprKind::Hole(name, args),
                    span,
                }
            }
            r => unreachable!("grammar: unexpected expression rule {r:?}"),
        }
    }

    fn network(&mut self, pair: P) -> Network {
        let span = self.span(&pair);
        let mut it = pair.into_inner();
        let name = self.ident(it.next().expect("grammar: network name"));
        let members = it.map(|p| self.net_member(p)).collect();
        Network {
            name,
            members,
            span,
        }
    }

    fn size(&mut self, p: P) -> usize {
        let q = first(p);
        match q.as_str().parse::<usize>() {
            Ok(n) if n <= 1 << 24 => n,
            _ => {
                self.errors.push(Diagnostic::error(
                    self.span(&q),
                    "a size must be at most 16777216",
                ));
                1
            }
        }
    }

    fn net_args(&mut self, p: P) -> Vec<NetArg> {
        p.into_inner()
            .map(|a| {
                let mut it = a.into_inner();
                let name = self.ident(it.next().expect("grammar: arg name"));
                let init = self.init(it.next().expect("grammar: arg init"));
                NetArg { name, init }
            })
            .collect()
    }

    fn net_member(&mut self, p: P) -> NetMember {
        let span = self.span(&p);
        match p.as_rule() {
            Rule::dt_decl => NetMember::Dt(self.expr(first(p))),
            Rule::net_input => {
                let mut it = p.into_inner();
                let name = self.ident(it.next().expect("grammar: name"));
                let size = self.size(it.next().expect("grammar: size"));
                NetMember::Input { name, size, span }
            }
            Rule::signal_decl => {
                let mut it = p.into_inner();
                let name = self.ident(it.next().expect("grammar: name"));
                let pop = it.next().map(|s| self.ident(first(s)));
                NetMember::Signal { name, pop, span }
            }
            Rule::population => {
                let mut it = p.into_inner();
                let name = self.ident(it.next().expect("grammar: name"));
                let model = self.ident(it.next().expect("grammar: model"));
                let size = self.size(it.next().expect("grammar: size"));
                let args = it.next().map(|a| self.net_args(a)).unwrap_or_default();
                NetMember::Population {
                    name,
                    model,
                    size,
                    args,
                    span,
                }
            }
            Rule::projection => {
                let mut idents = Vec::new();
                let mut args = Vec::new();
                let mut connect = None;
                for q in p.into_inner() {
                    match q.as_rule() {
                        Rule::ident => idents.push(self.ident(q)),
                        Rule::net_args => args = self.net_args(q),
                        Rule::connect => connect = Some(self.call(first(q))),
                        _ => {}
                    }
                }
                let mut it = idents.into_iter();
                let name = it.next().expect("grammar: name");
                let pre = it.next().expect("grammar: pre");
                let post = it.next().expect("grammar: post");
                let (target, rule) = match (it.next(), it.next()) {
                    (Some(t), Some(r)) => (Some(t), r),
                    (Some(r), None) => (None, r),
                    _ => unreachable!("grammar: projection rule"),
                };
                NetMember::Projection(Projection {
                    name,
                    pre,
                    post,
                    target,
                    rule,
                    args,
                    connect,
                    span,
                })
            }
            Rule::param_decl => NetMember::Param(self.param_decl(p)),
            Rule::net_modulator => {
                let mut it = p.into_inner();
                let name = self.ident(it.next().expect("grammar: name"));
                let value = self.expr(it.next().expect("grammar: value"));
                NetMember::Modulator { name, value, span }
            }
            Rule::readout_decl => {
                let paths = p
                    .into_inner()
                    .map(|q| q.into_inner().map(|i| self.ident(i)).collect())
                    .collect();
                NetMember::Readout(paths, span)
            }
            r => unreachable!("grammar: unexpected network member {r:?}"),
        }
    }
}

fn first(p: P) -> P {
    p.into_inner().next().expect("grammar guarantees a child")
}

fn cmp_op(s: &str) -> CmpOp {
    match s {
        ">" => CmpOp::Gt,
        ">=" => CmpOp::Ge,
        "<" => CmpOp::Lt,
        _ => CmpOp::Le,
    }
}
