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
//! ALAP alone puts work in the *last* pass over a space even when an earlier pass
//! already has everything it needs, and keeps every synapse value that a later pass
//! reads. A greedy search then lowers the synapse-sized memory traffic of a step
//! (`Cx::cost`: streams read and written per pass, plus one per pass): it moves the
//! nodes of a synapse pass that the previous pass over the same space can compute into
//! that pass (the whole pass when nothing it reads comes from a stage in between: a
//! value computed per synapse in the earlier pass is available to the later
//! computation of the same element, a reduction is not), and recomputes cheap synapse
//! values of variables (`W_rec + A * P`) in the passes that read them instead of
//! keeping them in buffers (which also lets a sweep stay sparse), and splits off of a
//! dense pass the updates that add a product with a pre-side factor to a variable's
//! current content (gradient accumulators: `g += delta_i * z_j * ...`) into a sparse
//! sweep. Such an update may add to an earlier value kept in the variable's own storage
//! ([`Schedule::alias`]). W1's adjoint goes from four dense passes over its recurrent
//! synapses to two, plus a sparse sweep. (Before the search, neuron and Global values
//! of variables only that are read through broadcasts only go to the first pass over
//! their space, so that they never hold a synapse pass back.)
//!
//! An update is written in place when no later stage reads the variable's old value;
//! otherwise into a `next` buffer copied back at the end of the step.
//!
//! Out of place ([`schedule_out_of_place`]): the step reads the states from one storage
//! and writes every state's next value into another (each element, unchanged states
//! included), so no update needs a next buffer; no stage relies on a variable's
//! storage already holding its current value (no sparse in-place accumulation, no
//! alias), since the output storage holds nothing meaningful before the step.

use lang::ir::{BinOp, Expr, ExprId, Module, Side, Space, UnOp, VarId, VarKind};
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
    /// `Bcast(q, Pre, s)`, or an in-place update adding such a product to the variable's
    /// current content, so pre neurons whose `s` is 0 contribute nothing and are
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
    /// Materialized synapse values kept in a variable's storage instead of a buffer:
    /// the variable's update is that value plus more, stored in place by a later stage,
    /// and nothing reads the variable's old value after the value is written (a sparse
    /// pass can then add its terms where they are not zero and leave the rest).
    pub alias: Vec<(ExprId, VarId)>,
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
    schedule_with(m, false)
}

/// Schedules the live part of a module's step for a kernel that writes every state's
/// next value into a storage of its own (see the module doc): no next buffers, no
/// in-place sparse updates, no aliases; the unchanged states are copied (`late`).
pub fn schedule_out_of_place(m: &Module) -> Schedule {
    schedule_with(m, true)
}

fn schedule_with(m: &Module, out_of_place: bool) -> Schedule {
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
    // Neuron and Global values of variables and constants only that are read through
    // broadcasts only (`a_minus * ybar`) go to the first pass over their space (they
    // are kept in a buffer either way): ALAP would put them just before their first
    // reader, where they can hold back the fusion of a synapse pass into an earlier one.
    let mut first_of_space: HashMap<Space, usize> = HashMap::new();
    for &e in &computed {
        let entry = first_of_space.entry(stage_space(e)).or_insert(usize::MAX);
        *entry = (*entry).min(alap[&e]);
    }
    for &e in &computed {
        let space = stage_space(e);
        let leaves_only = m
            .expr(e)
            .operands()
            .iter()
            .all(|o| !is_computed.contains(o));
        let bcast_only = users
            .get(&e)
            .is_some_and(|us| us.iter().all(|&u| matches!(m.expr(u), Expr::Bcast(..))));
        if !matches!(space, Space::Syn(_)) && !is_reduction(e) && leaves_only && bcast_only {
            alap.insert(e, first_of_space[&space]);
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
    let mut plan = Plan {
        stages: stage_keys.values().map(|&space| (space, vec![])).collect(),
        recompute: HashSet::new(),
        alias: Vec::new(),
    };
    for &e in &computed {
        let k = index[&(alap[&e], kind_order(stage_space(e)))];
        plan.stages[k].1.push(e);
    }
    let cx = Cx {
        m,
        computed: &computed,
        is_computed: &is_computed,
        users: &users,
        out_of_place,
    };
    cx.improve(&mut plan);
    cx.finish(&plan)
}

/// Stages as lists of nodes (in arena order), and the synapse values that are not kept
/// in buffers but recomputed by the later stages that read them.
#[derive(Clone, Debug)]
struct Plan {
    stages: Vec<(Space, Vec<ExprId>)>,
    recompute: HashSet<ExprId>,
    /// Wished aliases (see [`Schedule::alias`]); kept only where valid.
    alias: Vec<(ExprId, VarId)>,
}

/// What every plan of one module shares.
struct Cx<'a> {
    m: &'a Module,
    computed: &'a [ExprId],
    is_computed: &'a HashSet<ExprId>,
    users: &'a HashMap<ExprId, Vec<ExprId>>,
    /// See [`schedule_out_of_place`].
    out_of_place: bool,
}

fn is_reduction(m: &Module, e: ExprId) -> bool {
    matches!(
        m.expr(e),
        Expr::SumPre(..) | Expr::SumPost(..) | Expr::SumPop(..)
    )
}

impl Cx<'_> {
    /// The full schedule of a plan: buffers, stores, next buffers, sparse gates.
    fn finish(&self, plan: &Plan) -> Schedule {
        let m = self.m;
        let computed = self.computed;
        let mut stage_of: HashMap<ExprId, usize> = HashMap::new();
        for (k, (_, nodes)) in plan.stages.iter().enumerate() {
            for &e in nodes {
                stage_of.insert(e, k);
            }
        }
        let mut stages: Vec<Stage> = plan
            .stages
            .iter()
            .map(|(space, nodes)| Stage {
                space: *space,
                nodes: nodes.clone(),
                stores: vec![],
                gate: None,
            })
            .collect();
        // Materialized: used by a node of another stage, or crossing to a user. A
        // broadcast is never kept (a synapse-sized buffer of a neuron value): each stage
        // that needs it reads its neuron-sized operand again; nor is a node the plan
        // recomputes.
        let mut materialized: Vec<ExprId> = Vec::new();
        let mut readers: HashMap<VarId, Vec<usize>> = HashMap::new();
        for &e in computed {
            let reduction = is_reduction(m, e);
            let user_stages: Vec<usize> = self
                .users
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
            if plan.recompute.contains(&e) {
                // Recomputed where used: the variables it reads are read there too.
                for &s in &user_stages {
                    if s != stage_of[&e] {
                        for v in self.leaf_reads(e) {
                            readers.entry(v).or_default().push(s);
                        }
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
        for &e in computed {
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
                self.is_computed.contains(&e) && m.space(e) == var_space && !is_reduction(m, e);
            if !stored_in_stage {
                if *m.expr(e) == Expr::Read(v) && !self.out_of_place {
                    continue; // unchanged (out of place: copied)
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
                if !self.out_of_place {
                    via_next.push(v);
                }
                continue;
            }
            if *m.expr(e) == Expr::Read(v) {
                continue;
            }
            let s = stage_of[&e];
            // Out of place, the old value is never overwritten.
            let safe =
                self.out_of_place || readers.get(&v).is_none_or(|rs| rs.iter().all(|&r| r <= s));
            if !safe {
                via_next.push(v);
            }
            stages[s].stores.push((v, e, !safe));
        }
        // Aliases: the value, read by its variable's in-place update only, written
        // after every read of the variable's old value.
        let mut alias = Vec::new();
        for &(x, v) in plan.alias.iter().filter(|_| !self.out_of_place) {
            let Some(&(_, ev)) = m.updates.iter().find(|&&(w, _)| w == v) else {
                continue;
            };
            let sx = stage_of[&x];
            let stored = stages
                .iter()
                .enumerate()
                .any(|(k, st)| k > sx && st.stores.contains(&(v, ev, false)));
            let users_ok = self
                .users
                .get(&x)
                .is_some_and(|us| us.iter().all(|u| stage_of[u] == sx || *u == ev));
            let readers_ok = readers.get(&v).is_none_or(|rs| rs.iter().all(|&r| r <= sx));
            if materialized.contains(&x)
                && matches!(m.space(x), Space::Syn(_))
                && m.vars[v].space == m.space(x)
                && stored
                && users_ok
                && readers_ok
                && !alias.iter().any(|&(_, w)| w == v)
            {
                alias.push((x, v));
            }
        }
        for st in &mut stages {
            st.gate = sparse_gate(m, st, &materialized, &alias, self.out_of_place);
        }
        Schedule {
            stages,
            materialized,
            late,
            via_next,
            alias,
        }
    }

    /// The variables a recomputed node reads (through broadcasts too).
    fn leaf_reads(&self, e: ExprId) -> Vec<VarId> {
        let m = self.m;
        let mut out = Vec::new();
        let mut stack = vec![e];
        let mut seen = HashSet::new();
        while let Some(x) = stack.pop() {
            if !seen.insert(x) {
                continue;
            }
            match *m.expr(x) {
                Expr::Read(v) => out.push(v),
                ref other => stack.extend(other.operands()),
            }
        }
        out
    }

    /// Can `e` be recomputed by any later stage instead of kept: a synapse value of
    /// cheap arithmetic over variables, constants and broadcasts only.
    fn recomputable(&self, e: ExprId) -> bool {
        let m = self.m;
        if !matches!(m.space(e), Space::Syn(_)) {
            return false;
        }
        let mut stack = vec![e];
        let mut seen = HashSet::new();
        while let Some(x) = stack.pop() {
            if !seen.insert(x) {
                continue;
            }
            if !self.is_computed.contains(&x) {
                continue; // a constant, a variable, or of parameters only
            }
            match *m.expr(x) {
                Expr::Bcast(_, _, a) => {
                    if !matches!(m.expr(a), Expr::Read(_) | Expr::Const(_)) {
                        return false; // a neuron value: only kept if something else reads it
                    }
                }
                Expr::Unary(UnOp::Neg | UnOp::Abs, a) => stack.push(a),
                Expr::Binary(
                    BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Min | BinOp::Max,
                    a,
                    b,
                ) => stack.extend([a, b]),
                _ => return false,
            }
        }
        seen.len() <= 16
    }

    /// Synapse-sized memory streams of one step (reads plus writes, one per pass for
    /// the loop itself; a sparse pass counts a quarter): what the plan optimizes.
    fn cost(&self, s: &Schedule) -> f64 {
        let m = self.m;
        let mat: HashSet<ExprId> = s.materialized.iter().copied().collect();
        let mut total = 0.0;
        for st in &s.stages {
            let Space::Syn(_) = st.space else { continue };
            let here: HashSet<ExprId> = st.nodes.iter().copied().collect();
            let mut streams: HashSet<(bool, usize)> = HashSet::new();
            let mut ops = 0usize;
            let mut stack: Vec<ExprId> = st.nodes.clone();
            stack.extend(st.stores.iter().map(|&(_, e, _)| e));
            let mut seen = HashSet::new();
            while let Some(x) = stack.pop() {
                if !seen.insert(x) {
                    continue;
                }
                match *m.expr(x) {
                    Expr::Read(v) => {
                        if matches!(m.vars[v].space, Space::Syn(_)) {
                            streams.insert((false, v.index()));
                        }
                    }
                    Expr::Const(_) | Expr::Bcast(..) => {}
                    _ if !self.is_computed.contains(&x) => {} // param-only
                    _ if mat.contains(&x) && !here.contains(&x) => {
                        if matches!(m.space(x), Space::Syn(_)) {
                            streams.insert((true, x.index()));
                        }
                    }
                    ref other => {
                        if !here.contains(&x) {
                            ops += 1; // recomputed here
                        }
                        stack.extend(other.operands());
                    }
                }
            }
            let mut c = 1.0 + streams.len() as f64 + 0.05 * ops as f64;
            for &e in &st.nodes {
                if mat.contains(&e) && !is_reduction(m, e) && matches!(m.space(e), Space::Syn(_)) {
                    c += 2.0; // write-allocate and write
                }
            }
            for &(v, _, next) in &st.stores {
                if matches!(m.vars[v].space, Space::Syn(_)) {
                    c += if next { 4.0 } else { 1.0 };
                }
            }
            total += if st.gate.is_some() { 0.25 * c } else { c };
        }
        total
    }

    /// Greedy local search: recompute cheap synapse values rather than keep them, and
    /// move work of a synapse pass into an earlier pass over the same space (a whole
    /// pass when possible), while the synapse traffic of a step goes down.
    fn improve(&self, plan: &mut Plan) {
        let mut best = self.cost(&self.finish(plan));
        loop {
            let mut found: Option<(f64, Plan)> = None;
            for cand in self.candidates(plan) {
                let c = self.cost(&self.finish(&cand));
                if c < best - 1e-9 && found.as_ref().is_none_or(|(f, _)| c < *f) {
                    found = Some((c, cand));
                }
            }
            match found {
                Some((c, p)) => {
                    best = c;
                    *plan = p;
                }
                None => return,
            }
        }
    }

    fn candidates(&self, plan: &Plan) -> Vec<Plan> {
        let m = self.m;
        let mut out = Vec::new();
        let mut stage_of: HashMap<ExprId, usize> = HashMap::new();
        for (k, (_, nodes)) in plan.stages.iter().enumerate() {
            for &e in nodes {
                stage_of.insert(e, k);
            }
        }
        // Recompute a synapse value that some later stage reads.
        for (k, (_, nodes)) in plan.stages.iter().enumerate() {
            for &e in nodes {
                if plan.recompute.contains(&e) || is_reduction(m, e) {
                    continue;
                }
                if matches!(m.expr(e), Expr::Bcast(..)) {
                    continue;
                }
                let read_later = self
                    .users
                    .get(&e)
                    .is_some_and(|us| us.iter().any(|u| stage_of[u] != k));
                if read_later && self.recomputable(e) {
                    let mut p = plan.clone();
                    p.recompute.insert(e);
                    out.push(p);
                }
            }
        }
        // Move the nodes of synapse stage `b` that stage `a` (earlier, same space) can
        // compute: all of them, or those whose values `b` does not need afterwards.
        for b in 0..plan.stages.len() {
            let (space, ref nodes_b) = plan.stages[b];
            if !matches!(space, Space::Syn(_)) {
                continue;
            }
            for a in (0..b).rev() {
                if plan.stages[a].0 != space {
                    continue;
                }
                let in_a: HashSet<ExprId> = plan.stages[a].1.iter().copied().collect();
                let mut moved: HashSet<ExprId> = HashSet::new();
                for &e in nodes_b {
                    let ok = m.expr(e).operands().into_iter().all(|o| {
                        if !self.is_computed.contains(&o) {
                            return true;
                        }
                        let so = stage_of[&o];
                        if is_reduction(m, e) {
                            return moved.contains(&o) || in_a.contains(&o);
                        }
                        let crossing = is_reduction(m, o)
                            || matches!(m.expr(e), Expr::Bcast(..))
                            || m.space(o) != m.space(e);
                        so < a || (!crossing && (in_a.contains(&o) || moved.contains(&o)))
                    });
                    if ok {
                        moved.insert(e);
                    }
                }
                if moved.is_empty() {
                    continue;
                }
                let all = moved.len() == nodes_b.len();
                out.push(self.moved(plan, a, b, &moved));
                if !all {
                    // Keep in `b` what `b` still needs (no new buffers).
                    let mut keep = moved.clone();
                    loop {
                        let before = keep.len();
                        let needed: Vec<ExprId> = nodes_b
                            .iter()
                            .filter(|e| !keep.contains(e))
                            .flat_map(|&e| m.expr(e).operands())
                            .filter(|o| {
                                keep.contains(o)
                                    && !is_reduction(m, *o)
                                    && !matches!(m.expr(*o), Expr::Bcast(..))
                            })
                            .collect();
                        for o in needed {
                            keep.remove(&o);
                        }
                        // A reduction stays with its operand.
                        let orphans: Vec<ExprId> = keep
                            .iter()
                            .copied()
                            .filter(|&e| match *m.expr(e) {
                                Expr::SumPre(_, x) | Expr::SumPost(_, x) | Expr::SumPop(_, x) => {
                                    stage_of.get(&x) == Some(&b) && !keep.contains(&x)
                                }
                                _ => false,
                            })
                            .collect();
                        for o in orphans {
                            keep.remove(&o);
                        }
                        if keep.len() == before {
                            break;
                        }
                    }
                    if !keep.is_empty() && keep.len() < moved.len() {
                        out.push(self.moved(plan, a, b, &keep));
                    }
                }
                break; // only the nearest earlier pass over the space
            }
        }
        // Split a dense synapse pass: the updates that add a product with a pre-side
        // factor (a spike) to their variable's current content, and the row sums of
        // such products, go to a sparse pass of their own.
        for b in 0..plan.stages.len() {
            let (space, ref nodes_b) = plan.stages[b];
            let Space::Syn(q) = space else { continue };
            let in_b: HashSet<ExprId> = nodes_b.iter().copied().collect();
            // Gates: pre-side broadcasts this pass reads (wherever they are listed: a
            // broadcast is recomputed in every pass that reads it).
            let mut gates: Vec<ExprId> = nodes_b
                .iter()
                .flat_map(|&e| std::iter::once(e).chain(m.expr(e).operands()))
                .filter(|&g| is_gate(m, q, g))
                .collect();
            gates.sort();
            gates.dedup();
            for g in gates {
                let mut alias = Vec::new();
                let mut gated: HashSet<ExprId> = HashSet::new();
                for &e in nodes_b {
                    if let Expr::SumPre(_, a) = *m.expr(e) {
                        if gate_factors(m, q, a).contains(&g) {
                            gated.insert(e);
                        }
                        continue;
                    }
                    if self.out_of_place {
                        continue; // no update is made in place
                    }
                    let Some(&(v, _)) = m.updates.iter().find(|&&(_, u)| u == e) else {
                        continue;
                    };
                    let Expr::Binary(BinOp::Add, x, y) = *m.expr(e) else {
                        continue;
                    };
                    // The variable's current content: itself, or an earlier value to be
                    // kept in its storage.
                    let earlier = |c: ExprId| {
                        stage_of.get(&c).is_some_and(|&sc| sc < b)
                            && m.space(c) == space
                            && !is_reduction(m, c)
                            && !matches!(m.expr(c), Expr::Bcast(..))
                            && !plan.recompute.contains(&c)
                    };
                    for (c, rest) in [(x, y), (y, x)] {
                        if !gate_factors(m, q, rest).contains(&g) {
                            continue;
                        }
                        if *m.expr(c) == Expr::Read(v) {
                            gated.insert(e);
                            break;
                        }
                        if earlier(c) {
                            gated.insert(e);
                            alias.push((c, v));
                            break;
                        }
                    }
                }
                if gated.is_empty() {
                    continue;
                }
                // Everything else this pass must still produce, and what it needs.
                let later_use = |e: ExprId| {
                    self.users
                        .get(&e)
                        .is_some_and(|us| us.iter().any(|u| !in_b.contains(u)))
                };
                let is_update = |e: ExprId| m.updates.iter().any(|&(_, u)| u == e);
                let mut dense: HashSet<ExprId> = HashSet::new();
                let mut stack: Vec<ExprId> = nodes_b
                    .iter()
                    .copied()
                    .filter(|&e| {
                        !gated.contains(&e) && (is_reduction(m, e) || is_update(e) || later_use(e))
                    })
                    .collect();
                while let Some(e) = stack.pop() {
                    if in_b.contains(&e) && dense.insert(e) {
                        stack.extend(m.expr(e).operands());
                    }
                }
                // A reduction goes with its operand.
                for &e in nodes_b {
                    if let Expr::SumPre(_, a) | Expr::SumPost(_, a) = *m.expr(e) {
                        if dense.contains(&a) {
                            dense.insert(e);
                        }
                    }
                }
                let sparse: Vec<ExprId> = nodes_b
                    .iter()
                    .copied()
                    .filter(|e| !dense.contains(e))
                    .collect();
                if sparse.is_empty() {
                    continue;
                }
                let mut p = plan.clone();
                p.stages[b].1.retain(|e| dense.contains(e));
                if p.stages[b].1.is_empty() {
                    p.stages[b].1 = sparse;
                } else {
                    p.stages.insert(b + 1, (space, sparse));
                }
                for a in alias {
                    if !p.alias.contains(&a) {
                        p.alias.push(a);
                    }
                }
                out.push(p);
            }
        }
        out
    }

    /// `plan` with `nodes` moved from stage `b` to stage `a` (an emptied stage removed).
    fn moved(&self, plan: &Plan, a: usize, b: usize, nodes: &HashSet<ExprId>) -> Plan {
        let mut p = plan.clone();
        p.stages[b].1.retain(|e| !nodes.contains(e));
        p.stages[a].1.extend(nodes.iter().copied());
        p.stages[a].1.sort();
        if p.stages[b].1.is_empty() {
            p.stages.remove(b);
        }
        p
    }
}

/// Is `g` a pre-side broadcast of a neuron value over projection `q` (a possible gate)?
fn is_gate(m: &Module, q: lang::ir::ProjId, g: ExprId) -> bool {
    matches!(*m.expr(g), Expr::Bcast(p, Side::Pre, s) if p == q && m.space(s) != Space::Global)
}

/// The possible gates that are factors of product `e` (through products and negations):
/// where a gate is zero, so is `e` (for finite other factors).
fn gate_factors(m: &Module, q: lang::ir::ProjId, e: ExprId) -> Vec<ExprId> {
    match *m.expr(e) {
        _ if is_gate(m, q, e) => vec![e],
        Expr::Binary(BinOp::Mul, x, y) => {
            let mut out = gate_factors(m, q, x);
            out.extend(gate_factors(m, q, y));
            out
        }
        Expr::Unary(UnOp::Neg, x) => gate_factors(m, q, x),
        _ => vec![],
    }
}

/// The common pre-side factor of a synapse stage whose only outputs are row sums of
/// products with it, or in-place updates that add such a product to the variable's
/// current content (itself, or a value aliased to it): see [`Stage::gate`].
fn sparse_gate(
    m: &Module,
    st: &Stage,
    materialized: &[ExprId],
    alias: &[(ExprId, VarId)],
    out_of_place: bool,
) -> Option<ExprId> {
    let Space::Syn(q) = st.space else { return None };
    let mut common: Option<Vec<ExprId>> = None;
    let mut meet = |c: Vec<ExprId>| {
        common = Some(match common.take() {
            None => c,
            Some(old) => old.into_iter().filter(|g| c.contains(g)).collect(),
        });
    };
    for &e in &st.nodes {
        match *m.expr(e) {
            Expr::SumPre(_, a) => meet(gate_factors(m, q, a)),
            Expr::SumPost(..) | Expr::SumPop(..) => return None,
            _ if materialized.contains(&e) => return None,
            _ => {}
        }
    }
    for &(v, e, next) in &st.stores {
        if next || out_of_place {
            return None; // skipped elements must keep a value the storage holds
        }
        let Expr::Binary(BinOp::Add, x, y) = *m.expr(e) else {
            return None;
        };
        let holds = |c: ExprId| *m.expr(c) == Expr::Read(v) || alias.contains(&(c, v));
        let rest = if holds(x) {
            y
        } else if holds(y) {
            x
        } else {
            return None;
        };
        meet(gate_factors(m, q, rest));
    }
    common?.into_iter().min()
}
