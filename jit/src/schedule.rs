//! Scheduling: which loop nest computes each IR node, and what is kept in memory.
//!
//! The step DAG is cut into *stages*: one loop nest over one space (`Global`: straight
//! code; `Pop(p)`: a loop over neurons; `Syn(q)`: a loop over post neurons with an inner
//! loop over pre neurons). Nodes of one space are fused into one loop unless a space
//! crossing separates them:
//!
//! - a reduction (`SumPre`, `SumPost`, `SumPop`) is accumulated inside the stage of its
//!   operand and read, from a buffer, by later stages;
//! - a broadcast `Bcast(q, side, a)` reads `a` (a neuron value of an earlier stage, or a
//!   variable) at the pre (`j`) or post (`i`) index;
//! - a Global value computed from per-episode data is computed in a Global stage and
//!   read by later stages; values of parameters and constants only are recomputed
//!   wherever they are needed (they are loop-invariant and cheap).
//!
//! Levels are as late as possible (ALAP), so that everything a loop nest can compute
//! is computed in the last pass over that space: W1's eligibility update waits for the
//! modulator and shares one dense pass with the plastic component.
//!
//! An update is written in place when no later stage reads the variable's old value;
//! otherwise into a `next` buffer copied back at the end of the step.

use lang::ir::{Expr, ExprId, Module, Space, VarId, VarKind};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A loop nest: a space and the nodes it computes, in arena (topological) order.
#[derive(Clone, Debug)]
pub struct Stage {
    /// The space looped over.
    pub space: Space,
    /// Nodes computed in this stage, children first (reductions: accumulated here).
    pub nodes: Vec<ExprId>,
    /// Updates stored by this stage: (variable, value, write to a next buffer).
    pub stores: Vec<(VarId, ExprId, bool)>,
    /// A sparse synapse stage: every output is a `SumPre` of a product with this
    /// `Bcast(q, Pre, s)`, so pre neurons whose `s` is 0 contribute nothing and are
    /// skipped (exact for finite factors).
    pub gate: Option<ExprId>,
}

/// Where every node is computed and what is kept.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// Stages in execution order.
    pub stages: Vec<Stage>,
    /// Nodes whose values live in a buffer (of their space's size) for later stages.
    pub materialized: Vec<ExprId>,
    /// Updates computed after all stages (a Global or copied value into a larger space,
    /// or a variable's own old value of another variable); always via next buffers.
    pub late: Vec<(VarId, ExprId)>,
    /// Variables written through a next buffer, copied back at the end of the step.
    pub via_next: Vec<VarId>,
}

/// True for nodes that are not computed by any stage: constants and variable reads.
fn is_leaf(m: &Module, e: ExprId) -> bool {
    matches!(m.expr(e), Expr::Const(_) | Expr::Read(_))
}

/// True for nodes whose value depends on parameters and constants only.
pub fn param_only(m: &Module, e: ExprId, memo: &mut HashMap<ExprId, bool>) -> bool {
    if let Some(&b) = memo.get(&e) {
        return b;
    }
    let b = match m.expr(e) {
        Expr::Const(_) => true,
        Expr::Read(v) => {
            matches!(m.vars[*v].kind, VarKind::Param { .. }) && m.vars[*v].space == Space::Global
        }
        Expr::Hole(..)
        | Expr::SumPop(..)
        | Expr::SumPre(..)
        | Expr::SumPost(..)
        | Expr::Bcast(..) => false,
        other => {
            m.space(e) == Space::Global && other.operands().iter().all(|&o| param_only(m, o, memo))
        }
    };
    memo.insert(e, b);
    b
}

/// Schedules the live part of a module's step.
pub fn schedule(m: &Module) -> Schedule {
    let live = m.live_step();
    let mut po = HashMap::new();
    // Nodes computed by stages: live, not leaves, not param-only Globals (inlined).
    let computed: Vec<ExprId> = m
        .exprs()
        .handles()
        .filter(|&e| live[e.index()] && !is_leaf(m, e) && !param_only(m, e, &mut po))
        .collect();
    let is_computed: HashSet<ExprId> = computed.iter().copied().collect();
    let is_reduction = |e: ExprId| {
        matches!(
            m.expr(e),
            Expr::SumPre(..) | Expr::SumPost(..) | Expr::SumPop(..)
        )
    };
    // Must `o` (an operand of `e`) come from an earlier stage? Reductions are read after
    // their loop; broadcasts read buffers; values of another space live in buffers.
    let crossing = |e: ExprId, o: ExprId| -> bool {
        is_reduction(o) || matches!(m.expr(e), Expr::Bcast(..)) || m.space(o) != m.space(e)
    };
    // ASAP levels. A reduction is computed in its operand's stage (same level).
    let mut level: HashMap<ExprId, usize> = HashMap::new();
    for &e in &computed {
        let mut l = 0;
        for o in m.expr(e).operands() {
            if let Some(&lo) = level.get(&o) {
                l = l.max(if is_reduction(e) {
                    lo
                } else {
                    lo + usize::from(crossing(e, o))
                });
            }
        }
        level.insert(e, l);
    }
    let mut users: HashMap<ExprId, Vec<ExprId>> = HashMap::new();
    for &e in &computed {
        for o in m.expr(e).operands() {
            if is_computed.contains(&o) {
                users.entry(o).or_default().push(e);
            }
        }
    }
    // The space a node's loop runs over: a reduction runs in its operand's loop.
    let stage_space = |e: ExprId| -> Space {
        match *m.expr(e) {
            Expr::SumPre(_, a) | Expr::SumPost(_, a) | Expr::SumPop(_, a) => m.space(a),
            _ => m.space(e),
        }
    };
    let mut last_of_space: HashMap<Space, usize> = HashMap::new();
    for &e in &computed {
        let entry = last_of_space.entry(stage_space(e)).or_insert(0);
        *entry = (*entry).max(level[&e]);
    }
    // ALAP: as late as the users allow; nodes nobody reads (update roots) in the last
    // pass over their space.
    let mut alap: HashMap<ExprId, usize> = HashMap::new();
    for &e in computed.iter().rev() {
        let mut l = last_of_space[&stage_space(e)];
        for &u in users.get(&e).map_or(&[][..], |v| &v[..]) {
            let need = if is_reduction(u) {
                alap[&u]
            } else {
                alap[&u] - usize::from(crossing(u, e))
            };
            l = l.min(need);
        }
        alap.insert(e, l.max(level[&e]));
    }
    // A reduction is accumulated in the stage of its operand.
    for &e in &computed {
        if let Expr::SumPre(_, a) | Expr::SumPost(_, a) | Expr::SumPop(_, a) = *m.expr(e) {
            if let Some(&la) = alap.get(&a) {
                alap.insert(e, la);
            }
        }
    }
    let kind_order = |s: Space| -> (usize, usize) {
        match s {
            Space::Syn(q) => (0, q.index()),
            Space::Pop(p) => (1, p.index()),
            Space::Global => (2, 0),
        }
    };
    let mut stage_keys: BTreeMap<(usize, (usize, usize)), Space> = BTreeMap::new();
    for &e in &computed {
        let s = stage_space(e);
        stage_keys.insert((alap[&e], kind_order(s)), s);
    }
    let index: HashMap<(usize, (usize, usize)), usize> = stage_keys
        .keys()
        .enumerate()
        .map(|(i, k)| (*k, i))
        .collect();
    let mut stages: Vec<Stage> = stage_keys
        .values()
        .map(|&space| Stage {
            space,
            nodes: vec![],
            stores: vec![],
            gate: None,
        })
        .collect();
    let mut stage_of: HashMap<ExprId, usize> = HashMap::new();
    for &e in &computed {
        let k = index[&(alap[&e], kind_order(stage_space(e)))];
        stages[k].nodes.push(e);
        stage_of.insert(e, k);
    }
    // Materialized: used by a node of another stage, or crossing to a user. A
    // broadcast is never kept (a synapse-sized buffer of a neuron value): each stage
    // that needs it reads its neuron-sized operand again.
    let mut materialized: Vec<ExprId> = Vec::new();
    let mut readers: HashMap<VarId, Vec<usize>> = HashMap::new();
    for &e in &computed {
        let reduction = is_reduction(e);
        let user_stages: Vec<usize> = users
            .get(&e)
            .map_or(vec![], |us| us.iter().map(|u| stage_of[u]).collect());
        let other_stage = user_stages.iter().any(|&s| s != stage_of[&e]);
        if matches!(m.expr(e), Expr::Bcast(..)) && !reduction {
            // Recomputed where used: its variable operand is read in those stages too.
            if let Expr::Bcast(_, _, a) = *m.expr(e) {
                if let Expr::Read(v) = *m.expr(a) {
                    readers
                        .entry(v)
                        .or_default()
                        .extend(user_stages.iter().copied());
                }
            }
            continue;
        }
        if reduction || other_stage {
            materialized.push(e);
        }
    }
    // Readers of each variable's old value, by stage (usize::MAX = after all stages).
    let end = usize::MAX;
    for &e in &computed {
        for o in m.expr(e).operands() {
            if let Expr::Read(v) = *m.expr(o) {
                readers.entry(v).or_default().push(stage_of[&e]);
            }
        }
    }
    // Param-only inlined nodes may read Global params only, never state.
    let mut late = Vec::new();
    for &(v, e) in &m.updates {
        let var_space = m.vars[v].space;
        let stored_in_stage =
            is_computed.contains(&e) && m.space(e) == var_space && !is_reduction(e);
        if !stored_in_stage {
            if *m.expr(e) == Expr::Read(v) {
                continue; // unchanged
            }
            if let Expr::Read(w) = *m.expr(e) {
                readers.entry(w).or_default().push(end);
            }
            late.push((v, e));
        }
    }
    let mut via_next = Vec::new();
    for &(v, e) in &m.updates {
        if late.iter().any(|&(w, _)| w == v) {
            via_next.push(v);
            continue;
        }
        if *m.expr(e) == Expr::Read(v) {
            continue;
        }
        let s = stage_of[&e];
        let safe = readers.get(&v).is_none_or(|rs| rs.iter().all(|&r| r <= s));
        if !safe {
            via_next.push(v);
        }
        stages[s].stores.push((v, e, !safe));
    }
    for st in &mut stages {
        st.gate = sparse_gate(m, st, &materialized);
    }
    Schedule {
        stages,
        materialized,
        late,
        via_next,
    }
}

/// The common pre-side factor of a synapse stage whose only outputs are row sums of
/// products with it (see [`Stage::gate`]).
fn sparse_gate(m: &Module, st: &Stage, materialized: &[ExprId]) -> Option<ExprId> {
    let Space::Syn(q) = st.space else { return None };
    if !st.stores.is_empty() {
        return None;
    }
    let mut gate = None;
    for &e in &st.nodes {
        match *m.expr(e) {
            Expr::SumPre(_, a) => {
                let Expr::Binary(lang::ir::BinOp::Mul, x, y) = *m.expr(a) else {
                    return None;
                };
                let is_gate = |f: ExprId| matches!(*m.expr(f), Expr::Bcast(p, lang::ir::Side::Pre, s) if p == q && m.space(s) != Space::Global);
                let g = [x, y].into_iter().find(|&f| is_gate(f))?;
                if gate.is_some_and(|g0| g0 != g) {
                    return None;
                }
                gate = Some(g);
            }
            Expr::SumPost(..) => return None,
            _ if materialized.contains(&e) => return None,
            _ => {}
        }
    }
    gate
}
