//! IR -> Cranelift IR: one function `step(vars, scratch, masks, episode)` that runs one
//! time step of one episode. The one big `match` over IR nodes lives here.
//!
//! Arguments: `vars` is a table of base pointers, one per IR variable (parameters are
//! shared; states and inputs are `[episode][index]` and offset by the episode here);
//! `scratch` a table of per-episode buffers (materialized nodes, next-state buffers);
//! `masks` a table of connectivity masks (`u8`, `[post][pre]`), null for dense
//! projections.

use crate::math::Libcall;
use crate::schedule::{param_only, Schedule, Stage};
use crate::{JitError, Precision};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, AbiParam, FuncRef, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::{FunctionBuilder, Variable};
use lang::ir::{BinOp, Connectivity, Expr, ExprId, Module, Side, Space, UnOp, VarId, VarKind};
use std::collections::{HashMap, HashSet};

/// Where everything lives at run time; shared by the translator and the runtime.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Per scratch slot: number of elements (per episode).
    pub scratch: Vec<usize>,
    /// Scratch slot of each materialized node.
    pub node_slot: HashMap<ExprId, usize>,
    /// Scratch slot of each next-state buffer.
    pub next_slot: HashMap<VarId, usize>,
    /// Projections that need a mask (not dense).
    pub masked: Vec<bool>,
}

impl Layout {
    /// Lays out the buffers a schedule needs.
    pub fn new(m: &Module, s: &Schedule) -> Layout {
        let mut scratch = Vec::new();
        let mut node_slot = HashMap::new();
        for &e in &s.materialized {
            node_slot.insert(e, scratch.len());
            scratch.push(m.space_size(m.space(e)));
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
            next_slot,
            masked,
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
    scratch_base: Vec<Value>,
    mask_base: Vec<Option<Value>>,
    libcalls: HashMap<Libcall, FuncRef>,
    scopes: Vec<HashMap<ExprId, Value>>,
    materialized: HashSet<ExprId>,
    /// Nodes computed in the stage being emitted.
    current: HashSet<ExprId>,
    param_memo: HashMap<ExprId, bool>,
}

fn flags() -> MemFlagsData {
    MemFlagsData::trusted()
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
        for (v, var) in m.vars.iter() {
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
        let materialized = s.materialized.iter().copied().collect();
        Tx {
            m,
            s,
            layout,
            b,
            ty,
            es,
            var_base,
            scratch_base,
            mask_base,
            libcalls,
            scopes: vec![HashMap::new()],
            materialized,
            current: HashSet::new(),
            param_memo: HashMap::new(),
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
        for stage in &self.s.stages {
            self.stage(stage)?;
        }
        // Late updates: values of another space or other variables, into next buffers.
        for &(v, e) in &self.s.late {
            let space = self.m.vars[v].space;
            let slot = self.layout.next_slot[&v];
            self.for_space(space, &mut |tx, cx| {
                let x = tx.value_at(e, &cx)?;
                let addr = tx.addr(tx.scratch_base[slot], tx.index(space, &cx));
                tx.b.ins().store(flags(), x, addr, 0);
                Ok(())
            })?;
        }
        for &v in &self.s.via_next {
            let space = self.m.vars[v].space;
            let slot = self.layout.next_slot[&v];
            let base = self.var_base[v.index()].expect("var base");
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
        let header = self.b.create_block();
        let body_block = self.b.create_block();
        let exit = self.b.create_block();
        let iv = self.b.declare_var(types::I64);
        let zero = self.b.ins().iconst(types::I64, 0);
        self.b.def_var(iv, zero);
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(header);
        let i = self.b.use_var(iv);
        let more = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, i, n as i64);
        self.b.ins().brif(more, body_block, &[], exit, &[]);
        self.b.switch_to_block(body_block);
        self.scopes.push(HashMap::new());
        body(self, i)?;
        self.scopes.pop();
        let next = self.b.ins().iadd_imm_s(i, 1);
        self.b.def_var(iv, next);
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(exit);
        Ok(())
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

    fn stage(&mut self, stage: &Stage) -> Result<(), JitError> {
        self.current = stage.nodes.iter().copied().collect();
        let m = self.m;
        let reductions: Vec<ExprId> = stage
            .nodes
            .iter()
            .copied()
            .filter(|&e| {
                matches!(
                    m.expr(e),
                    Expr::SumPre(..) | Expr::SumPost(..) | Expr::SumPop(..)
                )
            })
            .collect();
        let plain: Vec<ExprId> = stage
            .nodes
            .iter()
            .copied()
            .filter(|e| !reductions.contains(e))
            .collect();
        // Zero the SumPost buffers; declare accumulators.
        for &r in &reductions {
            if let Expr::SumPost(_, _) = m.expr(r) {
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
        let mut accs: HashMap<ExprId, Variable> = HashMap::new();
        for &r in &reductions {
            if matches!(m.expr(r), Expr::SumPre(..) | Expr::SumPop(..)) {
                let v = self.b.declare_var(self.ty);
                accs.insert(r, v);
            }
        }
        let zero = self.fconst(0.0);
        let pop_accs: Vec<ExprId> = reductions
            .iter()
            .copied()
            .filter(|&r| matches!(m.expr(r), Expr::SumPop(..)))
            .collect();
        for &r in &pop_accs {
            self.b.def_var(accs[&r], zero);
        }
        let body = |tx: &mut Self, cx: Cx| -> Result<(), JitError> {
            for &e in &plain {
                let x = tx.value(e, &cx)?;
                if tx.materialized.contains(&e) {
                    let slot = tx.layout.node_slot[&e];
                    let a = tx.addr(tx.scratch_base[slot], tx.index(m.space(e), &cx));
                    tx.b.ins().store(flags(), x, a, 0);
                }
            }
            for &r in &reductions {
                match *m.expr(r) {
                    Expr::SumPre(q, a) | Expr::SumPost(q, a) => {
                        let mut x = tx.value(a, &cx)?;
                        if let Some(mb) = tx.mask_base[q.index()] {
                            let addr = tx.b.ins().iadd(mb, cx.k.expect("syn index"));
                            let byte = tx.b.ins().load(types::I8, flags().with_readonly(), addr, 0);
                            let z = tx.fconst(0.0);
                            x = tx.b.ins().select(byte, x, z);
                        }
                        if let Expr::SumPre(..) = m.expr(r) {
                            let acc = tx.b.use_var(accs[&r]);
                            let s = tx.b.ins().fadd(acc, x);
                            tx.b.def_var(accs[&r], s);
                        } else {
                            let slot = tx.layout.node_slot[&r];
                            let addr = tx.addr(tx.scratch_base[slot], cx.j);
                            let old = tx.b.ins().load(tx.ty, flags(), addr, 0);
                            let s = tx.b.ins().fadd(old, x);
                            tx.b.ins().store(flags(), s, addr, 0);
                        }
                    }
                    Expr::SumPop(_, a) => {
                        let x = tx.value(a, &cx)?;
                        let acc = tx.b.use_var(accs[&r]);
                        let s = tx.b.ins().fadd(acc, x);
                        tx.b.def_var(accs[&r], s);
                    }
                    _ => unreachable!("reductions only"),
                }
            }
            for &(v, e, next) in &stage.stores {
                let x = tx.value(e, &cx)?;
                let idx = tx.index(m.vars[v].space, &cx);
                let base = if next {
                    tx.scratch_base[tx.layout.next_slot[&v]]
                } else {
                    tx.var_base[v.index()].expect("base")
                };
                let a = tx.addr(base, idx);
                tx.b.ins().store(flags(), x, a, 0);
            }
            Ok(())
        };
        match stage.space {
            Space::Syn(q) => {
                let proj = &m.projs[q];
                let (n_post, n_pre) = (m.pops[proj.post].size, m.pops[proj.pre].size);
                let row_accs: Vec<ExprId> = reductions
                    .iter()
                    .copied()
                    .filter(|&r| matches!(m.expr(r), Expr::SumPre(..)))
                    .collect();
                self.counted_loop(n_post, &mut |tx, i| {
                    let z = tx.fconst(0.0);
                    for &r in &row_accs {
                        tx.b.def_var(accs[&r], z);
                    }
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
                    })?;
                    for &r in &row_accs {
                        let s = tx.b.use_var(accs[&r]);
                        let slot = tx.layout.node_slot[&r];
                        let a = tx.addr(tx.scratch_base[slot], Some(i));
                        tx.b.ins().store(flags(), s, a, 0);
                    }
                    Ok(())
                })?;
            }
            space => self.for_space(space, &mut |tx, cx| body(tx, cx))?,
        }
        for &r in &pop_accs {
            let s = self.b.use_var(accs[&r]);
            let slot = self.layout.node_slot[&r];
            let a = self.addr(self.scratch_base[slot], None);
            self.b.ins().store(flags(), s, a, 0);
        }
        self.current.clear();
        Ok(())
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
            let slot = self.layout.node_slot[&e];
            let a = self.addr(self.scratch_base[slot], index);
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
                let slot = self.layout.node_slot[&a];
                let addr = self.addr(self.scratch_base[slot], idx);
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
