//! The canonical form of an expression tree: what the search compares (duplicates) and
//! measures (complexity on the Pareto front).
//!
//! [`canonical`] rewrites bottom-up, and repeats until nothing changes:
//!
//! - **Constant folding**: a subtree without arguments becomes one constant (its value
//!   under the chosen semantics) when that value is finite; a non-finite one stays.
//! - **Sums** (`+`, `-`, `neg`, nested): flattened into terms `coefficient * term` plus
//!   one constant; like terms combined (`x + x -> 2 * x`, `x - x -> 0`, zero
//!   coefficients dropped); rebuilt left to right in the total order of trees with a
//!   positive term first (`-a + b -> b - a`), each term added or subtracted by the sign
//!   of its coefficient, the constant last (`x + 0 -> x`) or, when every term is
//!   negative and the constant positive, first (`2 - x`).
//! - **Products** (`*`, `neg`, nested): flattened into a constant coefficient and
//!   factors; a zero coefficient gives 0 (`x * 0 -> 0`), coefficient 1 disappears
//!   (`x * 1 -> x`), -1 becomes `neg` (`--x -> x`); factors sorted, rebuilt left to
//!   right after the coefficient (`2 * x * y`).
//! - **Division**: `x / c -> (1/c) * x` for a constant `c` (in the protected form,
//!   `c` replaced by the protected denominator `c + (|c| < 1e-12)`), `0 / x -> 0`,
//!   `(k * x) / y -> k * (x / y)`, and `x / x -> 1` **only unprotected** (protected,
//!   `x / x` is `x / (x + 1)`, about 0, where `x` vanishes, and a subtree may vanish
//!   without being the constant 0).
//! - **min, max**: operands sorted; `min(x, x) -> x`.
//! - **pow**: `pow(x, 0) -> 1`, `pow(1, x) -> 1`, `pow(x, 1) -> x` (protected:
//!   `abs(x)`); protected, `pow(abs x, y)` and `pow(-x, y)` drop the `abs`/`neg`.
//! - **abs, square**: `abs(abs x)`, `abs(-x) -> abs x`, `abs(square x) -> square x`,
//!   `square(-x)` and `square(abs x) -> square x`; protected, `sqrt` and `log` drop an
//!   `abs` or `neg` of their operand (they take the absolute value anyway).
//!
//! The rewrites preserve the function under [`Tree::eval`] up to float round-off
//! (reassociated sums and products, `x / c` as a product) wherever both values are
//! finite; where the input is not finite, the canonical form may be (`inf * 0` is NaN,
//! its canonical form 0). The result is never larger than the input (if a rebuilt form
//! were, the input is returned), and canonicalising twice changes nothing.
//!
//! The canonical form may contain `neg` and `*` (by a coefficient) when the input has
//! none: it is a normal form for comparing and measuring, not necessarily in the
//! search's operator set.

use crate::expr::{Node, Op, Tree, PROTECT_EPS};
use std::cmp::Ordering;

/// The canonical form of `t` under the plain (`protected = false`) or protected
/// semantics (module doc).
pub fn canonical(t: &Tree, protected: bool) -> Tree {
    let mut cur = t.clone();
    for _ in 0..64 {
        let next = simp(&cur, 0, protected);
        let done = same(&next, &cur);
        cur = next;
        if done {
            break;
        }
    }
    if cur.size() > t.size() {
        t.clone()
    } else {
        cur
    }
}

/// Complexity for the Pareto front: the size of the canonical tree.
pub fn complexity(t: &Tree, protected: bool) -> usize {
    canonical(t, protected).size()
}

/// The total order used to sort operands: prefix node sequences compared
/// lexicographically, with arguments (by index) before operators (by [`Op`]'s order)
/// before constants (by [`f64::total_cmp`]); a prefix before its extensions.
pub fn cmp_trees(a: &Tree, b: &Tree) -> Ordering {
    for (x, y) in a.nodes.iter().zip(&b.nodes) {
        let o = cmp_node(x, y);
        if o != Ordering::Equal {
            return o;
        }
    }
    a.nodes.len().cmp(&b.nodes.len())
}

fn cmp_node(a: &Node, b: &Node) -> Ordering {
    fn rank(n: &Node) -> u8 {
        match n {
            Node::Arg(_) => 0,
            Node::Op(_) => 1,
            Node::Const(_) => 2,
        }
    }
    match (a, b) {
        (Node::Arg(i), Node::Arg(j)) => i.cmp(j),
        (Node::Op(p), Node::Op(q)) => p.cmp(q),
        (Node::Const(x), Node::Const(y)) => x.total_cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Equal node for node, constants bit for bit.
fn same(a: &Tree, b: &Tree) -> bool {
    a.size() == b.size() && cmp_trees(a, b) == Ordering::Equal
}

fn has_args(t: &Tree) -> bool {
    t.nodes.iter().any(|n| matches!(n, Node::Arg(_)))
}

fn as_const(t: &Tree) -> Option<f64> {
    match t.nodes[..] {
        [Node::Const(c)] => Some(c),
        _ => None,
    }
}

/// The root operator and its operands.
fn split(t: &Tree) -> Option<(Op, Vec<Tree>)> {
    match t.nodes[0] {
        Node::Op(op) => Some((
            op,
            t.children(0).into_iter().map(|c| t.subtree(c)).collect(),
        )),
        _ => None,
    }
}

fn un(op: Op, a: Tree) -> Tree {
    Tree::apply(op, vec![a])
}

fn bin(op: Op, a: Tree, b: Tree) -> Tree {
    Tree::apply(op, vec![a, b])
}

/// One bottom-up pass over the subtree at `at`.
fn simp(t: &Tree, at: usize, p: bool) -> Tree {
    let op = match t.nodes[at] {
        Node::Op(op) => op,
        n => return Tree { nodes: vec![n] },
    };
    let kids: Vec<Tree> = t.children(at).into_iter().map(|c| simp(t, c, p)).collect();
    let node = Tree::apply(op, kids);
    if !has_args(&node) {
        let v = node.eval(&[], p);
        return if v.is_finite() {
            Tree::constant(v)
        } else {
            node
        };
    }
    rewrite(node, p)
}

/// The rules at a node whose operands are already simplified.
fn rewrite(node: Tree, p: bool) -> Tree {
    let (op, kids) = split(&node).expect("an operator node");
    match op {
        Op::Add | Op::Sub | Op::Neg => sum(&node),
        Op::Mul => product(&node),
        Op::Div => div(node, &kids[0], &kids[1], p),
        Op::Min | Op::Max => {
            let (a, b) = (&kids[0], &kids[1]);
            match cmp_trees(a, b) {
                Ordering::Equal => a.clone(),
                Ordering::Greater => bin(op, b.clone(), a.clone()),
                Ordering::Less => node,
            }
        }
        Op::Pow => {
            let (a, b) = (&kids[0], &kids[1]);
            if as_const(b) == Some(0.0) || as_const(a) == Some(1.0) {
                Tree::constant(1.0)
            } else if as_const(b) == Some(1.0) {
                if p {
                    rewrite(un(Op::Abs, a.clone()), p)
                } else {
                    a.clone()
                }
            } else if p {
                match split(a) {
                    Some((Op::Abs | Op::Neg, x)) => bin(Op::Pow, x[0].clone(), b.clone()),
                    _ => node,
                }
            } else {
                node
            }
        }
        Op::Abs => match split(&kids[0]) {
            Some((Op::Abs | Op::Neg, x)) => un(Op::Abs, x[0].clone()),
            Some((Op::Square, _)) => kids[0].clone(),
            _ => node,
        },
        Op::Square => match split(&kids[0]) {
            Some((Op::Abs | Op::Neg, x)) => un(Op::Square, x[0].clone()),
            _ => node,
        },
        Op::Sqrt | Op::Log if p => match split(&kids[0]) {
            Some((Op::Abs | Op::Neg, x)) => un(op, x[0].clone()),
            _ => node,
        },
        _ => node,
    }
}

/// Flattens a product: multiplies constants into `coef`, pushes the other factors.
fn collect_product(t: &Tree, coef: &mut f64, factors: &mut Vec<Tree>) {
    if let Some(c) = as_const(t) {
        *coef *= c;
        return;
    }
    match split(t) {
        Some((Op::Mul, k)) => {
            collect_product(&k[0], coef, factors);
            collect_product(&k[1], coef, factors);
        }
        Some((Op::Neg, k)) => {
            *coef = -*coef;
            collect_product(&k[0], coef, factors);
        }
        _ => factors.push(t.clone()),
    }
}

/// `coef * f1 * f2 * ...` left to right (`neg` for -1, nothing for 1).
fn build_product(coef: f64, factors: &[Tree]) -> Tree {
    let Some((first, rest)) = factors.split_first() else {
        return Tree::constant(coef);
    };
    let mut acc = if coef == 1.0 || coef == -1.0 {
        first.clone()
    } else {
        bin(Op::Mul, Tree::constant(coef), first.clone())
    };
    for f in rest {
        acc = bin(Op::Mul, acc, f.clone());
    }
    if coef == -1.0 {
        un(Op::Neg, acc)
    } else {
        acc
    }
}

/// A term's coefficient and its factors (sorted), as a product splits it.
fn split_coef(t: &Tree) -> (f64, Vec<Tree>) {
    let mut coef = 1.0;
    let mut factors = Vec::new();
    collect_product(t, &mut coef, &mut factors);
    factors.sort_by(cmp_trees);
    (coef, factors)
}

fn product(node: &Tree) -> Tree {
    let (coef, factors) = split_coef(node);
    if !coef.is_finite() {
        return node.clone();
    }
    if coef == 0.0 || factors.is_empty() {
        return Tree::constant(if coef == 0.0 { 0.0 } else { coef });
    }
    build_product(coef, &factors)
}

/// Flattens a sum: constants into `c`, the other terms as (coefficient, factors).
fn collect_sum(t: &Tree, sign: f64, terms: &mut Vec<(f64, Vec<Tree>)>, c: &mut f64) {
    if let Some(k) = as_const(t) {
        *c += sign * k;
        return;
    }
    match split(t) {
        Some((Op::Add, k)) => {
            collect_sum(&k[0], sign, terms, c);
            collect_sum(&k[1], sign, terms, c);
        }
        Some((Op::Sub, k)) => {
            collect_sum(&k[0], sign, terms, c);
            collect_sum(&k[1], -sign, terms, c);
        }
        Some((Op::Neg, k)) => collect_sum(&k[0], -sign, terms, c),
        _ => {
            let (coef, factors) = split_coef(t);
            terms.push((sign * coef, factors));
        }
    }
}

fn cmp_factors(a: &[Tree], b: &[Tree]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = cmp_trees(x, y);
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

fn sum(node: &Tree) -> Tree {
    let mut raw = Vec::new();
    let mut c = 0.0;
    collect_sum(node, 1.0, &mut raw, &mut c);
    raw.sort_by(|a, b| cmp_factors(&a.1, &b.1));
    // Like terms are adjacent now.
    let mut terms: Vec<(f64, Vec<Tree>)> = Vec::with_capacity(raw.len());
    for (k, f) in raw {
        match terms.last_mut() {
            Some(last) if cmp_factors(&last.1, &f) == Ordering::Equal => last.0 += k,
            _ => terms.push((k, f)),
        }
    }
    terms.retain(|(k, _)| *k != 0.0);
    if !c.is_finite() || terms.iter().any(|(k, _)| !k.is_finite()) {
        return node.clone();
    }
    if terms.is_empty() {
        return Tree::constant(if c == 0.0 { 0.0 } else { c });
    }
    // A positive term first, when there is one, so that no `neg` is needed; else a
    // positive constant (`2 - x`).
    let mut acc = None;
    if let Some(i) = terms.iter().position(|(k, _)| *k > 0.0) {
        let (k, f) = terms.remove(i);
        acc = Some(build_product(k, &f));
    } else if c > 0.0 {
        acc = Some(Tree::constant(c));
        c = 0.0;
    }
    for (k, f) in terms {
        acc = Some(match acc {
            None => build_product(k, &f),
            Some(acc) if k > 0.0 => bin(Op::Add, acc, build_product(k, &f)),
            Some(acc) => bin(Op::Sub, acc, build_product(-k, &f)),
        });
    }
    let mut acc = acc.expect("a term");
    if c > 0.0 {
        acc = bin(Op::Add, acc, Tree::constant(c));
    } else if c < 0.0 {
        acc = bin(Op::Sub, acc, Tree::constant(-c));
    }
    acc
}

fn div(node: Tree, a: &Tree, b: &Tree, p: bool) -> Tree {
    if let Some(k) = as_const(b) {
        let d = if p && k.abs() < PROTECT_EPS {
            k + 1.0
        } else {
            k
        };
        let r = 1.0 / d;
        if r.is_finite() && r != 0.0 {
            return product(&bin(Op::Mul, Tree::constant(r), a.clone()));
        }
        return node;
    }
    if as_const(a) == Some(0.0) {
        return Tree::constant(0.0);
    }
    if !p && same(a, b) {
        return Tree::constant(1.0);
    }
    let (k, factors) = split_coef(a);
    if k != 1.0 && k.is_finite() && !factors.is_empty() {
        let inner = bin(Op::Div, build_product(1.0, &factors), b.clone());
        return product(&bin(Op::Mul, Tree::constant(k), inner));
    }
    node
}
