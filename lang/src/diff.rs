//! `diff`: the adjoint of a step, as another step (IR -> IR, reverse mode).
//!
//! A forward step maps `(params, state(t), inputs(t))` to `state(t+1)`. Its adjoint
//! maps `(params, state(t), inputs(t), adj(t+1), grad)` to `(adj(t), grad')`, where
//! `adj(v)` is dL/dv for every state variable `v` and `grad(p)` accumulates dL/dp for
//! every `learn` parameter `p`, one value per episode. The adjoint module is the
//! forward module plus these variables, so the forward values the derivatives need are
//! the same hash-consed nodes, recomputed from `state(t)` (which backpropagation
//! through time restores from a checkpoint before each adjoint step). Forward state
//! variables keep their values across an adjoint step.
//!
//! Next states: where the adjoint step needs the value of a forward update (W1's
//! `E(t+1)` in the plastic component's clip, `v(t+1)` in the surrogate), it reads it
//! from an input variable `next.v` ([`Adjoint::next`]) instead of recomputing it:
//! backpropagation through time sets it to `state(t+1)`, which it keeps anyway. What
//! only served to compute those values (W1: the forward currents, `l_e E(t)`) is then
//! no longer part of the adjoint step.
//!
//! Rules, node by node (`ā` is the adjoint of a node): derivatives of arithmetic from
//! [`crate::algebra`]; a spike differentiates through its surrogate; a clip passes `ā`
//! strictly inside its bounds; comparisons pass nothing; the adjoint of `Bcast(Pre)` is
//! `SumPost` and of `Bcast(Post)` is `SumPre`, and of a reduction a broadcast; a value
//! used by a node of a larger space (a parameter in a neuron update, say) receives the
//! sum of its users' adjoints over that space.

use crate::ir::{Expr, ExprId, Init, Module, Side, Space, VarId, VarKind};
use std::collections::HashMap;

/// A module's adjoint step and how its variables relate to the forward module's.
#[derive(Clone, Debug)]
pub struct Adjoint {
    /// The adjoint step (forward variables first, with the same handles).
    pub module: Module,
    /// For each forward state variable, its adjoint variable.
    pub adj: Vec<(VarId, VarId)>,
    /// For each `learn` parameter, its per-episode gradient accumulator.
    pub grads: Vec<(VarId, VarId)>,
    /// For each forward state whose next value the adjoint step reads, the input
    /// variable that must hold it: the state after the forward step that the adjoint
    /// step differentiates (see the module doc).
    pub next: Vec<(VarId, VarId)>,
    /// Run once after the last adjoint step (same variables as `module`): adds the
    /// gradients that flow through the initial values of states.
    pub init: Module,
}

/// Why a module cannot be differentiated.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DiffError {
    /// A hole has no expression to differentiate.
    #[error("the hole `?{0}` has no expression yet: a rule with holes cannot be differentiated")]
    Hole(String),
}

/// Builds the adjoint step of `m`.
pub fn diff(m: &Module) -> Result<Adjoint, DiffError> {
    let mut a = m.clone();
    let live = m.live_step();
    let zero = a.constant(0.0);
    // New variables: adjoints of states, gradients of learnable parameters.
    let states: Vec<VarId> = m
        .vars
        .iter()
        .filter(|(_, v)| matches!(v.kind, VarKind::State { .. }))
        .map(|(h, _)| h)
        .collect();
    let learn: Vec<VarId> = m
        .vars
        .iter()
        .filter(|(_, v)| matches!(v.kind, VarKind::Param { learn: true, .. }))
        .map(|(h, _)| h)
        .collect();
    let mut adj = Vec::new();
    for &s in &states {
        let var = m.vars[s].clone();
        let unit = var.unit;
        let v = a.vars.push(crate::ir::Var {
            name: format!("adj.{}", var.name),
            space: var.space,
            kind: VarKind::State {
                init: Init::Expr(zero),
            },
            unit: -unit,
        });
        adj.push((s, v));
    }
    let mut grads = Vec::new();
    for &p in &learn {
        let var = m.vars[p].clone();
        let v = a.vars.push(crate::ir::Var {
            name: format!("grad.{}", var.name),
            space: var.space,
            kind: VarKind::State {
                init: Init::Expr(zero),
            },
            unit: -var.unit,
        });
        grads.push((p, v));
    }
    // Seeds: the adjoint of each update's value is the adjoint of the next state.
    let mut bar: HashMap<ExprId, ExprId> = HashMap::new();
    for (&(s, e), &(_, av)) in m.updates.iter().zip(&adj) {
        debug_assert_eq!(s, adj.iter().find(|x| x.0 == s).expect("adj").0);
        let seed = a.add(Expr::Read(av));
        accumulate(&mut a, &mut bar, e, seed);
    }
    // Reverse sweep over the live step, users before operands.
    sweep(&mut a, &mut bar, &live)?;
    // The adjoint step's updates.
    let mut updates = Vec::new();
    let all_states: Vec<VarId> = a
        .vars
        .iter()
        .filter(|(_, var)| matches!(var.kind, VarKind::State { .. }))
        .map(|(v, _)| v)
        .collect();
    for v in all_states {
        let read = a.add(Expr::Read(v));
        let value = if let Some(&(s, _)) = adj.iter().find(|x| x.1 == v) {
            let r = a.add(Expr::Read(s));
            bar.get(&r).copied().unwrap_or(zero)
        } else if let Some(&(p, _)) = grads.iter().find(|x| x.1 == v) {
            let r = a.add(Expr::Read(p));
            match bar.get(&r) {
                Some(&g) => a.mk_add(read, g),
                None => read,
            }
        } else {
            read // forward states keep their values
        };
        updates.push((v, value));
    }
    a.updates = updates;
    a.readouts.clear();
    let next = read_next_states(m, &mut a);
    // Gradients through initial values (`state w = w0` with `learn w0`): one more
    // sweep, over the initializers, seeded by the adjoints of the initial states.
    let mut init = a.clone();
    let mut ibar: HashMap<ExprId, ExprId> = HashMap::new();
    let mut init_live = vec![false; live.len()];
    for &(s, av) in &adj {
        if let VarKind::State {
            init: Init::Expr(e),
        } = m.vars[s].kind
        {
            let seed = init.add(Expr::Read(av));
            accumulate(&mut init, &mut ibar, e, seed);
            let mut stack = vec![e];
            while let Some(x) = stack.pop() {
                if x.index() < init_live.len()
                    && !std::mem::replace(&mut init_live[x.index()], true)
                {
                    stack.extend(m.expr(x).operands());
                }
            }
        }
    }
    sweep(&mut init, &mut ibar, &init_live)?;
    let states_now: Vec<VarId> = a.updates.iter().map(|&(v, _)| v).collect();
    init.updates = states_now
        .into_iter()
        .map(|v| {
            let read = init.add(Expr::Read(v));
            let value = match grads.iter().find(|x| x.1 == v) {
                Some(&(p, _)) => {
                    let r = init.add(Expr::Read(p));
                    match ibar.get(&r) {
                        Some(&g) => init.mk_add(read, g),
                        None => read,
                    }
                }
                None => read,
            };
            (v, value)
        })
        .collect();
    Ok(Adjoint {
        module: a,
        init,
        adj,
        grads,
        next,
    })
}

/// Replaces, in the adjoint step's updates, each forward update's value (a computed
/// node of the variable's space) by a read of a new input variable `next.v`, and
/// returns the pairs (state, input) made.
fn read_next_states(m: &Module, a: &mut Module) -> Vec<(VarId, VarId)> {
    let live = a.live_step();
    let mut next = Vec::new();
    let mut memo: HashMap<ExprId, ExprId> = HashMap::new();
    for &(s, e) in &m.updates {
        let var = m.vars[s].clone();
        if !live[e.index()]
            || matches!(m.expr(e), Expr::Read(_) | Expr::Const(_))
            || m.space(e) != var.space
        {
            continue;
        }
        let v = a.vars.push(crate::ir::Var {
            name: format!("next.{}", var.name),
            space: var.space,
            kind: VarKind::Input,
            unit: var.unit,
        });
        let read = a.add(Expr::Read(v));
        memo.insert(e, read);
        next.push((s, v));
    }
    if !next.is_empty() {
        let updates = std::mem::take(&mut a.updates);
        a.updates = updates
            .into_iter()
            .map(|(v, e)| (v, a.subst_all(e, &mut memo)))
            .collect();
    }
    next
}

/// Propagates adjoints from users to operands over the nodes marked in `live` (of the
/// forward arena), in reverse arena order.
fn sweep(
    a: &mut Module,
    bar: &mut HashMap<ExprId, ExprId>,
    live: &[bool],
) -> Result<(), DiffError> {
    let zero = a.constant(0.0);
    let n_forward = live.len();
    for n in (0..n_forward).rev().map(crate::ir::Handle::new) {
        if !live[n.index()] {
            continue;
        }
        let Some(&g) = bar.get(&n) else { continue };
        if a.as_const(g) == Some(0.0) {
            continue;
        }
        match a.expr(n).clone() {
            Expr::Const(_) | Expr::Read(_) => {}
            Expr::Hole(name, _) => return Err(DiffError::Hole(name)),
            Expr::Unary(op, x) => {
                let d = a.unary_partial(op, x, n);
                let c = a.mk_mul(g, d);
                accumulate(a, bar, x, c);
            }
            Expr::Binary(op, x, y) => {
                let one = a.constant(1.0);
                let dx = a.binary_partials(op, x, y, n, one, zero);
                let dy = a.binary_partials(op, x, y, n, zero, one);
                let cx = a.mk_mul(g, dx);
                let cy = a.mk_mul(g, dy);
                accumulate(a, bar, x, cx);
                accumulate(a, bar, y, cy);
            }
            Expr::Clip(x, lo, hi) => {
                let above = a.mk_bin(crate::ir::BinOp::Lt, lo, x);
                let below = a.mk_bin(crate::ir::BinOp::Lt, x, hi);
                let inside = a.mk_mul(above, below);
                let c = a.mk_mul(g, inside);
                accumulate(a, bar, x, c);
                let under = a.mk_bin(crate::ir::BinOp::Lt, x, lo);
                let cl = a.mk_mul(g, under);
                accumulate(a, bar, lo, cl);
                let over = a.mk_bin(crate::ir::BinOp::Lt, hi, x);
                let ch = a.mk_mul(g, over);
                accumulate(a, bar, hi, ch);
            }
            Expr::Spike { arg, surrogate, .. } => {
                let s = a.surrogate_value(arg, surrogate);
                let c = a.mk_mul(g, s);
                accumulate(a, bar, arg, c);
            }
            Expr::Bcast(q, side, x) => {
                let c = if side == Side::Pre {
                    a.add(Expr::SumPost(q, g))
                } else {
                    a.add(Expr::SumPre(q, g))
                };
                accumulate(a, bar, x, c);
            }
            Expr::SumPre(q, x) => {
                let c = a.add(Expr::Bcast(q, Side::Post, g));
                accumulate(a, bar, x, c);
            }
            Expr::SumPost(q, x) => {
                let c = a.add(Expr::Bcast(q, Side::Pre, g));
                accumulate(a, bar, x, c);
            }
            Expr::SumPop(_, x) => accumulate(a, bar, x, g),
        }
    }
    Ok(())
}

/// Adds contribution `c` to the adjoint of `n`, reducing it to `n`'s space when `n`
/// was used (broadcast implicitly) by a node of a larger space.
fn accumulate(a: &mut Module, bar: &mut HashMap<ExprId, ExprId>, n: ExprId, c: ExprId) {
    if a.as_const(c) == Some(0.0) {
        return;
    }
    let c = reduce_to(a, c, a.space(n));
    let total = match bar.get(&n) {
        Some(&old) => a.mk_add(old, c),
        None => c,
    };
    bar.insert(n, total);
}

/// Sums `c` over the indices that `space` does not have.
fn reduce_to(a: &mut Module, c: ExprId, space: Space) -> ExprId {
    match (a.space(c), space) {
        (from, to) if from == to => c,
        (Space::Global, _) => c,
        (Space::Pop(p), Space::Global) => a.add(Expr::SumPop(p, c)),
        (Space::Syn(q), Space::Global) => {
            let post = a.projs[q].post;
            let rows = a.add(Expr::SumPre(q, c));
            a.add(Expr::SumPop(post, rows))
        }
        (from, to) => unreachable!("a {to:?} value used in a {from:?} node"),
    }
}
