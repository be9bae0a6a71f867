//! Variation operators on expression trees: mutation and subtree crossover.
//!
//! Both are deterministic functions of their inputs and the random stream, and both
//! return a tree within [`Limits`]: a candidate over the limits is discarded and
//! another drawn, up to [`ATTEMPTS`] times; then the parent's copy is returned (or,
//! if the parent itself is over the limits, one of its leaves).

use crate::expr::{Node, OpSet, Tree};
use rand::Rng;

/// How many candidates [`mutate`] and [`crossover`] draw before giving up.
pub const ATTEMPTS: usize = 16;
/// Probability that a leaf of a new random subtree is a constant.
pub const CONST_PROB: f64 = 0.25;
/// The largest depth of a subtree that subtree mutation grows.
pub const MAX_NEW_DEPTH: usize = 4;

/// Size and depth bounds of every tree the variation operators return.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// The most nodes.
    pub max_size: usize,
    /// The largest depth ([`Tree::depth`]: a leaf has depth 1).
    pub max_depth: usize,
}

impl Limits {
    /// Whether `t` is within the limits.
    pub fn admits(&self, t: &Tree) -> bool {
        t.size() <= self.max_size && t.depth() <= self.max_depth
    }
}

/// The kinds of mutation [`mutate`] chooses among.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Point,
    Subtree,
    Hoist,
    Shrink,
    Constant,
}

/// One mutation, chosen uniformly among those that apply to `t`:
///
/// - **point**: a node replaced by another of its kind: an operator by another of the
///   same arity from `ops`, an argument by another argument, a constant by a new one
///   (from [`crate::expr::RANDOM_CONSTS`]);
/// - **subtree**: a random subtree replaced by a new random one (grow method, depth at
///   most [`MAX_NEW_DEPTH`] and what the depth limit leaves);
/// - **hoist** (trees with an operator): a proper subtree replaces the tree;
/// - **shrink** (trees with an operator): an operator's subtree replaced by a leaf;
/// - **constant** (trees with a constant): one constant times `exp(0.5 z)` or, with
///   probability 1/2 (always for 0), plus `0.1 z`, `z` standard normal.
///
/// Within `limits` as the module doc says; deterministic given `rng`.
pub fn mutate(t: &Tree, rng: &mut impl Rng, ops: &OpSet, n_args: usize, limits: Limits) -> Tree {
    let has_op = t.nodes.iter().any(|n| matches!(n, Node::Op(_)));
    let has_const = t.nodes.iter().any(|n| matches!(n, Node::Const(_)));
    let mut kinds = vec![Kind::Point, Kind::Subtree];
    if has_op {
        kinds.extend([Kind::Hoist, Kind::Shrink]);
    }
    if has_const {
        kinds.push(Kind::Constant);
    }
    for _ in 0..ATTEMPTS {
        let kind = kinds[rng.gen_range(0..kinds.len())];
        if let Some(child) = mutate_once(t, kind, rng, ops, n_args, limits) {
            if limits.admits(&child) {
                return child;
            }
        }
    }
    fallback(t, limits)
}

/// A candidate of one kind, or `None` when the kind found nothing to change.
fn mutate_once(
    t: &Tree,
    kind: Kind,
    rng: &mut impl Rng,
    ops: &OpSet,
    n_args: usize,
    limits: Limits,
) -> Option<Tree> {
    match kind {
        Kind::Point => {
            let at = rng.gen_range(0..t.size());
            let new = match t.nodes[at] {
                Node::Op(op) => {
                    let same: Vec<_> = ops
                        .ops
                        .iter()
                        .copied()
                        .filter(|o| *o != op && o.arity() == op.arity())
                        .collect();
                    if same.is_empty() {
                        return None;
                    }
                    Node::Op(same[rng.gen_range(0..same.len())])
                }
                Node::Arg(i) => {
                    if n_args < 2 {
                        return None;
                    }
                    // Uniform among the other arguments.
                    let j = rng.gen_range(0..n_args - 1) as u8;
                    Node::Arg(if j >= i { j + 1 } else { j })
                }
                Node::Const(c) => {
                    let k = crate::expr::RANDOM_CONSTS;
                    let others: Vec<f64> = k.iter().copied().filter(|&x| x != c).collect();
                    Node::Const(others[rng.gen_range(0..others.len())])
                }
            };
            let mut out = t.clone();
            out.nodes[at] = new;
            Some(out)
        }
        Kind::Subtree => {
            let at = rng.gen_range(0..t.size());
            let level = t.levels()[at];
            let room = (limits.max_depth + 1).saturating_sub(level).max(1);
            let sub = Tree::random(rng, ops, n_args, room.min(MAX_NEW_DEPTH), CONST_PROB);
            Some(t.replace(at, &sub))
        }
        Kind::Hoist => {
            if t.size() < 2 {
                return None;
            }
            let at = rng.gen_range(1..t.size());
            Some(t.subtree(at))
        }
        Kind::Shrink => {
            let op_at: Vec<usize> = (0..t.size())
                .filter(|&i| matches!(t.nodes[i], Node::Op(_)))
                .collect();
            if op_at.is_empty() {
                return None;
            }
            let at = op_at[rng.gen_range(0..op_at.len())];
            let leaf = Tree::random_leaf(rng, n_args, CONST_PROB);
            Some(t.replace(at, &leaf))
        }
        Kind::Constant => {
            let c_at: Vec<usize> = (0..t.size())
                .filter(|&i| matches!(t.nodes[i], Node::Const(_)))
                .collect();
            if c_at.is_empty() {
                return None;
            }
            let at = c_at[rng.gen_range(0..c_at.len())];
            let Node::Const(c) = t.nodes[at] else {
                unreachable!()
            };
            let z = normal(rng);
            let new = if c == 0.0 || rng.gen_bool(0.5) {
                c + 0.1 * z
            } else {
                c * (0.5 * z).exp()
            };
            let mut out = t.clone();
            out.nodes[at] = Node::Const(new);
            Some(out)
        }
    }
}

/// Subtree crossover: a random subtree of `a` (any node, uniformly) replaced by a
/// random subtree of `b`; one child, within `limits` as the module doc says (the
/// fallback is `a`'s copy); deterministic given `rng`.
pub fn crossover(a: &Tree, b: &Tree, rng: &mut impl Rng, limits: Limits) -> Tree {
    for _ in 0..ATTEMPTS {
        let i = rng.gen_range(0..a.size());
        let j = rng.gen_range(0..b.size());
        let child = a.replace(i, &b.subtree(j));
        if limits.admits(&child) {
            return child;
        }
    }
    fallback(a, limits)
}

/// The parent's copy if it is within the limits, else its first leaf.
fn fallback(t: &Tree, limits: Limits) -> Tree {
    if limits.admits(t) {
        return t.clone();
    }
    let leaf = t
        .nodes
        .iter()
        .copied()
        .find(|n| !matches!(n, Node::Op(_)))
        .expect("a tree has a leaf");
    Tree { nodes: vec![leaf] }
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>(); // in (0, 1]
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
