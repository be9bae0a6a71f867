//! The genome of rule search: one expression tree per hole, over the hole's arguments.
//!
//! A [`Tree`] is a flat vector of [`Node`]s in prefix order (an operator is followed by
//! the subtrees of its operands), so copying, comparing, hashing the bits and splicing
//! subtrees (crossover) are slice operations.
//!
//! # Semantics, and the protected forms
//!
//! [`Tree::eval`] and [`Tree::to_rule_text`] mean exactly the same function: the text
//! is written in the `.rule` language with the interpreter's conventions (`min`/`max`
//! propagate NaN, a comparison gives 0 or 1), and `eval` computes the same operations
//! in the same order. With `protected`, the partial operators are made total (finite on
//! finite operands, except where a result overflows) by these forms, which equal the
//! plain operator wherever the plain one is "safe":
//!
//! | op | protected form (rule text) | equals the plain op when |
//! |---|---|---|
//! | `a / b` | `a / (b + (abs(b) < 1e-12))` | `|b| >= 1e-12` (else `a / (b + 1)`, about `a`) |
//! | `log a` | `log(max(abs(a), 1e-12))` | `|a| >= 1e-12` and `a > 0` |
//! | `sqrt a` | `sqrt(abs(a))` | `a >= 0` |
//! | `exp a` | `exp(min(a, 30))` | `a <= 30` |
//! | `pow(a, b)` | `pow(abs(a), b)` | `a >= 0` (still `inf` for `a = 0`, `b < 0`) |
//!
//! The division's threshold form (rather than a smooth `a b / (b^2 + eps)`) keeps the
//! exact quotient for every denominator that is not tiny, and round-off far below the
//! threshold cannot flip it. The other operators are total already: `square a` is
//! `a * a` (written `(a)^2`), `neg a` is `-a`, `sigmoid a` is `1 / (1 + e^-a)`.

use rand::Rng;
use serde_json::Value;
use std::fmt;

/// The threshold of the protected division and logarithm.
pub const PROTECT_EPS: f64 = 1e-12;
/// The largest argument of the protected exponential.
pub const PROTECT_EXP_MAX: f64 = 30.0;
/// The constants a random leaf draws from (uniformly).
pub const RANDOM_CONSTS: &[f64] = &[-1.0, -0.5, 0.5, 1.0, 2.0];

/// An operator of the expression language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b` (protected: see the module doc).
    Div,
    /// `pow(a, b)` (protected: `pow(abs(a), b)`).
    Pow,
    /// `min(a, b)`, NaN-propagating.
    Min,
    /// `max(a, b)`, NaN-propagating.
    Max,
    /// `-a`.
    Neg,
    /// `exp(a)` (protected: `exp(min(a, 30))`).
    Exp,
    /// Natural log (protected: `log(max(abs(a), 1e-12))`).
    Log,
    /// `tanh(a)`.
    Tanh,
    /// `1 / (1 + exp(-a))`.
    Sigmoid,
    /// `sqrt(a)` (protected: `sqrt(abs(a))`).
    Sqrt,
    /// `abs(a)`.
    Abs,
    /// `a * a`.
    Square,
}

impl Op {
    /// Every operator, in declaration order.
    pub const ALL: &'static [Op] = &[
        Op::Add,
        Op::Sub,
        Op::Mul,
        Op::Div,
        Op::Pow,
        Op::Min,
        Op::Max,
        Op::Neg,
        Op::Exp,
        Op::Log,
        Op::Tanh,
        Op::Sigmoid,
        Op::Sqrt,
        Op::Abs,
        Op::Square,
    ];

    /// Number of operands: 2 for `+ - * / pow min max`, else 1.
    pub fn arity(self) -> usize {
        match self {
            Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Pow | Op::Min | Op::Max => 2,
            _ => 1,
        }
    }

    /// The operator's name in operator sets and JSON (`+`, `pow`, `square`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
            Op::Div => "/",
            Op::Pow => "pow",
            Op::Min => "min",
            Op::Max => "max",
            Op::Neg => "neg",
            Op::Exp => "exp",
            Op::Log => "log",
            Op::Tanh => "tanh",
            Op::Sigmoid => "sigmoid",
            Op::Sqrt => "sqrt",
            Op::Abs => "abs",
            Op::Square => "square",
        }
    }

    /// The operator named `name` (as [`Op::name`] spells it).
    pub fn parse(name: &str) -> Option<Op> {
        Op::ALL.iter().copied().find(|op| op.name() == name)
    }

    /// The operator applied to `x` (its first `arity` values), plain or protected:
    /// built from the language's own scalar operations ([`lang::algebra::eval_un`],
    /// [`lang::algebra::eval_bin`]), so a tree means what its rule text means.
    pub fn apply(self, x: &[f64], protected: bool) -> f64 {
        use lang::algebra::{eval_bin as bin, eval_un as un};
        use lang::ir::{BinOp as B, UnOp as U};
        let a = x[0];
        let b = || x[1];
        match (self, protected) {
            (Op::Add, _) => bin(B::Add, a, b()),
            (Op::Sub, _) => bin(B::Sub, a, b()),
            (Op::Mul, _) => bin(B::Mul, a, b()),
            (Op::Div, true) => {
                let tiny = bin(B::Lt, un(U::Abs, b()), PROTECT_EPS);
                bin(B::Div, a, bin(B::Add, b(), tiny))
            }
            (Op::Div, false) => bin(B::Div, a, b()),
            (Op::Pow, true) => bin(B::Pow, un(U::Abs, a), b()),
            (Op::Pow, false) => bin(B::Pow, a, b()),
            (Op::Min, _) => bin(B::Min, a, b()),
            (Op::Max, _) => bin(B::Max, a, b()),
            (Op::Neg, _) => un(U::Neg, a),
            (Op::Exp, true) => un(U::Exp, bin(B::Min, a, PROTECT_EXP_MAX)),
            (Op::Exp, false) => un(U::Exp, a),
            (Op::Log, true) => un(U::Log, bin(B::Max, un(U::Abs, a), PROTECT_EPS)),
            (Op::Log, false) => un(U::Log, a),
            (Op::Tanh, _) => un(U::Tanh, a),
            (Op::Sigmoid, _) => un(U::Sigmoid, a),
            (Op::Sqrt, true) => un(U::Sqrt, un(U::Abs, a)),
            (Op::Sqrt, false) => un(U::Sqrt, a),
            (Op::Abs, _) => un(U::Abs, a),
            (Op::Square, _) => bin(B::Mul, a, a),
        }
    }
}

/// The operators a search may use, and whether the partial ones are protected.
#[derive(Clone, Debug, PartialEq)]
pub struct OpSet {
    /// The operators, without duplicates, in the order given.
    pub ops: Vec<Op>,
    /// Whether `/ log sqrt exp pow` use their protected forms (module doc).
    pub protected: bool,
}

impl OpSet {
    /// Parses `"+,-,*,/,exp"` (names separated by commas and/or spaces; duplicates are
    /// dropped). The error names the unknown operator and lists the known ones.
    pub fn parse(spec: &str, protected: bool) -> Result<OpSet, String> {
        let mut ops = Vec::new();
        for name in spec
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            let Some(op) = Op::parse(name) else {
                let known: Vec<&str> = Op::ALL.iter().map(|o| o.name()).collect();
                return Err(format!(
                    "unknown operator `{name}`; known operators: {}",
                    known.join(" ")
                ));
            };
            if !ops.contains(&op) {
                ops.push(op);
            }
        }
        if ops.is_empty() {
            return Err("no operators given (e.g. \"+,-,*\")".into());
        }
        Ok(OpSet { ops, protected })
    }
}

impl Default for OpSet {
    /// `+ - *`, protected.
    fn default() -> Self {
        OpSet {
            ops: vec![Op::Add, Op::Sub, Op::Mul],
            protected: true,
        }
    }
}

/// One node of a [`Tree`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Node {
    /// The hole's argument number `i`.
    Arg(u8),
    /// A constant (tuned by gradient in the search).
    Const(f64),
    /// An operator, followed in prefix order by its operands.
    Op(Op),
}

impl Node {
    /// Number of operands: 0 for leaves.
    pub fn arity(self) -> usize {
        match self {
            Node::Op(op) => op.arity(),
            _ => 0,
        }
    }
}

/// An expression in prefix order: an operator is followed by its operands' subtrees.
#[derive(Clone, Debug, PartialEq)]
pub struct Tree {
    /// The nodes, root first.
    pub nodes: Vec<Node>,
}

/// Binding strengths of infix text (higher binds tighter); see [`Tree::formula`].
const P_SUM: u8 = 1;
const P_PRODUCT: u8 = 2;
const P_UNARY: u8 = 3;
const P_POWER: u8 = 4;
const P_ATOM: u8 = 5;

impl Tree {
    /// The argument `i` alone.
    pub fn arg(i: u8) -> Tree {
        Tree {
            nodes: vec![Node::Arg(i)],
        }
    }

    /// The constant `c` alone.
    pub fn constant(c: f64) -> Tree {
        Tree {
            nodes: vec![Node::Const(c)],
        }
    }

    /// `op` applied to `children`. Panics unless there are `op.arity()` children.
    pub fn apply(op: Op, children: Vec<Tree>) -> Tree {
        assert_eq!(
            children.len(),
            op.arity(),
            "{} takes {} operands",
            op.name(),
            op.arity()
        );
        let mut nodes = Vec::with_capacity(1 + children.iter().map(Tree::size).sum::<usize>());
        nodes.push(Node::Op(op));
        for c in children {
            nodes.extend(c.nodes);
        }
        Tree { nodes }
    }

    /// Number of nodes.
    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    /// Number of nodes on the longest path from the root to a leaf (a leaf has depth 1).
    pub fn depth(&self) -> usize {
        self.levels().into_iter().max().unwrap_or(0)
    }

    /// The level of every node: 1 for the root, its parent's plus 1 for the others.
    pub fn levels(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.nodes.len());
        // Open operators: (level, operands still expected).
        let mut stack: Vec<(usize, usize)> = Vec::new();
        for n in &self.nodes {
            let level = stack.last().map_or(1, |&(l, _)| l + 1);
            out.push(level);
            if let Some(top) = stack.last_mut() {
                top.1 -= 1;
            }
            while stack.last().is_some_and(|&(_, left)| left == 0) {
                stack.pop();
            }
            if n.arity() > 0 {
                stack.push((level, n.arity()));
            }
        }
        out
    }

    /// The start indices of the operands of the node at `at` (empty for a leaf).
    pub fn children(&self, at: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(2);
        let mut i = at + 1;
        for _ in 0..self.nodes[at].arity() {
            out.push(i);
            i = self.subtree_end(i);
        }
        out
    }

    /// One past the last node of the subtree at `at`.
    pub fn subtree_end(&self, at: usize) -> usize {
        let mut need = 1usize;
        let mut i = at;
        while need > 0 {
            need = need + self.nodes[i].arity() - 1;
            i += 1;
        }
        i
    }

    /// The subtree at `at`, as a tree.
    pub fn subtree(&self, at: usize) -> Tree {
        Tree {
            nodes: self.nodes[at..self.subtree_end(at)].to_vec(),
        }
    }

    /// This tree with the subtree at `at` replaced by `by`.
    pub fn replace(&self, at: usize, by: &Tree) -> Tree {
        let end = self.subtree_end(at);
        let mut nodes = Vec::with_capacity(self.size() - (end - at) + by.size());
        nodes.extend_from_slice(&self.nodes[..at]);
        nodes.extend_from_slice(&by.nodes);
        nodes.extend_from_slice(&self.nodes[end..]);
        Tree { nodes }
    }

    /// The constants, in prefix order.
    pub fn consts(&self) -> Vec<f64> {
        self.nodes
            .iter()
            .filter_map(|n| match n {
                Node::Const(c) => Some(*c),
                _ => None,
            })
            .collect()
    }

    /// This tree with its constants replaced, in prefix order, by `c`. Panics unless
    /// `c` has one value per constant.
    pub fn with_consts(&self, c: &[f64]) -> Tree {
        let mut it = c.iter();
        let nodes = self
            .nodes
            .iter()
            .map(|n| match n {
                Node::Const(_) => Node::Const(*it.next().expect("too few constants")),
                n => *n,
            })
            .collect();
        assert!(it.next().is_none(), "too many constants");
        Tree { nodes }
    }

    /// Whether argument `i` occurs.
    pub fn uses_arg(&self, i: u8) -> bool {
        self.nodes.contains(&Node::Arg(i))
    }

    /// One more than the largest argument index used (0 without arguments).
    pub fn n_args(&self) -> usize {
        self.nodes
            .iter()
            .filter_map(|n| match n {
                Node::Arg(i) => Some(*i as usize + 1),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// Whether the tree is well formed: every operator has its operands, nothing follows.
    pub fn is_valid(&self) -> bool {
        let mut need = 1usize;
        for n in &self.nodes {
            if need == 0 {
                return false;
            }
            need = need + n.arity() - 1;
        }
        need == 0
    }

    /// The value at `args`, with the protected forms when `protected` (exactly the
    /// semantics of [`Tree::to_rule_text`]). Panics if an argument index is out of range.
    pub fn eval(&self, args: &[f64], protected: bool) -> f64 {
        // Reversed prefix order: operands are on the stack, the first one on top.
        let mut stack: Vec<f64> = Vec::with_capacity(8);
        for n in self.nodes.iter().rev() {
            let v = match *n {
                Node::Arg(i) => args[i as usize],
                Node::Const(c) => c,
                Node::Op(op) => {
                    let mut x = [0.0; 2];
                    for slot in x.iter_mut().take(op.arity()) {
                        *slot = stack.pop().expect("malformed tree");
                    }
                    op.apply(&x, protected)
                }
            };
            stack.push(v);
        }
        stack.pop().expect("empty tree")
    }

    /// Expression text in the `.rule` language (`grammar/LANGUAGE.md`) with the same
    /// value as [`Tree::eval`]: argument `i` is `args[i]` (parenthesized unless it is a
    /// name or a number), constant number `k` (prefix order) is `constant(k, value)`
    /// (a literal such as [`literal`] gives, or a parameter name; called for every
    /// occurrence, so twice with the same `k` for a constant in a protected division's
    /// denominator, which the text repeats). The protected forms
    /// are the module doc's; `pow` is `pow(a, b)`, `square` is `(a)^2`, `neg` is `-a`.
    /// Parentheses are as few as keep the tree's exact evaluation order.
    pub fn to_rule_text(
        &self,
        args: &[&str],
        protected: bool,
        constant: &mut dyn FnMut(usize, f64) -> String,
    ) -> String {
        // Constant number of each node (prefix order), so that a protected division's
        // denominator, written twice, names its constants the same both times.
        let mut const_no = Vec::with_capacity(self.size());
        let mut k = 0;
        for n in &self.nodes {
            const_no.push(k);
            k += usize::from(matches!(n, Node::Const(_)));
        }
        let mut leaf = |at: usize, n: Node| -> (String, u8) {
            match n {
                Node::Arg(i) => {
                    let s = args[i as usize];
                    (s.to_string(), text_prec(s))
                }
                Node::Const(c) => {
                    let s = constant(const_no[at], c);
                    let p = text_prec(&s);
                    (s, p)
                }
                Node::Op(_) => unreachable!(),
            }
        };
        self.infix(0, &mut leaf, Style::Rule { protected }).0
    }

    /// Readable infix formula (fewest parentheses that keep the tree, constants with up
    /// to 4 significant digits, e.g. `E * (R - 1)`), argument `i` named `names[i]`;
    /// protected operators are shown as the plain ones.
    pub fn formula(&self, names: &[&str]) -> String {
        let mut leaf = |_: usize, n: Node| -> (String, u8) {
            match n {
                Node::Arg(i) => {
                    let s = names[i as usize];
                    (s.to_string(), text_prec(s))
                }
                Node::Const(c) => {
                    let s = short_number(c);
                    let p = text_prec(&s);
                    (s, p)
                }
                Node::Op(_) => unreachable!(),
            }
        };
        self.infix(0, &mut leaf, Style::Formula).0
    }

    /// Infix text of the subtree at `at` and its binding strength.
    fn infix(
        &self,
        at: usize,
        leaf: &mut dyn FnMut(usize, Node) -> (String, u8),
        style: Style,
    ) -> (String, u8) {
        let op = match self.nodes[at] {
            Node::Op(op) => op,
            n => return leaf(at, n),
        };
        let kids = self.children(at);
        let mut operand = |i: usize, min: u8| -> String {
            let (s, p) = self.infix(kids[i], leaf, style);
            if p < min {
                format!("({s})")
            } else {
                s
            }
        };
        let protected = matches!(style, Style::Rule { protected: true });
        let call = |f: &str, a: String| (format!("{f}({a})"), P_ATOM);
        match op {
            Op::Add | Op::Sub => {
                let a = operand(0, P_SUM);
                let b = operand(1, P_PRODUCT);
                (format!("{a} {} {b}", op.name()), P_SUM)
            }
            Op::Mul => {
                let a = operand(0, P_PRODUCT);
                let b = operand(1, P_UNARY);
                (format!("{a} * {b}"), P_PRODUCT)
            }
            Op::Div => {
                let a = operand(0, P_PRODUCT);
                if protected {
                    let b = operand(1, P_SUM);
                    let b_abs = operand(1, 0);
                    (
                        format!("{a} / ({b} + (abs({b_abs}) < {}))", literal(PROTECT_EPS)),
                        P_PRODUCT,
                    )
                } else {
                    let b = operand(1, P_UNARY);
                    (format!("{a} / {b}"), P_PRODUCT)
                }
            }
            Op::Pow => match style {
                Style::Formula => {
                    let a = operand(0, P_ATOM);
                    let b = operand(1, P_UNARY);
                    (format!("{a}^{b}"), P_POWER)
                }
                Style::Rule { .. } => {
                    let a = operand(0, 0);
                    let b = operand(1, 0);
                    if protected {
                        (format!("pow(abs({a}), {b})"), P_ATOM)
                    } else {
                        (format!("pow({a}, {b})"), P_ATOM)
                    }
                }
            },
            Op::Min | Op::Max => {
                let a = operand(0, 0);
                let b = operand(1, 0);
                (format!("{}({a}, {b})", op.name()), P_ATOM)
            }
            Op::Neg => {
                let a = operand(0, P_POWER);
                (format!("-{a}"), P_UNARY)
            }
            Op::Square => {
                let a = operand(0, P_ATOM);
                (format!("{a}^2"), P_POWER)
            }
            Op::Exp if protected => {
                let a = operand(0, 0);
                call("exp", format!("min({a}, {})", literal(PROTECT_EXP_MAX)))
            }
            Op::Log if protected => {
                let a = operand(0, 0);
                call("log", format!("max(abs({a}), {})", literal(PROTECT_EPS)))
            }
            Op::Sqrt if protected => {
                let a = operand(0, 0);
                call("sqrt", format!("abs({a})"))
            }
            Op::Exp | Op::Log | Op::Tanh | Op::Sigmoid | Op::Sqrt | Op::Abs => {
                let a = operand(0, 0);
                call(op.name(), a)
            }
        }
    }

    /// A random tree by the "grow" method: depth at most `max_depth` (at least 1); the
    /// root is an operator when `max_depth >= 2`, every other node a leaf with
    /// probability 0.3 (always at the last level); operators are drawn uniformly from
    /// `ops.ops`; a leaf is a constant with probability `const_prob` (always when
    /// `n_args == 0`), drawn uniformly from [`RANDOM_CONSTS`], else an argument drawn
    /// uniformly from `0..n_args`.
    pub fn random(
        rng: &mut impl Rng,
        ops: &OpSet,
        n_args: usize,
        max_depth: usize,
        const_prob: f64,
    ) -> Tree {
        let mut nodes = Vec::new();
        grow(
            rng,
            ops,
            n_args,
            max_depth.max(1),
            const_prob,
            true,
            &mut nodes,
        );
        Tree { nodes }
    }

    /// A random leaf: a constant with probability `const_prob` (or when `n_args == 0`)
    /// from [`RANDOM_CONSTS`], else a uniform argument.
    pub fn random_leaf(rng: &mut impl Rng, n_args: usize, const_prob: f64) -> Tree {
        Tree {
            nodes: vec![random_leaf(rng, n_args, const_prob)],
        }
    }

    /// Compact JSON: an argument is `"a<i>"`, a constant a number (`"inf"`, `"-inf"`,
    /// `"nan"` when not finite), an operator `[name, operand, ...]`, e.g.
    /// `["*", "a0", ["-", "a1", 1.0]]`. Constants come back bit for bit (serde_json's
    /// `float_roundtrip`).
    pub fn to_json(&self) -> Value {
        fn rec(t: &Tree, at: usize) -> Value {
            match t.nodes[at] {
                Node::Arg(i) => Value::String(format!("a{i}")),
                Node::Const(c) if c.is_finite() => Value::from(c),
                Node::Const(c) => Value::String(
                    if c.is_nan() {
                        "nan"
                    } else if c > 0.0 {
                        "inf"
                    } else {
                        "-inf"
                    }
                    .into(),
                ),
                Node::Op(op) => {
                    let mut v = vec![Value::String(op.name().into())];
                    v.extend(t.children(at).into_iter().map(|c| rec(t, c)));
                    Value::Array(v)
                }
            }
        }
        rec(self, 0)
    }

    /// Reads [`Tree::to_json`]'s form; the error says what is wrong where.
    pub fn from_json(v: &Value) -> Result<Tree, String> {
        fn rec(v: &Value, out: &mut Vec<Node>) -> Result<(), String> {
            match v {
                Value::Number(n) => {
                    let c = n.as_f64().ok_or_else(|| format!("bad number {n}"))?;
                    out.push(Node::Const(c));
                }
                Value::String(s) => out.push(match s.as_str() {
                    "inf" => Node::Const(f64::INFINITY),
                    "-inf" => Node::Const(f64::NEG_INFINITY),
                    "nan" => Node::Const(f64::NAN),
                    _ => {
                        let i = s
                            .strip_prefix('a')
                            .and_then(|d| d.parse::<u8>().ok())
                            .ok_or_else(|| {
                                format!("bad leaf \"{s}\": expected an argument `a<i>` or a number")
                            })?;
                        Node::Arg(i)
                    }
                }),
                Value::Array(items) => {
                    let name = items
                        .first()
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("an operator node starts with its name: {v}"))?;
                    let op = Op::parse(name).ok_or_else(|| format!("unknown operator `{name}`"))?;
                    if items.len() != op.arity() + 1 {
                        return Err(format!(
                            "`{name}` takes {} operands, got {}",
                            op.arity(),
                            items.len() - 1
                        ));
                    }
                    out.push(Node::Op(op));
                    for c in &items[1..] {
                        rec(c, out)?;
                    }
                }
                _ => return Err(format!("not an expression: {v}")),
            }
            Ok(())
        }
        let mut nodes = Vec::new();
        rec(v, &mut nodes)?;
        Ok(Tree { nodes })
    }
}

impl fmt::Display for Tree {
    /// [`Tree::formula`] with the arguments named `a0`, `a1`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = (0..self.n_args()).map(|i| format!("a{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        f.write_str(&self.formula(&names))
    }
}

/// What [`Tree::infix`] writes: rule text (protected or not) or a formula for people.
#[derive(Clone, Copy)]
enum Style {
    Rule { protected: bool },
    Formula,
}

/// The binding strength of a leaf's text: a name (`pre.out`) or an unsigned number
/// (`1e-12`) is an atom, a minus sign before one a unary minus, anything else is
/// parenthesized wherever it is used.
fn text_prec(s: &str) -> u8 {
    fn atom(s: &str) -> bool {
        let name = s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        let number = s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
            && s.parse::<f64>().is_ok();
        name || number
    }
    if atom(s) {
        P_ATOM
    } else if s.strip_prefix('-').is_some_and(atom) {
        P_UNARY
    } else {
        0
    }
}

pub use lang::fill::literal;

/// A constant rounded to 4 significant digits, in the shorter of plain and exponent form.
pub fn short_number(c: f64) -> String {
    if !c.is_finite() {
        return format!("{c}");
    }
    let r: f64 = format!("{c:.3e}").parse().unwrap_or(c);
    literal(r)
}

/// The "grow" method: appends a random subtree of depth at most `depth` to `out`.
fn grow(
    rng: &mut impl Rng,
    ops: &OpSet,
    n_args: usize,
    depth: usize,
    const_prob: f64,
    root: bool,
    out: &mut Vec<Node>,
) {
    let leaf = ops.ops.is_empty() || depth <= 1 || (!root && rng.gen_bool(0.3));
    if leaf {
        out.push(random_leaf(rng, n_args, const_prob));
        return;
    }
    let op = ops.ops[rng.gen_range(0..ops.ops.len())];
    out.push(Node::Op(op));
    for _ in 0..op.arity() {
        grow(rng, ops, n_args, depth - 1, const_prob, false, out);
    }
}

/// A random leaf node (see [`Tree::random_leaf`]).
fn random_leaf(rng: &mut impl Rng, n_args: usize, const_prob: f64) -> Node {
    if n_args == 0 || rng.gen_bool(const_prob.clamp(0.0, 1.0)) {
        Node::Const(RANDOM_CONSTS[rng.gen_range(0..RANDOM_CONSTS.len())])
    } else {
        Node::Arg(rng.gen_range(0..n_args.min(256)) as u8)
    }
}

impl Tree {
    /// Parses a formula in the notation of [`Tree::formula`] (and of the rule
    /// language): numbers, the argument `names`, `+ - * / ^`, unary minus, parentheses,
    /// and the functions `exp log tanh sigmoid sqrt abs square neg` (one argument) and
    /// `min max pow` (two). `x ^ y` is `pow(x, y)`. Errors say what and where.
    pub fn parse(text: &str, names: &[&str]) -> Result<Tree, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            at: 0,
            names,
        };
        let t = p.sum()?;
        p.space();
        if p.at < p.s.len() {
            return Err(p.err("expected an operator or the end"));
        }
        Ok(t)
    }
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    names: &'a [&'a str],
}

impl Parser<'_> {
    fn space(&mut self) {
        while self.at < self.s.len() && self.s[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }
    fn err(&self, what: &str) -> String {
        format!("{what} at column {}", self.at + 1)
    }
    fn eat(&mut self, c: u8) -> bool {
        self.space();
        if self.s.get(self.at) == Some(&c) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    fn sum(&mut self) -> Result<Tree, String> {
        let mut t = self.product()?;
        loop {
            if self.eat(b'+') {
                t = Tree::apply(Op::Add, vec![t, self.product()?]);
            } else if self.eat(b'-') {
                t = Tree::apply(Op::Sub, vec![t, self.product()?]);
            } else {
                return Ok(t);
            }
        }
    }
    fn product(&mut self) -> Result<Tree, String> {
        let mut t = self.unary()?;
        loop {
            if self.eat(b'*') {
                t = Tree::apply(Op::Mul, vec![t, self.unary()?]);
            } else if self.eat(b'/') {
                t = Tree::apply(Op::Div, vec![t, self.unary()?]);
            } else {
                return Ok(t);
            }
        }
    }
    fn unary(&mut self) -> Result<Tree, String> {
        if self.eat(b'-') {
            return Ok(Tree::apply(Op::Neg, vec![self.unary()?]));
        }
        let base = self.atom()?;
        if self.eat(b'^') {
            return Ok(Tree::apply(Op::Pow, vec![base, self.unary()?]));
        }
        Ok(base)
    }
    fn atom(&mut self) -> Result<Tree, String> {
        self.space();
        if self.eat(b'(') {
            let t = self.sum()?;
            if !self.eat(b')') {
                return Err(self.err("expected `)`"));
            }
            return Ok(t);
        }
        let start = self.at;
        let c = *self
            .s
            .get(self.at)
            .ok_or_else(|| self.err("unexpected end"))?;
        if c.is_ascii_digit() || c == b'.' {
            while self.at < self.s.len()
                && (self.s[self.at].is_ascii_alphanumeric()
                    || self.s[self.at] == b'.'
                    || ((self.s[self.at] == b'-' || self.s[self.at] == b'+')
                        && matches!(self.s[self.at - 1], b'e' | b'E')))
            {
                self.at += 1;
            }
            let num = std::str::from_utf8(&self.s[start..self.at]).unwrap_or("");
            return num
                .parse::<f64>()
                .map(Tree::constant)
                .map_err(|_| format!("`{num}` is not a number at column {}", start + 1));
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            while self.at < self.s.len()
                && (self.s[self.at].is_ascii_alphanumeric()
                    || matches!(self.s[self.at], b'_' | b'.'))
            {
                self.at += 1;
            }
            let name = std::str::from_utf8(&self.s[start..self.at]).unwrap_or("");
            if let Some(i) = self.names.iter().position(|n| *n == name) {
                return Ok(Tree::arg(i as u8));
            }
            let op =
                Op::parse(name).filter(|o| !matches!(o, Op::Add | Op::Sub | Op::Mul | Op::Div));
            let Some(op) = op else {
                return Err(format!(
                    "unknown name `{name}` at column {} (the arguments are {})",
                    start + 1,
                    self.names.join(", ")
                ));
            };
            if !self.eat(b'(') {
                return Err(self.err(&format!("expected `(` after `{name}`")));
            }
            let mut args = vec![self.sum()?];
            while self.eat(b',') {
                args.push(self.sum()?);
            }
            if !self.eat(b')') {
                return Err(self.err("expected `)`"));
            }
            if args.len() != op.arity() {
                return Err(format!(
                    "`{name}` takes {} argument(s), found {} (column {})",
                    op.arity(),
                    args.len(),
                    start + 1
                ));
            }
            return Ok(Tree::apply(op, args));
        }
        Err(self.err(&format!("unexpected `{}`", c as char)))
    }
}
