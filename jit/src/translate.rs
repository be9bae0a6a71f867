//! IR -> Cranelift IR: one function `step(vars, scratch, masks, episode)` that runs one
//! time step of one episode. The one big `match` over IR nodes lives here.
//!
//! Arguments: `vars` is a table of base pointers, one per IR variable (parameters are
//! shared; states and inputs are `[episode][index]` and offset by the episode here);
//! `scratch` a table of per-episode buffers (materialized nodes, next-state buffers);
//! `masks` a table of connectivity masks (`u8`, `[post][pre]`), null for dense
//! projections. Out of place (see [`crate::schedule::schedule_out_of_place`]), `vars`
//! holds a second table after the first: per variable, where the step writes its next
//! value (used for states only; `[episode][index]` as well).
//!
//! In f32 vector loops, a product that only one sum, difference or unmasked reduction
//! reads fuses into it (`fma`: one rounding instead of two; W1's updates and adjoint
//! sums are mostly such pairs). f64 keeps the interpreter's separate roundings.

use crate::math::Libcall;
use crate::schedule::{param_only, Schedule, Stage};
use crate::{JitError, Precision};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    types, AbiParam, Endianness, FuncRef, InstBuilder, MemFlagsData, StackSlot, StackSlotData,
    StackSlotKind, Type, Value,
};
use cranelift_frontend::{FunctionBuilder, Variable};
use lang::ir::{BinOp, Connectivity, Expr, ExprId, Module, Side, Space, UnOp, VarId, VarKind};
use std::collections::{HashMap, HashSet};

/// Where everything lives at run time; shared by the translator and the runtime.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Per scratch slot: number of elements (per episode).
    pub scratch: Vec<usize>,
    /// Scratch slot of each materialized node (but those of `node_var`).
    pub node_slot: HashMap<ExprId, usize>,
    /// Materialized nodes kept in a variable's storage (see `Schedule::alias`).
    pub node_var: HashMap<ExprId, VarId>,
    /// Scratch slot of each next-state buffer.
    pub next_slot: HashMap<VarId, usize>,
    /// Projections that need a mask (not dense).
    pub masked: Vec<bool>,
    /// Scratch slot of the active-block list of each sparse stage (by stage index).
    pub gate_slot: HashMap<usize, usize>,
}

impl Layout {
    /// Lays out the buffers a schedule needs.
    pub fn new(m: &Module, s: &Schedule) -> Layout {
        let mut scratch = Vec::new();
        let mut node_slot = HashMap::new();
        let node_var: HashMap<ExprId, VarId> = s.alias.iter().copied().collect();
        for &e in &s.materialized {
            if node_var.contains_key(&e) {
                continue;
            }
            node_slot.insert(e, scratch.len());
            scratch.push(m.space_size(m.space(e)));
        }
        // Sparse stages: a list of active pre blocks (i64 byte offsets), counted in
        // 4-byte elements so that it fits whatever the precision.
        let mut gate_slot = HashMap::new();
        for (k, st) in s.stages.iter().enumerate() {
            if let (Some(_), Space::Syn(q)) = (st.gate, st.space) {
                gate_slot.insert(k, scratch.len());
                let n_pre = m.pops[m.projs[q].pre].size;
                scratch.push(2 * n_pre + 2);
            }
        }
        let mut next_slot = HashMap::new();
        for &v in &s.via_next {
            next_slot.insert(v, scratch.len());
            scratch.push(m.space_size(m.vars[v].space));
        }
        let masked = m
            .projs
            .iter()
            .map(|(_, p)| p.conn != Connectivity::Dense)
            .collect();
        Layout {
            scratch,
            node_slot,
            node_var,
            next_slot,
            masked,
            gate_slot,
        }
    }
}

/// The loop indices of the stage being emitted.
#[derive(Clone, Copy)]
struct Cx {
    /// Neuron index (Pop stages) or post index (Syn stages).
    i: Option<Value>,
    /// Pre index (Syn stages).
    j: Option<Value>,
    /// Flat synapse index `i * n_pre + j` (Syn stages).
    k: Option<Value>,
}

pub(crate) struct Tx<'a, 'f> {
    m: &'a Module,
    s: &'a Schedule,
    layout: &'a Layout,
    b: FunctionBuilder<'f>,
    ty: Type,
    es: i64,
    var_base: Vec<Option<Value>>,
    /// Out of place: where each state's next value goes (else `None`: in place).
    out_base: Vec<Option<Value>>,
    scratch_base: Vec<Value>,
    mask_base: Vec<Option<Value>>,
    libcalls: HashMap<Libcall, FuncRef>,
    scopes: Vec<HashMap<ExprId, Value>>,
    materialized: HashSet<ExprId>,
    /// Nodes computed in the stage being emitted.
    current: HashSet<ExprId>,
    param_memo: HashMap<ExprId, bool>,
    /// Vector values of the current inner-loop body.
    vcache: HashMap<ExprId, Value>,
    /// Row-invariant vectors of the current inner-loop iteration (all unrolled bodies).
    vrow: HashMap<ExprId, Value>,
    /// Row-invariant values of the current row, splatted.
    row_splats: HashMap<ExprId, Value>,
    /// Loop-carried pointers of the dense inner loop: (base, row-relative) -> pointer.
    streams: HashMap<(Value, bool), Variable>,
    /// The same pointers in a fixed order (the emitted code must be deterministic).
    stream_order: Vec<Variable>,
    /// Row-invariant vectors kept in stack slots, loaded in the inner loop (a splat
    /// would be recomputed at every use, a load folds into the arithmetic).
    splat_slots: HashMap<ExprId, StackSlot>,
    /// Row factors assumed zero in the specialised inner loop being emitted.
    assumed_zero: HashSet<ExprId>,
    /// Vector values known to be zero in it (products with them fold away).
    known_zero: HashSet<Value>,
    /// Products with one reader (a node's operand, not an update, not kept in a buffer):
    /// in f32 vector loops, the sum or difference, or the reduction, that reads one
    /// fuses it into a fused multiply-add (see [`Tx::vproduct`]).
    single_use: HashSet<ExprId>,
}

fn flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// Vector accesses need not be aligned (rows of any length).
fn vflags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

fn little() -> MemFlagsData {
    MemFlagsData::new().with_endianness(Endianness::Little)
}

/// Where the inner synapse loop is: post index, byte offset of the row, of the column.
struct VCx {
    i: Value,
    row: Value,
    off: Value,
    /// Addresses come from loop-carried pointers ([`Tx::streams`]) rather than
    /// `base + row + off` (which Cranelift would recompute at every use).
    carried: bool,
    /// Constant byte offset of this body's vectors (unrolled loops).
    imm: i32,
}

impl<'a, 'f> Tx<'a, 'f> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        m: &'a Module,
        s: &'a Schedule,
        layout: &'a Layout,
        mut b: FunctionBuilder<'f>,
        precision: Precision,
        libcalls: HashMap<Libcall, FuncRef>,
        out_of_place: bool,
    ) -> Self {
        let ptr = types::I64;
        for _ in 0..3 {
            b.func.signature.params.push(AbiParam::new(ptr));
        }
        b.func.signature.params.push(AbiParam::new(types::I64));
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let params = b.block_params(entry).to_vec();
        let (vars, scratch, masks, episode) = (params[0], params[1], params[2], params[3]);
        let (ty, es) = match precision {
            Precision::F32 => (types::F32, 4),
            Precision::F64 => (types::F64, 8),
        };
        // Base pointers, loaded once in the entry block so they dominate every loop.
        let ro = flags().with_readonly();
        let mut var_base = Vec::new();
        let mut out_base = Vec::new();
        for (v, var) in m.vars.iter() {
            out_base.push(match var.kind {
                VarKind::State { .. } if out_of_place => {
                    let at = ((m.vars.len() + v.index()) * 8) as i32;
                    let base = b.ins().load(ptr, ro, vars, at);
                    let per = (m.space_size(var.space) as i64) * es;
                    let off = b.ins().imul_imm_s(episode, per);
                    Some(b.ins().iadd(base, off))
                }
                _ => None,
            });
            let base = b.ins().load(ptr, ro, vars, (v.index() * 8) as i32);
            let base = match var.kind {
                VarKind::Param { .. } => base,
                VarKind::State { .. } | VarKind::Input => {
                    let per = (m.space_size(var.space) as i64) * es;
                    let off = b.ins().imul_imm_s(episode, per);
                    b.ins().iadd(base, off)
                }
            };
            var_base.push(Some(base));
        }
        let scratch_base = (0..layout.scratch.len())
            .map(|k| b.ins().load(ptr, ro, scratch, (k * 8) as i32))
            .collect();
        let mask_base = layout
            .masked
            .iter()
            .enumerate()
            .map(|(q, &mk)| mk.then(|| b.ins().load(ptr, ro, masks, (q * 8) as i32)))
            .collect();
        let materialized: HashSet<ExprId> = s.materialized.iter().copied().collect();
        let live = m.live_step();
        let mut readers: HashMap<ExprId, usize> = HashMap::new();
        for (e, x) in m.exprs().iter() {
            if live[e.index()] {
                for o in x.operands() {
                    *readers.entry(o).or_default() += 1;
                }
            }
        }
        let single_use = m
            .exprs()
            .iter()
            .filter(|&(e, x)| {
                live[e.index()]
                    && matches!(x, Expr::Binary(BinOp::Mul, ..))
                    && readers.get(&e) == Some(&1)
                    && !materialized.contains(&e)
                    && !m.updates.iter().any(|&(_, u)| u == e)
            })
            .map(|(e, _)| e)
            .collect();
        Tx {
            m,
            s,
            layout,
            b,
            ty,
            es,
            var_base,
            out_base,
            scratch_base,
            mask_base,
            libcalls,
            scopes: vec![HashMap::new()],
            materialized,
            current: HashSet::new(),
            param_memo: HashMap::new(),
            vcache: HashMap::new(),
            vrow: HashMap::new(),
            row_splats: HashMap::new(),
            streams: HashMap::new(),
            stream_order: Vec::new(),
            splat_slots: HashMap::new(),
            assumed_zero: HashSet::new(),
            known_zero: HashSet::new(),
            single_use,
        }
    }

    /// Emits every stage, the late updates and the copy-back, and returns.
    pub(crate) fn emit(mut self) -> Result<FunctionBuilder<'f>, JitError> {
        // Values of parameters and constants only, once, in the entry block: they are
        // loop-invariant (and some are libcalls, such as `exp(-dt / tau)`).
        let live = self.m.live_step();
        let global = Cx {
            i: None,
            j: None,
            k: None,
        };
        for e in self.m.exprs().handles() {
            if live[e.index()] && param_only(self.m, e, &mut self.param_memo) {
                self.value(e, &global)?;
            }
        }
        for (k, stage) in self.s.stages.iter().enumerate() {
            self.stage(k, stage)?;
        }
        // Late updates: values of another space or other variables, into next buffers
        // (out of place: into the output).
        for &(v, e) in &self.s.late {
            let space = self.m.vars[v].space;
            let base = match self.out_base[v.index()] {
                Some(out) => out,
                None => self.scratch_base[self.layout.next_slot[&v]],
            };
            self.for_space(space, &mut |tx, cx| {
                let x = tx.value_at(e, &cx)?;
                let addr = tx.addr(base, tx.index(space, &cx));
                tx.b.ins().store(flags(), x, addr, 0);
                Ok(())
            })?;
        }
        for &v in &self.s.via_next {
            let space = self.m.vars[v].space;
            let slot = self.layout.next_slot[&v];
            let base = self.store_base(v, false);
            self.for_space(space, &mut |tx, cx| {
                let idx = tx.index(space, &cx);
                let from = tx.addr(tx.scratch_base[slot], idx);
                let x = tx.b.ins().load(tx.ty, flags(), from, 0);
                let to = tx.addr(base, idx);
                tx.b.ins().store(flags(), x, to, 0);
                Ok(())
            })?;
        }
        self.b.ins().return_(&[]);
        self.b.seal_all_blocks();
        Ok(self.b)
    }

    // ---------------------------------------------------------------- loops

    fn counted_loop(
        &mut self,
        n: usize,
        body: &mut dyn FnMut(&mut Self, Value) -> Result<(), JitError>,
    ) -> Result<(), JitError> {
        let end = self.b.ins().iconst(types::I64, n as i64);
        self.loop_to(end, 1, body)
    }

    /// Runs `body` once per element of `space` (nested loops for synapses).
    fn for_space(
        &mut self,
        space: Space,
        body: &mut dyn FnMut(&mut Self, Cx) -> Result<(), JitError>,
    ) -> Result<(), JitError> {
        match space {
            Space::Global => {
                self.scopes.push(HashMap::new());
                body(
                    self,
                    Cx {
                        i: None,
                        j: None,
                        k: None,
                    },
                )?;
                self.scopes.pop();
                Ok(())
            }
            Space::Pop(p) => {
                let n = self.m.pops[p].size;
                self.counted_loop(n, &mut |tx, i| {
                    body(
                        tx,
                        Cx {
                            i: Some(i),
                            j: None,
                            k: None,
                        },
                    )
                })
            }
            Space::Syn(q) => {
                let proj = &self.m.projs[q];
                let (n_post, n_pre) = (self.m.pops[proj.post].size, self.m.pops[proj.pre].size);
                self.counted_loop(n_post, &mut |tx, i| {
                    let row = tx.b.ins().imul_imm_s(i, n_pre as i64);
                    tx.counted_loop(n_pre, &mut |tx, j| {
                        let k = tx.b.ins().iadd(row, j);
                        body(
                            tx,
                            Cx {
                                i: Some(i),
                                j: Some(j),
                                k: Some(k),
                            },
                        )
                    })
                })
            }
        }
    }

    // ---------------------------------------------------------------- stages

    fn reductions_of(&self, stage: &Stage) -> (Vec<ExprId>, Vec<ExprId>) {
        let m = self.m;
        stage.nodes.iter().copied().partition(|&e| {
            matches!(
                m.expr(e),
                Expr::SumPre(..) | Expr::SumPost(..) | Expr::SumPop(..)
            )
        })
    }

    fn zero_sum_post_buffers(&mut self, reductions: &[ExprId]) -> Result<(), JitError> {
        for &r in reductions {
            if let Expr::SumPost(_, _) = self.m.expr(r) {
                let slot = self.layout.node_slot[&r];
                let n = self.layout.scratch[slot];
                let zero = self.fconst(0.0);
                self.counted_loop(n, &mut |tx, i| {
                    let a = tx.addr(tx.scratch_base[slot], Some(i));
                    tx.b.ins().store(flags(), zero, a, 0);
                    Ok(())
                })?;
            }
        }
        Ok(())
    }

    /// Masks a synapse term: `x` where the synapse exists, +0 elsewhere (no NaN leaks).
    fn mask_scalar(&mut self, q: usize, k: Value, x: Value) -> Value {
        match self.mask_base[q] {
            None => x,
            Some(mb) => {
                let addr = self.addr(mb, Some(k));
                let it = if self.ty == types::F32 {
                    types::I32
                } else {
                    types::I64
                };
                let bits = self.b.ins().load(it, flags().with_readonly(), addr, 0);
                let mask = self.b.ins().bitcast(self.ty, MemFlagsData::new(), bits);
                self.b.ins().band(x, mask)
            }
        }
    }

    /// One element of a stage, in scalar code: the plain nodes, the reductions, the
    /// stores.
    fn scalar_body(
        &mut self,
        stage: &Stage,
        plain: &[ExprId],
        reductions: &[ExprId],
        accs: &HashMap<ExprId, Variable>,
        cx: Cx,
    ) -> Result<(), JitError> {
        let m = self.m;
        let mut deferred = Vec::new();
        for &e in plain {
            let x = self.value(e, &cx)?;
            if self.materialized.contains(&e) {
                let a = self.addr(self.node_base(e), self.index(m.space(e), &cx));
                if self.layout.node_var.contains_key(&e) {
                    deferred.push((x, a)); // after every read of the variable
                } else {
                    self.b.ins().store(flags(), x, a, 0);
                }
            }
        }
        for &r in reductions {
            match *m.expr(r) {
                Expr::SumPre(q, a) | Expr::SumPost(q, a) => {
                    let x = self.value(a, &cx)?;
                    let x = self.mask_scalar(q.index(), cx.k.expect("syn index"), x);
                    if let Expr::SumPre(..) = m.expr(r) {
                        let acc = self.b.use_var(accs[&r]);
                        let s = self.b.ins().fadd(acc, x);
                        self.b.def_var(accs[&r], s);
                    } else {
                        let slot = self.layout.node_slot[&r];
                        let addr = self.addr(self.scratch_base[slot], cx.j);
                        let old = self.b.ins().load(self.ty, flags(), addr, 0);
                        let s = self.b.ins().fadd(old, x);
                        self.b.ins().store(flags(), s, addr, 0);
                    }
                }
                Expr::SumPop(_, a) => {
                    let x = self.value(a, &cx)?;
                    let acc = self.b.use_var(accs[&r]);
                    let s = self.b.ins().fadd(acc, x);
                    self.b.def_var(accs[&r], s);
                }
                _ => unreachable!("reductions only"),
            }
        }
        for (x, a) in deferred {
            self.b.ins().store(flags(), x, a, 0);
        }
        for &(v, e, next) in &stage.stores {
            let x = self.value(e, &cx)?;
            let idx = self.index(m.vars[v].space, &cx);
            let base = self.store_base(v, next);
            let a = self.addr(base, idx);
            self.b.ins().store(flags(), x, a, 0);
        }
        Ok(())
    }

    fn stage(&mut self, index: usize, stage: &Stage) -> Result<(), JitError> {
        self.current = stage.nodes.iter().copied().collect();
        if let Space::Syn(q) = stage.space {
            self.syn_stage(index, stage, q)?;
            self.current.clear();
            return Ok(());
        }
        let (reductions, plain) = self.reductions_of(stage);
        let mut accs: HashMap<ExprId, Variable> = HashMap::new();
        let zero = self.fconst(0.0);
        for &r in &reductions {
            let v = self.b.declare_var(self.ty);
            self.b.def_var(v, zero);
            accs.insert(r, v);
        }
        self.for_space(stage.space, &mut |tx, cx| {
            tx.scalar_body(stage, &plain, &reductions, &accs, cx)
        })?;
        for &r in &reductions {
            let s = self.b.use_var(accs[&r]);
            let slot = self.layout.node_slot[&r];
            let a = self.addr(self.scratch_base[slot], None);
            self.b.ins().store(flags(), s, a, 0);
        }
        self.current.clear();
        Ok(())
    }

    // ---------------------------------------------------------------- synapse loops

    /// Lanes of the inner synapse loop: f32x4 in f32 (summation order of a row then
    /// differs from the interpreter's), scalar in f64 (bit-identical to it).
    fn lanes(&self) -> usize {
        if self.ty == types::F32 {
            4
        } else {
            1
        }
    }

    fn vty(&self) -> Type {
        if self.ty == types::F32 {
            types::F32X4
        } else {
            types::F64
        }
    }

    fn splat(&mut self, x: Value) -> Value {
        if self.lanes() == 1 {
            x
        } else {
            self.b.ins().splat(types::F32X4, x)
        }
    }

    /// Does a node of a synapse stage depend on the pre index? (If not, it is computed
    /// once per post neuron, outside the inner loop.)
    fn per_synapse(&self, e: ExprId, memo: &mut HashMap<ExprId, bool>) -> bool {
        if let Some(&b) = memo.get(&e) {
            return b;
        }
        let m = self.m;
        let r = match m.expr(e) {
            // From an earlier stage: read per synapse exactly when it is a synapse
            // value (whatever the node: a materialized post broadcast is a buffer).
            _ if self.materialized.contains(&e) && !self.current.contains(&e) => {
                matches!(m.space(e), Space::Syn(_))
            }
            Expr::Const(_) => false,
            Expr::Read(v) => matches!(m.vars[*v].space, Space::Syn(_)),
            Expr::Bcast(_, Side::Post, _) => false,
            Expr::Bcast(_, Side::Pre, a) => m.space(*a) != Space::Global,
            Expr::Hole(..) => true,
            other => other.operands().iter().any(|&o| self.per_synapse(o, memo)),
        };
        memo.insert(e, r);
        r
    }

    /// A synapse stage: for each post neuron `i`, the row-invariant nodes, then an inner
    /// loop over pre neurons in vectors of [`Self::lanes`], then a scalar remainder.
    fn syn_stage(
        &mut self,
        index: usize,
        stage: &Stage,
        q: lang::ir::ProjId,
    ) -> Result<(), JitError> {
        let m = self.m;
        let proj = &m.projs[q];
        let (n_post, n_pre) = (m.pops[proj.post].size, m.pops[proj.pre].size);
        let lanes = self.lanes();
        let n_vec = n_pre / lanes;
        let (reductions, plain) = self.reductions_of(stage);
        self.zero_sum_post_buffers(&reductions)?;
        let mut memo = HashMap::new();
        let per_syn: HashSet<ExprId> = stage
            .nodes
            .iter()
            .copied()
            .filter(|&e| self.per_synapse(e, &mut memo))
            .collect();
        let row_nodes: Vec<ExprId> = plain
            .iter()
            .copied()
            .filter(|e| !per_syn.contains(e))
            .collect();
        let syn_nodes: Vec<ExprId> = plain
            .iter()
            .copied()
            .filter(|e| per_syn.contains(e) || self.materialized.contains(e))
            .collect();
        let sum_pre: Vec<ExprId> = reductions
            .iter()
            .copied()
            .filter(|&r| matches!(m.expr(r), Expr::SumPre(..)))
            .collect();
        let mut saccs: HashMap<ExprId, Variable> = HashMap::new();
        let mut vaccs: HashMap<ExprId, Variable> = HashMap::new();
        for &r in &sum_pre {
            saccs.insert(r, self.b.declare_var(self.ty));
            vaccs.insert(r, self.b.declare_var(self.vty()));
        }
        // f32x4: one 16-byte stack slot per vector sum, written after every term and
        // never read. Cranelift's egraph places a pure instruction at its first use, and
        // a running sum's only use is the loop's back edge: without the store every
        // body's multiply-add sank to the end of the iteration, keeping all unrolled
        // bodies' factors live (spilled) until then. The store pins each term to its
        // body.
        let anchors: HashMap<ExprId, StackSlot> = if lanes > 1 {
            sum_pre
                .iter()
                .map(|&r| {
                    let slot = self.b.create_sized_stack_slot(StackSlotData::new(
                        StackSlotKind::ExplicitSlot,
                        16,
                        4,
                    ));
                    (r, slot)
                })
                .collect()
        } else {
            HashMap::new()
        };
        let row_bytes = (n_pre as i64) * self.es;
        let vec_bytes = (lanes as i64) * self.es;
        let active = match stage.gate {
            Some(gate) => {
                Some(self.active_blocks(index, gate, n_vec as i64 * vec_bytes, vec_bytes)?)
            }
            None => None,
        };
        self.counted_loop(n_post, &mut |tx, i| {
            let outer = Cx {
                i: Some(i),
                j: None,
                k: None,
            };
            for &e in &row_nodes {
                tx.value(e, &outer)?;
            }
            let zero = tx.fconst(0.0);
            let vzero = tx.splat(zero);
            for &r in &sum_pre {
                tx.b.def_var(saccs[&r], zero);
                tx.b.def_var(vaccs[&r], vzero);
            }
            // Every row-invariant operand of the per-synapse work, splatted once per row.
            tx.row_splats.clear();
            let mut roots: Vec<ExprId> = syn_nodes.clone();
            for &r in &reductions {
                if let Expr::SumPre(_, a) | Expr::SumPost(_, a) = *m.expr(r) {
                    roots.push(a);
                }
            }
            roots.extend(stage.stores.iter().map(|&(_, e, _)| e));
            let mut seen = HashSet::new();
            while let Some(e) = roots.pop() {
                if !seen.insert(e) {
                    continue;
                }
                let mut memo = HashMap::new();
                if tx.per_synapse(e, &mut memo)
                    || (tx.materialized.contains(&e) && tx.current.contains(&e))
                {
                    if !matches!(m.expr(e), Expr::Bcast(..)) {
                        roots.extend(m.expr(e).operands());
                    }
                } else {
                    let x = tx.value(e, &outer)?;
                    let v = tx.splat(x);
                    tx.row_splats.insert(e, v);
                    if tx.lanes() > 1 && tx.m.as_const(e).is_none() {
                        let slot = *tx.splat_slots.entry(e).or_insert_with(|| {
                            tx.b.create_sized_stack_slot(StackSlotData::new(
                                StackSlotKind::ExplicitSlot,
                                16,
                                4,
                            ))
                        });
                        tx.b.ins().stack_store(types::I64, v, slot, 0);
                    }
                }
            }
            let row = tx.b.ins().imul_imm_s(i, row_bytes);
            // Vector part: every block of pre neurons, or only the active ones.
            // Dense loops carry one pointer per stream, advanced each iteration.
            let carried = active.is_none();
            tx.streams.clear();
            tx.stream_order.clear();
            if carried {
                let streams = tx.collect_streams(stage, q.index(), &syn_nodes, &reductions);
                for (base, row_rel) in streams {
                    let v = tx.b.declare_var(types::I64);
                    let start = if row_rel {
                        tx.b.ins().iadd(base, row)
                    } else {
                        base
                    };
                    tx.b.def_var(v, start);
                    tx.streams.insert((base, row_rel), v);
                    tx.stream_order.push(v);
                }
            }
            let inner = |tx: &mut Self, off: Value, imm: i32| -> Result<(), JitError> {
                tx.vcache.clear();
                let vx = VCx {
                    i,
                    row,
                    off,
                    carried,
                    imm,
                };
                let mut deferred = Vec::new();
                for &e in &syn_nodes {
                    let x = tx.vval(e, &vx, &per_syn)?;
                    if tx.materialized.contains(&e) {
                        let base = tx.node_base(e);
                        let a = tx.syn_addr(base, &vx);
                        if tx.layout.node_var.contains_key(&e) {
                            deferred.push((x, a)); // after every read of the variable
                        } else {
                            tx.b.ins().store(vflags(), x, a, imm);
                        }
                    }
                }
                for &r in &reductions {
                    let (Expr::SumPre(_, a) | Expr::SumPost(_, a)) = *m.expr(r) else {
                        continue;
                    };
                    // An unmasked product term: one fused multiply-add into the sum.
                    let product = if tx.mask_base[q.index()].is_none() {
                        tx.vproduct(a, &vx, &per_syn)?
                    } else {
                        None
                    };
                    let x = match product {
                        Some(_) => None,
                        None => {
                            let x = tx.vval(a, &vx, &per_syn)?;
                            if tx.known_zero.contains(&x) {
                                continue; // a term of a specialised row that is zero
                            }
                            Some(tx.mask_vector(q.index(), &vx, x))
                        }
                    };
                    let add = |tx: &mut Self, acc: Value| match (product, x) {
                        (Some((p, f)), _) => tx.b.ins().fma(p, f, acc),
                        (None, Some(x)) => tx.b.ins().fadd(acc, x),
                        (None, None) => unreachable!("a term"),
                    };
                    if let Expr::SumPre(..) = m.expr(r) {
                        let acc = tx.b.use_var(vaccs[&r]);
                        let s = add(tx, acc);
                        tx.b.def_var(vaccs[&r], s);
                        if let Some(&slot) = anchors.get(&r) {
                            tx.b.ins().stack_store(types::I64, s, slot, 0);
                        }
                    } else {
                        let slot = tx.layout.node_slot[&r];
                        let addr = tx.stream_addr(tx.scratch_base[slot], false, &vx);
                        let vt = tx.vty();
                        let old = tx.b.ins().load(vt, vflags(), addr, imm);
                        let s = add(tx, old);
                        tx.b.ins().store(vflags(), s, addr, imm);
                    }
                }
                for (x, a) in deferred {
                    tx.b.ins().store(vflags(), x, a, imm);
                }
                for &(v, e, next) in &stage.stores {
                    let x = tx.vval(e, &vx, &per_syn)?;
                    let base = tx.store_base(v, next);
                    let a = tx.syn_addr(base, &vx);
                    tx.b.ins().store(vflags(), x, a, imm);
                }
                Ok(())
            };
            let advance = |tx: &mut Self, by: i64| {
                for v in tx.stream_order.clone() {
                    let p = tx.b.use_var(v);
                    let p = tx.b.ins().iadd_imm_s(p, by);
                    tx.b.def_var(v, p);
                }
            };
            match active {
                None => {
                    // `u` vectors per iteration (each at a constant offset from the
                    // same pointers), then the remaining single vectors.
                    let u = if lanes > 1 {
                        unroll_factor(reductions.len(), n_vec)
                    } else {
                        2 // f64: scalar, as measured before
                    };
                    let groups = (n_vec / u) as i64;
                    let u = u as i64;
                    let dense = |tx: &mut Self| -> Result<(), JitError> {
                        tx.byte_loop(groups * u * vec_bytes, u * vec_bytes, &mut |tx, off| {
                            tx.vrow.clear();
                            // Every body gets the iteration's offset; the others add
                            // their constant `imm` to every address.
                            for k in 0..u {
                                inner(tx, off, (k * vec_bytes) as i32)?;
                            }
                            advance(tx, u * vec_bytes);
                            Ok(())
                        })?;
                        let rest = n_vec as i64 - groups * u;
                        if rest > 0 {
                            tx.vrow.clear();
                            let off = tx.b.ins().iconst(types::I64, groups * u * vec_bytes);
                            tx.scopes.push(HashMap::new());
                            for k in 0..rest {
                                inner(tx, off, (k * vec_bytes) as i32)?;
                            }
                            tx.scopes.pop();
                        }
                        Ok(())
                    };
                    // A post-side factor that is zero in most rows (a spike, times
                    // something): a second copy of the loop without its terms.
                    match tx.zero_row_factor() {
                        Some(gate) if lanes > 1 => {
                            let g = tx.value(gate, &outer)?;
                            let z = tx.fconst(0.0);
                            let is_zero = tx.b.ins().fcmp(FloatCC::Equal, g, z);
                            let (spec, general, join) = (
                                tx.b.create_block(),
                                tx.b.create_block(),
                                tx.b.create_block(),
                            );
                            tx.b.ins().brif(is_zero, spec, &[], general, &[]);
                            tx.b.switch_to_block(spec);
                            tx.assumed_zero.insert(gate);
                            dense(tx)?;
                            tx.assumed_zero.clear();
                            tx.known_zero.clear();
                            tx.b.ins().jump(join, &[]);
                            tx.b.switch_to_block(general);
                            dense(tx)?;
                            tx.b.ins().jump(join, &[]);
                            tx.b.switch_to_block(join);
                        }
                        _ => dense(tx)?,
                    }
                }
                Some((list, count)) => {
                    let end = tx.b.ins().imul_imm_s(count, 8);
                    tx.loop_to(end, 8, &mut |tx, pos| {
                        tx.vrow.clear();
                        let addr = tx.b.ins().iadd(list, pos);
                        let off = tx.b.ins().load(types::I64, flags(), addr, 0);
                        inner(tx, off, 0)
                    })?;
                }
            }
            // Scalar remainder.
            let row_k = tx.b.ins().imul_imm_s(i, n_pre as i64);
            for j0 in n_vec * lanes..n_pre {
                let j = tx.b.ins().iconst(types::I64, j0 as i64);
                let k = tx.b.ins().iadd(row_k, j);
                tx.scopes.push(HashMap::new());
                tx.scalar_body(
                    stage,
                    &syn_nodes,
                    &reductions,
                    &saccs,
                    Cx {
                        i: Some(i),
                        j: Some(j),
                        k: Some(k),
                    },
                )?;
                tx.scopes.pop();
            }
            for &r in &sum_pre {
                let v = tx.b.use_var(vaccs[&r]);
                let h = tx.hsum(v);
                let s = tx.b.use_var(saccs[&r]);
                let total = if n_vec == 0 {
                    s
                } else if n_vec * lanes == n_pre {
                    h
                } else {
                    tx.b.ins().fadd(h, s)
                };
                let slot = tx.layout.node_slot[&r];
                let a = tx.addr(tx.scratch_base[slot], Some(i));
                tx.b.ins().store(flags(), total, a, 0);
            }
            Ok(())
        })
    }

    /// A row-invariant factor of the current row's per-synapse work that is a post-side
    /// spike times something: zero in most rows at realistic rates. Skipping its terms
    /// where it is exactly zero is exact for finite values. Failing a spike, a factor
    /// read from an input variable: an adjoint step reads the next spikes `z(t + 1)`
    /// from a next-state input (`lang::diff::Adjoint::next`), and inputs are often spike
    /// trains. The test is made per row at run time, so a dense input only costs a
    /// comparison per row and a second copy of the loop.
    fn zero_row_factor(&self) -> Option<ExprId> {
        let m = self.m;
        fn spike_like(m: &Module, e: ExprId) -> bool {
            match *m.expr(e) {
                Expr::Spike { .. } => true,
                Expr::Read(v) => m
                    .updates
                    .iter()
                    .any(|&(w, u)| w == v && matches!(m.expr(u), Expr::Spike { .. })),
                Expr::Binary(BinOp::Mul, a, b) => spike_like(m, a) || spike_like(m, b),
                _ => false,
            }
        }
        fn reads_input(m: &Module, e: ExprId) -> bool {
            match *m.expr(e) {
                Expr::Read(v) => m.vars[v].kind == VarKind::Input,
                Expr::Binary(BinOp::Mul, a, b) => reads_input(m, a) || reads_input(m, b),
                _ => false,
            }
        }
        let mut keys: Vec<ExprId> = self.row_splats.keys().copied().collect();
        keys.sort();
        let post_factor = |test: fn(&Module, ExprId) -> bool| {
            keys.iter()
                .copied()
                .find(|&e| matches!(*m.expr(e), Expr::Bcast(_, Side::Post, a) if test(m, a)))
        };
        post_factor(spike_like).or_else(|| post_factor(reads_input))
    }

    /// Is `e` zero under the current assumptions (without emitting anything)?
    fn is_known_zero(&self, e: ExprId) -> bool {
        if self.assumed_zero.contains(&e) {
            return true;
        }
        match *self.m.expr(e) {
            Expr::Binary(BinOp::Mul, a, b) => self.is_known_zero(a) || self.is_known_zero(b),
            Expr::Binary(BinOp::Div, a, _) | Expr::Unary(UnOp::Neg, a) => self.is_known_zero(a),
            _ => false,
        }
    }

    /// A loop over byte offsets `0, step, 2 step, .. < end`.
    fn byte_loop(
        &mut self,
        end: i64,
        step: i64,
        body: &mut dyn FnMut(&mut Self, Value) -> Result<(), JitError>,
    ) -> Result<(), JitError> {
        let end = self.b.ins().iconst(types::I64, end);
        self.loop_to(end, step, body)
    }

    /// A loop over `0, step, 2 step, .. < end` with a bound known only at run time.
    fn loop_to(
        &mut self,
        end: Value,
        step: i64,
        body: &mut dyn FnMut(&mut Self, Value) -> Result<(), JitError>,
    ) -> Result<(), JitError> {
        // Rotated: a guard, then the body with the test at its end (one branch per
        // iteration).
        let body_block = self.b.create_block();
        let exit = self.b.create_block();
        let ov = self.b.declare_var(types::I64);
        let zero = self.b.ins().iconst(types::I64, 0);
        self.b.def_var(ov, zero);
        let any = self.b.ins().icmp(IntCC::SignedLessThan, zero, end);
        self.b.ins().brif(any, body_block, &[], exit, &[]);
        self.b.switch_to_block(body_block);
        let off = self.b.use_var(ov);
        self.scopes.push(HashMap::new());
        body(self, off)?;
        self.scopes.pop();
        let next = self.b.ins().iadd_imm_s(off, step);
        self.b.def_var(ov, next);
        let more = self.b.ins().icmp(IntCC::SignedLessThan, next, end);
        self.b.ins().brif(more, body_block, &[], exit, &[]);
        self.b.switch_to_block(exit);
        Ok(())
    }

    /// Lists the byte offsets of the blocks of pre neurons where the gate's operand is
    /// not all zero; returns (list address, count).
    fn active_blocks(
        &mut self,
        index: usize,
        gate: ExprId,
        end: i64,
        step: i64,
    ) -> Result<(Value, Value), JitError> {
        let Expr::Bcast(_, _, s) = *self.m.expr(gate) else {
            return Err(JitError::Internal("a sparse gate is a broadcast".into()));
        };
        let base = match *self.m.expr(s) {
            Expr::Read(var) => self.var_base[var.index()].expect("var base"),
            _ if self.materialized.contains(&s) => self.node_base(s),
            _ => {
                return Err(JitError::Internal(format!(
                    "sparse gate {s:?} not in memory"
                )))
            }
        };
        let list = self.scratch_base[self.layout.gate_slot[&index]];
        let count = self.b.declare_var(types::I64);
        let zero = self.b.ins().iconst(types::I64, 0);
        self.b.def_var(count, zero);
        self.byte_loop(end, step, &mut |tx, off| {
            let addr = tx.b.ins().iadd(base, off);
            let v = tx.vload(addr, 0);
            let z = tx.fconst(0.0);
            let z = tx.splat(z);
            let ne = tx.b.ins().fcmp(FloatCC::NotEqual, v, z);
            let any = if tx.lanes() == 1 {
                ne
            } else {
                tx.b.ins().vany_true(ne)
            };
            let push = tx.b.create_block();
            let cont = tx.b.create_block();
            tx.b.ins().brif(any, push, &[], cont, &[]);
            tx.b.switch_to_block(push);
            let c = tx.b.use_var(count);
            let at = tx.b.ins().imul_imm_s(c, 8);
            let at = tx.b.ins().iadd(list, at);
            tx.b.ins().store(flags(), off, at, 0);
            let c1 = tx.b.ins().iadd_imm_s(c, 1);
            tx.b.def_var(count, c1);
            tx.b.ins().jump(cont, &[]);
            tx.b.switch_to_block(cont);
            Ok(())
        })?;
        let n = self.b.use_var(count);
        Ok((list, n))
    }

    fn vload(&mut self, addr: Value, imm: i32) -> Value {
        let vt = self.vty();
        self.b.ins().load(vt, vflags(), addr, imm)
    }

    fn hsum(&mut self, v: Value) -> Value {
        if self.lanes() == 1 {
            return v;
        }
        let l: Vec<Value> = (0..4u8).map(|k| self.b.ins().extractlane(v, k)).collect();
        let a = self.b.ins().fadd(l[0], l[1]);
        let b = self.b.ins().fadd(l[2], l[3]);
        self.b.ins().fadd(a, b)
    }

    fn syn_addr(&mut self, base: Value, vx: &VCx) -> Value {
        self.stream_addr(base, true, vx)
    }

    /// The address of the current element of a row (`row_rel`) or pre-side array.
    fn stream_addr(&mut self, base: Value, row_rel: bool, vx: &VCx) -> Value {
        if vx.carried {
            if let Some(&v) = self.streams.get(&(base, row_rel)) {
                return self.b.use_var(v);
            }
        }
        let r = if row_rel {
            self.b.ins().iadd(base, vx.row)
        } else {
            base
        };
        self.b.ins().iadd(r, vx.off)
    }

    /// The streams (base pointers) the per-synapse work of a stage reads or writes.
    fn collect_streams(
        &self,
        stage: &Stage,
        q: usize,
        syn_nodes: &[ExprId],
        reductions: &[ExprId],
    ) -> Vec<(Value, bool)> {
        let m = self.m;
        let mut out: Vec<(Value, bool)> = Vec::new();
        let push = |k: (Value, bool), out: &mut Vec<(Value, bool)>| {
            if !out.contains(&k) {
                out.push(k);
            }
        };
        let mut roots: Vec<ExprId> = syn_nodes.to_vec();
        for &e in syn_nodes {
            if self.materialized.contains(&e) {
                push((self.node_base(e), true), &mut out);
            }
        }
        for &r in reductions {
            match *m.expr(r) {
                Expr::SumPre(_, a) => roots.push(a),
                Expr::SumPost(_, a) => {
                    roots.push(a);
                    push(
                        (self.scratch_base[self.layout.node_slot[&r]], false),
                        &mut out,
                    );
                }
                _ => {}
            }
        }
        if !reductions.is_empty() {
            if let Some(mb) = self.mask_base[q] {
                push((mb, true), &mut out);
            }
        }
        for &(v, e, next) in &stage.stores {
            roots.push(e);
            let base = self.store_base(v, next);
            push((base, true), &mut out);
        }
        let mut seen = HashSet::new();
        while let Some(e) = roots.pop() {
            if !seen.insert(e) || self.row_splats.contains_key(&e) {
                continue;
            }
            let mut memo = HashMap::new();
            if !self.per_synapse(e, &mut memo) {
                continue;
            }
            if self.materialized.contains(&e) && !self.current.contains(&e) {
                push((self.node_base(e), true), &mut out);
                continue;
            }
            match *m.expr(e) {
                Expr::Read(var) => {
                    push((self.var_base[var.index()].expect("base"), true), &mut out)
                }
                Expr::Bcast(_, _, a) => match *m.expr(a) {
                    Expr::Read(var) => {
                        push((self.var_base[var.index()].expect("base"), false), &mut out)
                    }
                    _ if self.materialized.contains(&a) => {
                        push((self.node_base(a), false), &mut out)
                    }
                    _ => {}
                },
                ref other => roots.extend(other.operands()),
            }
        }
        out
    }

    fn mask_vector(&mut self, q: usize, vx: &VCx, x: Value) -> Value {
        match self.mask_base[q] {
            None => x,
            Some(mb) => {
                let addr = self.syn_addr(mb, vx);
                let it = match self.lanes() {
                    1 => types::I64,
                    _ => types::I32X4,
                };
                let bits = self
                    .b
                    .ins()
                    .load(it, vflags().with_readonly(), addr, vx.imm);
                let vt = self.vty();
                let mask = self.b.ins().bitcast(vt, little(), bits);
                self.b.ins().band(x, mask)
            }
        }
    }

    /// `cc(x, y) ? a : b` on f32x4 lanes.
    fn vselect(&mut self, cc: FloatCC, x: Value, y: Value, a: Value, b: Value) -> Value {
        let c = self.b.ins().fcmp(cc, x, y);
        let mask = self.b.ins().bitcast(types::F32X4, little(), c);
        self.b.ins().bitselect(mask, a, b)
    }

    /// 1 where `cc(x, y)`, else 0, in the vector type.
    fn vcmp01(&mut self, cc: FloatCC, x: Value, y: Value) -> Value {
        let one = self.fconst(1.0);
        let one = self.splat(one);
        if self.lanes() == 1 {
            let z = self.fconst(0.0);
            let c = self.b.ins().fcmp(cc, x, y);
            return self.b.ins().select(c, one, z);
        }
        let c = self.b.ins().fcmp(cc, x, y);
        let mask = self.b.ins().bitcast(types::F32X4, little(), c);
        self.b.ins().band(mask, one)
    }

    fn vcall1(&mut self, f: Libcall, x: Value) -> Value {
        if self.lanes() == 1 {
            return self.call1(f, x);
        }
        let mut out = x;
        for k in 0..4u8 {
            let l = self.b.ins().extractlane(x, k);
            let y = self.call1(f, l);
            out = self.b.ins().insertlane(out, y, k);
        }
        out
    }

    /// The vector value of a node of a synapse stage at pre offset `vx.off`.
    fn vval(&mut self, e: ExprId, vx: &VCx, per_syn: &HashSet<ExprId>) -> Result<Value, JitError> {
        if let Some(&v) = self.vcache.get(&e).or_else(|| self.vrow.get(&e)) {
            return Ok(v);
        }
        let m = self.m;
        let f32 = self.ty == types::F32;
        let mut memo = HashMap::new();
        if self.assumed_zero.contains(&e) {
            let z = self.fconst(0.0);
            let z = self.splat(z);
            self.known_zero.insert(z);
            self.vrow.insert(e, z);
            return Ok(z);
        }
        // Row-invariant vectors: loaded once per iteration, shared by unrolled bodies.
        if let (Some(&slot), true) = (self.splat_slots.get(&e), self.row_splats.contains_key(&e)) {
            let v = self.b.ins().stack_load(types::I64, types::F32X4, slot, 0);
            self.vrow.insert(e, v);
            return Ok(v);
        }
        if let Expr::Const(c) = *m.expr(e) {
            let s = self.fconst(c.0);
            let v = self.splat(s);
            self.vrow.insert(e, v);
            return Ok(v);
        }
        let v = if let Some(&v) = self.row_splats.get(&e) {
            v
        } else if !self.per_synapse(e, &mut memo)
            && (!self.materialized.contains(&e) || !per_syn.contains(&e))
        {
            let s = self.value(
                e,
                &Cx {
                    i: Some(vx.i),
                    j: None,
                    k: None,
                },
            )?;
            self.splat(s)
        } else if self.materialized.contains(&e) && !self.current.contains(&e) {
            let base = self.node_base(e);
            let a = self.syn_addr(base, vx);
            self.vload(a, vx.imm)
        } else {
            match m.expr(e).clone() {
                Expr::Const(c) => {
                    let s = self.fconst(c.0);
                    self.splat(s)
                }
                Expr::Read(var) => {
                    let a = self.syn_addr(self.var_base[var.index()].expect("var base"), vx);
                    self.vload(a, vx.imm)
                }
                Expr::Bcast(_, _, a) => {
                    // A pre-side neuron value: contiguous in the pre index.
                    let base = match *m.expr(a) {
                        Expr::Read(var) => self.var_base[var.index()].expect("var base"),
                        _ if self.materialized.contains(&a) => self.node_base(a),
                        _ => {
                            return Err(JitError::Internal(format!(
                                "broadcast of {a:?}, which no earlier stage computed"
                            )))
                        }
                    };
                    let addr = self.stream_addr(base, false, vx);
                    self.vload(addr, vx.imm)
                }
                Expr::SumPre(..) | Expr::SumPost(..) | Expr::SumPop(..) => {
                    return Err(JitError::Internal(format!(
                        "reduction {e:?} read in its own stage"
                    )));
                }
                Expr::Hole(name, _) => return Err(JitError::Hole(name)),
                Expr::Unary(op, a) => {
                    let x = self.vval(a, vx, per_syn)?;
                    let pick = |a: Libcall, b: Libcall| if f32 { b } else { a };
                    match op {
                        UnOp::Neg if self.known_zero.contains(&x) => x,
                        UnOp::Neg => self.b.ins().fneg(x),
                        UnOp::Abs => self.b.ins().fabs(x),
                        UnOp::Sqrt => self.b.ins().sqrt(x),
                        UnOp::Relu => {
                            let z = self.fconst(0.0);
                            let z = self.splat(z);
                            if self.lanes() == 1 {
                                self.b.ins().fmax(x, z)
                            } else {
                                self.vselect(FloatCC::LessThan, x, z, z, x)
                            }
                        }
                        UnOp::Exp => self.vcall1(pick(Libcall::Exp, Libcall::ExpF), x),
                        UnOp::Log => self.vcall1(pick(Libcall::Log, Libcall::LogF), x),
                        UnOp::Tanh => self.vcall1(pick(Libcall::Tanh, Libcall::TanhF), x),
                        UnOp::Sin => self.vcall1(pick(Libcall::Sin, Libcall::SinF), x),
                        UnOp::Cos => self.vcall1(pick(Libcall::Cos, Libcall::CosF), x),
                        UnOp::Sigmoid => {
                            let n = self.b.ins().fneg(x);
                            let ex = self.vcall1(pick(Libcall::Exp, Libcall::ExpF), n);
                            let one = self.fconst(1.0);
                            let one = self.splat(one);
                            let d = self.b.ins().fadd(one, ex);
                            self.b.ins().fdiv(one, d)
                        }
                    }
                }
                Expr::Binary(BinOp::Mul, a, b)
                    if self.lanes() > 1 && (self.is_mask(a) || self.is_mask(b)) =>
                {
                    // A product with comparisons (a clip's derivative, say): the
                    // comparison masks select the other factor (one `andps` each, no
                    // 0/1 values, no multiplication).
                    let (v, c) = if self.is_mask(b) { (a, b) } else { (b, a) };
                    let x = self.vval(v, vx, per_syn)?;
                    if self.known_zero.contains(&x) {
                        x
                    } else {
                        let mk = self.vmask(c, vx, per_syn)?;
                        self.b.ins().band(x, mk)
                    }
                }
                Expr::Binary(op, a, b) => 'bin: {
                    if let Some(v) = self.fused(op, a, b, vx, per_syn)? {
                        break 'bin v;
                    }
                    // A product with a known zero needs nothing of the other factor.
                    let x = self.vval(a, vx, per_syn)?;
                    if matches!(op, BinOp::Mul | BinOp::Div) && self.known_zero.contains(&x) {
                        self.vcache.insert(e, x);
                        return Ok(x);
                    }
                    if op == BinOp::Mul && self.is_known_zero(b) {
                        let z = self.vval(b, vx, per_syn)?;
                        self.vcache.insert(e, z);
                        return Ok(z);
                    }
                    let y = self.vval(b, vx, per_syn)?;
                    match op {
                        BinOp::Pow => {
                            if self.lanes() == 1 {
                                self.binary(op, x, y)
                            } else {
                                let mut out = x;
                                for k in 0..4u8 {
                                    let (l, r) = (
                                        self.b.ins().extractlane(x, k),
                                        self.b.ins().extractlane(y, k),
                                    );
                                    let z = self.binary(op, l, r);
                                    out = self.b.ins().insertlane(out, z, k);
                                }
                                out
                            }
                        }
                        BinOp::Lt => self.vcmp01(FloatCC::LessThan, x, y),
                        BinOp::Le => self.vcmp01(FloatCC::LessThanOrEqual, x, y),
                        _ => {
                            let (zx, zy) =
                                (self.known_zero.contains(&x), self.known_zero.contains(&y));
                            match op {
                                BinOp::Mul | BinOp::Div if zx => x,
                                BinOp::Mul if zy => y,
                                BinOp::Add if zx => y,
                                BinOp::Add | BinOp::Sub if zy => x,
                                BinOp::Sub if zx => self.b.ins().fneg(y),
                                _ => self.binary(op, x, y),
                            }
                        }
                    }
                }
                Expr::Clip(x, lo, hi) => {
                    let (x, lo, hi) = (
                        self.vval(x, vx, per_syn)?,
                        self.vval(lo, vx, per_syn)?,
                        self.vval(hi, vx, per_syn)?,
                    );
                    if self.lanes() == 1 {
                        let t = self.b.ins().fmax(x, lo);
                        self.b.ins().fmin(t, hi)
                    } else {
                        // One maxps and one minps; a NaN in x stays NaN, as in the
                        // interpreter (bounds are never NaN).
                        let t = self.vselect(FloatCC::LessThan, x, lo, lo, x);
                        self.vselect(FloatCC::LessThan, hi, t, hi, t)
                    }
                }
                Expr::Spike { arg, inclusive, .. } => {
                    let u = self.vval(arg, vx, per_syn)?;
                    let z = self.fconst(0.0);
                    let z = self.splat(z);
                    let cc = if inclusive {
                        FloatCC::GreaterThanOrEqual
                    } else {
                        FloatCC::GreaterThan
                    };
                    self.vcmp01(cc, u, z)
                }
            }
        };
        self.vcache.insert(e, v);
        Ok(v)
    }

    /// The factors of `e` if it is a product that a fused multiply-add can absorb: f32
    /// vector code, computed per synapse here, read once, no comparison mask (a select)
    /// and no known zero (which folds the product away).
    fn vproduct(
        &mut self,
        e: ExprId,
        vx: &VCx,
        per_syn: &HashSet<ExprId>,
    ) -> Result<Option<(Value, Value)>, JitError> {
        if self.lanes() == 1
            || !self.single_use.contains(&e)
            || self.row_splats.contains_key(&e)
            || self.assumed_zero.contains(&e)
        {
            return Ok(None);
        }
        let mut memo = HashMap::new();
        if !self.per_synapse(e, &mut memo) {
            return Ok(None);
        }
        let Expr::Binary(BinOp::Mul, x, y) = *self.m.expr(e) else {
            return Ok(None);
        };
        if self.is_mask(x) || self.is_mask(y) || self.is_known_zero(e) {
            return Ok(None);
        }
        let (vx_, vy) = (self.vval(x, vx, per_syn)?, self.vval(y, vx, per_syn)?);
        if self.known_zero.contains(&vx_) || self.known_zero.contains(&vy) {
            return Ok(None);
        }
        Ok(Some((vx_, vy)))
    }

    /// `a + b` or `a - b` with a product operand as one fused multiply-add (one
    /// rounding instead of two), or `None`. Deterministic: the same nodes fuse wherever
    /// this stage is emitted, in place or out of place.
    fn fused(
        &mut self,
        op: BinOp,
        a: ExprId,
        b: ExprId,
        vx: &VCx,
        per_syn: &HashSet<ExprId>,
    ) -> Result<Option<Value>, JitError> {
        if !matches!(op, BinOp::Add | BinOp::Sub) {
            return Ok(None);
        }
        // The second operand first (`c + x * y`, `c - x * y`), then the first.
        if let Some((x, y)) = self.vproduct(b, vx, per_syn)? {
            let c = self.vval(a, vx, per_syn)?;
            if self.known_zero.contains(&c) {
                return Ok(None);
            }
            let x = if op == BinOp::Sub {
                self.b.ins().fneg(x)
            } else {
                x
            };
            return Ok(Some(self.b.ins().fma(x, y, c)));
        }
        if let Some((x, y)) = self.vproduct(a, vx, per_syn)? {
            let c = self.vval(b, vx, per_syn)?;
            if self.known_zero.contains(&c) {
                return Ok(None);
            }
            let c = if op == BinOp::Sub {
                self.b.ins().fneg(c)
            } else {
                c
            };
            return Ok(Some(self.b.ins().fma(x, y, c)));
        }
        Ok(None)
    }

    /// Is `e` a comparison (or a product of comparisons) computed per synapse in the
    /// current stage: a 0/1 value that [`Self::vmask`] can give as a lane mask?
    fn is_mask(&self, e: ExprId) -> bool {
        if self.row_splats.contains_key(&e)
            || self.assumed_zero.contains(&e)
            || (self.materialized.contains(&e) && !self.current.contains(&e))
        {
            return false;
        }
        match *self.m.expr(e) {
            Expr::Binary(BinOp::Lt | BinOp::Le, ..) => true,
            Expr::Binary(BinOp::Mul, a, b) => self.is_mask(a) && self.is_mask(b),
            _ => false,
        }
    }

    /// The f32x4 lane mask (all ones where true) of a node that [`Self::is_mask`].
    fn vmask(&mut self, e: ExprId, vx: &VCx, per_syn: &HashSet<ExprId>) -> Result<Value, JitError> {
        match *self.m.expr(e) {
            Expr::Binary(op @ (BinOp::Lt | BinOp::Le), a, b) => {
                let (x, y) = (self.vval(a, vx, per_syn)?, self.vval(b, vx, per_syn)?);
                let cc = if op == BinOp::Lt {
                    FloatCC::LessThan
                } else {
                    FloatCC::LessThanOrEqual
                };
                let c = self.b.ins().fcmp(cc, x, y);
                Ok(self.b.ins().bitcast(types::F32X4, little(), c))
            }
            Expr::Binary(BinOp::Mul, a, b) => {
                let (x, y) = (self.vmask(a, vx, per_syn)?, self.vmask(b, vx, per_syn)?);
                Ok(self.b.ins().band(x, y))
            }
            _ => Err(JitError::Internal(format!("{e:?} is not a mask"))),
        }
    }

    // ---------------------------------------------------------------- values

    fn fconst(&mut self, x: f64) -> Value {
        if self.ty == types::F32 {
            self.b.ins().f32const(x as f32)
        } else {
            self.b.ins().f64const(x)
        }
    }

    fn addr(&mut self, base: Value, index: Option<Value>) -> Value {
        match index {
            None => base,
            Some(i) => {
                let off = self.b.ins().imul_imm_s(i, self.es);
                self.b.ins().iadd(base, off)
            }
        }
    }

    /// The loop index of a value of `space` in context `cx`.
    fn index(&self, space: Space, cx: &Cx) -> Option<Value> {
        match space {
            Space::Global => None,
            Space::Pop(_) => cx.i,
            Space::Syn(_) => cx.k,
        }
    }

    /// Where an update of `v` is stored: its next buffer, its output (out of place), or
    /// its storage.
    fn store_base(&self, v: VarId, next: bool) -> Value {
        if next {
            self.scratch_base[self.layout.next_slot[&v]]
        } else if let Some(out) = self.out_base[v.index()] {
            out
        } else {
            self.var_base[v.index()].expect("var base")
        }
    }

    /// Where a materialized node lives: its scratch buffer, or the storage of the
    /// variable it is kept in.
    fn node_base(&self, e: ExprId) -> Value {
        match self.layout.node_var.get(&e) {
            Some(v) => self.store_base(*v, false),
            None => self.scratch_base[self.layout.node_slot[&e]],
        }
    }

    fn cached(&self, e: ExprId) -> Option<Value> {
        self.scopes.iter().rev().find_map(|s| s.get(&e).copied())
    }

    fn value(&mut self, e: ExprId, cx: &Cx) -> Result<Value, JitError> {
        let index = self.index(self.m.space(e), cx);
        self.value_with(e, cx, index)
    }

    /// The value of `e` (of any space compatible with `cx`), computed or loaded.
    fn value_at(&mut self, e: ExprId, cx: &Cx) -> Result<Value, JitError> {
        self.value(e, cx)
    }

    fn value_with(&mut self, e: ExprId, cx: &Cx, index: Option<Value>) -> Result<Value, JitError> {
        if let Some(v) = self.cached(e) {
            return Ok(v);
        }
        let m = self.m;
        // A value from an earlier stage: load it.
        if self.materialized.contains(&e) && !self.current.contains(&e) {
            let base = self.node_base(e);
            let a = self.addr(base, index);
            let v = self.b.ins().load(self.ty, flags(), a, 0);
            return Ok(self.remember(e, v, m.space(e)));
        }
        let v = match m.expr(e).clone() {
            Expr::Const(c) => self.fconst(c.0),
            Expr::Read(var) => {
                let base = self.var_base[var.index()].expect("var base");
                let a = self.addr(base, index);
                self.b.ins().load(self.ty, flags(), a, 0)
            }
            Expr::Bcast(_, side, a) => {
                // The operand is read at another index than the cache's (a pre and a
                // post broadcast of one value differ): load it, never cache it.
                if m.space(a) == Space::Global {
                    self.value(a, cx)?
                } else {
                    let idx = if side == Side::Pre { cx.j } else { cx.i };
                    self.load_neuron_value(a, idx)?
                }
            }
            Expr::SumPre(..) | Expr::SumPost(..) | Expr::SumPop(..) => {
                return Err(JitError::Internal(format!(
                    "reduction {e:?} read before it was computed"
                )));
            }
            Expr::Hole(name, _) => return Err(JitError::Hole(name)),
            Expr::Unary(op, a) => {
                let x = self.value(a, cx)?;
                self.unary(op, x)
            }
            Expr::Binary(op, a, b) => {
                let (x, y) = (self.value(a, cx)?, self.value(b, cx)?);
                self.binary(op, x, y)
            }
            Expr::Clip(x, lo, hi) => {
                let (x, lo, hi) = (self.value(x, cx)?, self.value(lo, cx)?, self.value(hi, cx)?);
                let t = self.b.ins().fmax(x, lo);
                self.b.ins().fmin(t, hi)
            }
            Expr::Spike { arg, inclusive, .. } => {
                let u = self.value(arg, cx)?;
                let z = self.fconst(0.0);
                let one = self.fconst(1.0);
                let cc = if inclusive {
                    FloatCC::GreaterThanOrEqual
                } else {
                    FloatCC::GreaterThan
                };
                let c = self.b.ins().fcmp(cc, u, z);
                self.b.ins().select(c, one, z)
            }
        };
        let space = if param_only(m, e, &mut self.param_memo) {
            Space::Global
        } else {
            m.space(e)
        };
        Ok(self.remember(e, v, space))
    }

    /// A neuron-space value computed by an earlier stage (or a variable) at index `idx`.
    fn load_neuron_value(&mut self, a: ExprId, idx: Option<Value>) -> Result<Value, JitError> {
        match *self.m.expr(a) {
            Expr::Const(c) => Ok(self.fconst(c.0)),
            Expr::Read(var) => {
                let base = self.var_base[var.index()].expect("var base");
                let addr = self.addr(base, idx);
                Ok(self.b.ins().load(self.ty, flags(), addr, 0))
            }
            _ if self.materialized.contains(&a) => {
                let base = self.node_base(a);
                let addr = self.addr(base, idx);
                Ok(self.b.ins().load(self.ty, flags(), addr, 0))
            }
            _ => Err(JitError::Internal(format!(
                "broadcast of {a:?}, which no earlier stage computed"
            ))),
        }
    }

    /// Caches a value in the scope where it is valid: values of parameters only can be
    /// reused anywhere below the current scope; others only in this iteration.
    fn remember(&mut self, e: ExprId, v: Value, _space: Space) -> Value {
        self.scopes.last_mut().expect("a scope").insert(e, v);
        v
    }

    fn call1(&mut self, f: Libcall, x: Value) -> Value {
        let fr = self.libcalls[&f];
        let inst = self.b.ins().call(fr, &[x]);
        self.b.inst_results(inst)[0]
    }

    fn unary(&mut self, op: UnOp, x: Value) -> Value {
        let f32 = self.ty == types::F32;
        let pick = |a: Libcall, b: Libcall| if f32 { b } else { a };
        match op {
            UnOp::Neg => self.b.ins().fneg(x),
            UnOp::Abs => self.b.ins().fabs(x),
            UnOp::Sqrt => self.b.ins().sqrt(x),
            UnOp::Relu => {
                let z = self.fconst(0.0);
                self.b.ins().fmax(x, z)
            }
            UnOp::Exp => self.call1(pick(Libcall::Exp, Libcall::ExpF), x),
            UnOp::Log => self.call1(pick(Libcall::Log, Libcall::LogF), x),
            UnOp::Tanh => self.call1(pick(Libcall::Tanh, Libcall::TanhF), x),
            UnOp::Sin => self.call1(pick(Libcall::Sin, Libcall::SinF), x),
            UnOp::Cos => self.call1(pick(Libcall::Cos, Libcall::CosF), x),
            UnOp::Sigmoid => {
                let n = self.b.ins().fneg(x);
                let e = self.call1(pick(Libcall::Exp, Libcall::ExpF), n);
                let one = self.fconst(1.0);
                let d = self.b.ins().fadd(one, e);
                self.b.ins().fdiv(one, d)
            }
        }
    }

    fn binary(&mut self, op: BinOp, x: Value, y: Value) -> Value {
        match op {
            BinOp::Add => self.b.ins().fadd(x, y),
            BinOp::Sub => self.b.ins().fsub(x, y),
            BinOp::Mul => self.b.ins().fmul(x, y),
            BinOp::Div => self.b.ins().fdiv(x, y),
            BinOp::Min => self.b.ins().fmin(x, y),
            BinOp::Max => self.b.ins().fmax(x, y),
            BinOp::Pow => {
                let f = if self.ty == types::F32 {
                    Libcall::PowF
                } else {
                    Libcall::Pow
                };
                let fr = self.libcalls[&f];
                let inst = self.b.ins().call(fr, &[x, y]);
                self.b.inst_results(inst)[0]
            }
            BinOp::Lt | BinOp::Le => {
                let cc = if op == BinOp::Lt {
                    FloatCC::LessThan
                } else {
                    FloatCC::LessThanOrEqual
                };
                let c = self.b.ins().fcmp(cc, x, y);
                let one = self.fconst(1.0);
                let z = self.fconst(0.0);
                self.b.ins().select(c, one, z)
            }
        }
    }
}

/// Vectors per iteration of a dense f32x4 synapse loop: 8 where the body has at most 3
/// reductions (short bodies: the pointer increments and the branch weigh), 4 where it
/// has more (W1's adjoint main pass, which spills already: 8 was slower there), halved
/// while the row has fewer than two iterations' worth, down to 2. Measured on W1's
/// gradients: 4 everywhere or 8 everywhere was slower at N = 128 than this split.
fn unroll_factor(reductions: usize, n_vec: usize) -> usize {
    let mut u = if reductions <= 3 { 8 } else { 4 };
    while u > 2 && n_vec < 2 * u {
        u /= 2;
    }
    u
}
