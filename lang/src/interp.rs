//! The reference interpreter: the meaning of the IR, in f64, simple rather than fast.
//!
//! It is the oracle later back ends are compared against. For every step and every
//! episode it evaluates, in arena order, the nodes the updates need (not the
//! initializer-only ones), each into a buffer of its space's size (`Global` 1,
//! `Pop(p)` `size(p)`, `Syn(q)` `n_post * n_pre` row-major `[i_post][j_pre]`), then
//! writes every update into the state: all reads see the values at the start of the
//! step.
//!
//! Conventions fixed here (a back end must match them):
//!
//! - A `Global` operand broadcasts; so does the `Global` argument of a broadcast.
//! - Reductions ([`Expr::SumPre`], [`Expr::SumPost`]) skip unconnected synapses
//!   (rather than multiplying by 0, so a non-finite value there does not leak).
//! - [`BinOp::Min`], [`BinOp::Max`], [`UnOp::Relu`] and [`Expr::Clip`] propagate NaN
//!   and order `-0 < +0` (IEEE 754-2019 `minimum`/`maximum`).
//! - [`Expr::Spike`] is `1` if `u > 0` (`u >= 0` when inclusive), else `0` (also for NaN);
//!   comparisons give `1`/`0`.
//! - [`UnOp::Sigmoid`] is `1 / (1 + e^-x)`; [`BinOp::Pow`] is `powf`; [`UnOp::Log`] is
//!   the natural log.

use crate::init::{check_instance, initial_state, reachable, InitError, Instance, State};
use crate::ir::{BinOp, Expr, ExprId, Module, Side, Space, UnOp, VarId, VarKind};
use crate::validate::{validate, ValidationError};

/// Why a module cannot be interpreted.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum InterpError {
    /// The module has an expression still to be discovered.
    #[error("node #{node} is the hole `?{name}`: a module with holes cannot run")]
    Hole {
        /// Arena index of the hole node.
        node: usize,
        /// The hole's name.
        name: String,
    },
    /// The module is not well-formed.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The instance does not belong to the module.
    #[error("instance does not match the module: {0}")]
    Instance(String),
    /// Instantiating the initial state failed.
    #[error(transparent)]
    Init(#[from] InitError),
    /// A recorded variable does not exist.
    #[error("cannot record variable {0:?}: no such variable")]
    NoSuchVar(VarId),
}

/// Value `k` of an operand, broadcasting a single (Global) value.
fn at(v: &[f64], k: usize) -> f64 {
    if v.len() == 1 {
        v[0]
    } else {
        v[k]
    }
}

/// IEEE 754-2019 `maximum`: NaN if either is NaN, `-0 < +0`.
pub(crate) fn fmax(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b {
        if a.is_sign_negative() {
            b
        } else {
            a
        }
    } else if a > b {
        a
    } else {
        b
    }
}

/// IEEE 754-2019 `minimum`: NaN if either is NaN, `-0 < +0`.
pub(crate) fn fmin(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b {
        if a.is_sign_negative() {
            a
        } else {
            b
        }
    } else if a < b {
        a
    } else {
        b
    }
}

fn unary(op: UnOp, x: f64) -> f64 {
    crate::algebra::eval_un(op, x)
}

fn binary(op: BinOp, a: f64, b: f64) -> f64 {
    crate::algebra::eval_bin(op, a, b)
}

/// Evaluates one node other than [`Expr::Read`] and [`Expr::Hole`] (the caller's
/// business) into `out`, sized for the node's space. `before[k]` holds the value of
/// node `k` for every operand `k`.
pub(crate) fn eval_op(
    m: &Module,
    masks: &[Vec<bool>],
    e: &Expr,
    before: &[Vec<f64>],
    out: &mut [f64],
) {
    let val = |id: ExprId| -> &[f64] { &before[id.index()] };
    match e {
        Expr::Const(c) => out.fill(c.0),
        Expr::Unary(op, a) => {
            let a = val(*a);
            for (k, o) in out.iter_mut().enumerate() {
                *o = unary(*op, at(a, k));
            }
        }
        Expr::Binary(op, a, b) => {
            let (a, b) = (val(*a), val(*b));
            for (k, o) in out.iter_mut().enumerate() {
                *o = binary(*op, at(a, k), at(b, k));
            }
        }
        Expr::Clip(x, lo, hi) => {
            let (x, lo, hi) = (val(*x), val(*lo), val(*hi));
            for (k, o) in out.iter_mut().enumerate() {
                *o = fmin(fmax(at(x, k), at(lo, k)), at(hi, k));
            }
        }
        Expr::Spike { arg, inclusive, .. } => {
            let u = val(*arg);
            for (k, o) in out.iter_mut().enumerate() {
                let u = at(u, k);
                *o = f64::from(u8::from(u > 0.0 || (*inclusive && u == 0.0)));
            }
        }
        Expr::Bcast(q, side, a) => {
            let a = val(*a);
            let n_pre = m.pops[m.projs[*q].pre].size;
            for (k, o) in out.iter_mut().enumerate() {
                let (i, j) = (k / n_pre, k % n_pre);
                *o = at(a, if *side == Side::Pre { j } else { i });
            }
        }
        Expr::SumPre(q, a) => {
            let (a, mask) = (val(*a), &masks[q.index()]);
            let n_pre = m.pops[m.projs[*q].pre].size;
            for (i, o) in out.iter_mut().enumerate() {
                *o = (0..n_pre)
                    .filter(|&j| mask[i * n_pre + j])
                    .map(|j| a[i * n_pre + j])
                    .sum();
            }
        }
        Expr::SumPost(q, a) => {
            let (a, mask) = (val(*a), &masks[q.index()]);
            let n_pre = m.pops[m.projs[*q].pre].size;
            let n_post = m.pops[m.projs[*q].post].size;
            for (j, o) in out.iter_mut().enumerate() {
                *o = (0..n_post)
                    .filter(|&i| mask[i * n_pre + j])
                    .map(|i| a[i * n_pre + j])
                    .sum();
            }
        }
        Expr::SumPop(_, a) => out[0] = val(*a).iter().sum(),
        Expr::Read(_) | Expr::Hole(..) => {
            unreachable!("eval_op: reads and holes are evaluated by the caller")
        }
    }
}

/// The reference interpreter of one module instance.
#[derive(Debug)]
pub struct Interp<'m> {
    m: &'m Module,
    inst: &'m Instance,
    /// The nodes the updates need, in arena order.
    order: Vec<ExprId>,
    /// Per node (arena index): its value in the current episode; empty if not needed.
    bufs: Vec<Vec<f64>>,
    /// Smooth mode: each spike is the integral of its surrogate (a test mode in which
    /// the surrogate gradient is the true gradient).
    pub smooth: bool,
}

impl<'m> Interp<'m> {
    /// Prepares to run `m` with the parameters and masks of `inst`.
    ///
    /// Errors if the module does not validate, has a hole (anywhere live), or the
    /// instance does not have the module's shape.
    pub fn new(m: &'m Module, inst: &'m Instance) -> Result<Self, InterpError> {
        validate(m)?;
        let live = m.live();
        for (id, e) in m.exprs().iter() {
            if let (true, Expr::Hole(name, _)) = (live[id.index()], e) {
                return Err(InterpError::Hole {
                    node: id.index(),
                    name: name.clone(),
                });
            }
        }
        check_instance(m, inst).map_err(InterpError::Instance)?;
        let roots: Vec<ExprId> = m.updates.iter().map(|&(_, e)| e).collect();
        let order = reachable(m, &roots);
        let mut bufs = vec![Vec::new(); m.exprs().len()];
        for &id in &order {
            bufs[id.index()] = vec![0.0; m.space_size(m.space(id))];
        }
        Ok(Interp {
            m,
            inst,
            order,
            bufs,
            smooth: false,
        })
    }

    /// The module being run.
    pub fn module(&self) -> &'m Module {
        self.m
    }

    /// One step for every episode: reads `state.values` (State vars at the start of
    /// the step, Input vars as set by the caller), writes the new values of all State
    /// vars.
    ///
    /// Panics if `state` does not have the shape of the module's state for
    /// `state.batch` episodes (as made by [`initial_state`]).
    pub fn step(&mut self, state: &mut State) {
        let m = self.m;
        assert_eq!(
            state.values.len(),
            m.vars.len(),
            "state has the wrong number of variables"
        );
        for (v, var) in m.vars.iter() {
            let want = match var.kind {
                VarKind::Param { .. } => 0,
                _ => state.batch * m.space_size(var.space),
            };
            assert_eq!(
                state.values[v.index()].len(),
                want,
                "state of `{}` has the wrong length",
                var.name
            );
        }
        for b in 0..state.batch {
            for &id in &self.order {
                let (before, rest) = self.bufs.split_at_mut(id.index());
                let out = &mut rest[0];
                match m.expr(id) {
                    Expr::Read(v) => {
                        let var = &m.vars[*v];
                        match var.kind {
                            VarKind::Param { .. } => {
                                out.copy_from_slice(&self.inst.params[v.index()])
                            }
                            _ => {
                                let n = out.len();
                                out.copy_from_slice(&state.values[v.index()][b * n..(b + 1) * n]);
                            }
                        }
                    }
                    Expr::Spike { arg, surrogate, .. } if self.smooth => {
                        let (u, a, bb) = (
                            &before[arg.index()],
                            before[surrogate.a.index()][0],
                            before[surrogate.b.index()][0],
                        );
                        for (k, o) in out.iter_mut().enumerate() {
                            *o =
                                crate::algebra::surrogate_integral(surrogate.kind, a, bb, at(u, k));
                        }
                    }
                    e => eval_op(m, &self.inst.masks, e, before, out),
                }
            }
            for &(v, e) in &m.updates {
                let n = m.space_size(m.vars[v].space);
                let dst = &mut state.values[v.index()][b * n..(b + 1) * n];
                let src = &self.bufs[e.index()];
                for (k, d) in dst.iter_mut().enumerate() {
                    *d = at(src, k);
                }
            }
        }
    }
}

/// What to run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunConfig {
    /// Number of steps.
    pub steps: usize,
    /// Number of episodes run in lock-step.
    pub batch: usize,
    /// Seed of the initial state's random draws (see [`crate::init`]).
    pub seed: u64,
    /// Variables whose values are recorded after every step.
    pub record: Vec<VarId>,
}

/// What a run produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// Per population (`PopId.index()`): `(step, episode, neuron)` for every nonzero
    /// value of the population's `out` variable after each step, in that order.
    /// Only spiking populations are recorded (the list is empty for the others): those
    /// whose `out` is a State variable whose update expression contains a
    /// [`Expr::Spike`] node in the population's own space. Input populations and rate
    /// models are not recorded.
    pub spikes: Vec<Vec<(u32, u32, u32)>>,
    /// Per recorded variable, in [`RunConfig::record`] order, per step (outer): the
    /// values after the step, flattened `[episode * size + index]`. A parameter has no
    /// episode index: its values, once per step.
    pub records: Vec<Vec<Vec<f64>>>,
}

/// The populations whose output is a spike (see [`Trace::spikes`]): per population,
/// its out variable if it spikes.
pub fn spiking_outputs(m: &Module) -> Vec<Option<VarId>> {
    m.pops
        .iter()
        .map(|(p, pop)| {
            let out = pop.out?;
            let (_, e) = m.updates.iter().find(|&&(v, _)| v == out)?;
            let spikes = reachable(m, &[*e])
                .into_iter()
                .any(|id| matches!(m.expr(id), Expr::Spike { .. }) && m.space(id) == Space::Pop(p));
            (spikes && matches!(m.vars[out].kind, VarKind::State { .. })).then_some(out)
        })
        .collect()
}

/// Runs `cfg.steps` steps from the initial state drawn with `cfg.seed`; before each
/// step calls `drive(t, &mut state)` so the caller sets Input vars.
pub fn run(
    m: &Module,
    inst: &Instance,
    cfg: &RunConfig,
    drive: &mut dyn FnMut(usize, &mut State),
) -> Result<Trace, InterpError> {
    let mut interp = Interp::new(m, inst)?;
    if let Some(&v) = cfg.record.iter().find(|v| v.index() >= m.vars.len()) {
        return Err(InterpError::NoSuchVar(v));
    }
    let mut state = initial_state(m, inst, cfg.batch, cfg.seed)?;
    let spiking = spiking_outputs(m);
    let mut trace = Trace {
        spikes: vec![Vec::new(); m.pops.len()],
        records: vec![Vec::new(); cfg.record.len()],
    };
    for t in 0..cfg.steps {
        drive(t, &mut state);
        interp.step(&mut state);
        for (p, out) in spiking.iter().enumerate() {
            let Some(out) = *out else { continue };
            let n = m.space_size(m.vars[out].space);
            for (k, &z) in state.values[out.index()].iter().enumerate() {
                if z != 0.0 {
                    trace.spikes[p].push((t as u32, (k / n) as u32, (k % n) as u32));
                }
            }
        }
        for (r, v) in cfg.record.iter().enumerate() {
            let vals = match m.vars[*v].kind {
                VarKind::Param { .. } => &inst.params[v.index()],
                _ => &state.values[v.index()],
            };
            trace.records[r].push(vals.clone());
        }
    }
    Ok(trace)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::init::instantiate;
    use crate::ir::{Connectivity, Init, Pop, PopId, Proj, ProjId, Surrogate, SurrogateKind, Var};

    /// Adds a population.
    pub(crate) fn pop(m: &mut Module, name: &str, size: usize, model: Option<&str>) -> PopId {
        m.pops.push(Pop {
            name: name.into(),
            size,
            model: model.map(String::from),
            out: None,
        })
    }

    /// Adds a projection.
    pub(crate) fn proj(
        m: &mut Module,
        name: &str,
        pre: PopId,
        post: PopId,
        conn: Connectivity,
    ) -> ProjId {
        m.projs.push(Proj {
            name: name.into(),
            pre,
            post,
            rule: "R".into(),
            conn,
        })
    }

    /// Adds a variable.
    pub(crate) fn var(m: &mut Module, name: &str, space: Space, kind: VarKind) -> VarId {
        m.vars.push(Var {
            name: name.into(),
            space,
            kind,
            unit: 0,
        })
    }

    /// Adds a fixed parameter initialized to the constant `x`.
    pub(crate) fn param(m: &mut Module, name: &str, space: Space, x: f64) -> VarId {
        let c = m.constant(x);
        var(
            m,
            name,
            space,
            VarKind::Param {
                learn: false,
                init: Init::Expr(c),
                bounds: None,
            },
        )
    }

    /// Adds a state variable initialized to the constant `x` (its update is the
    /// caller's business).
    pub(crate) fn state(m: &mut Module, name: &str, space: Space, x: f64) -> VarId {
        let c = m.constant(x);
        var(
            m,
            name,
            space,
            VarKind::State {
                init: Init::Expr(c),
            },
        )
    }

    pub(crate) fn read(m: &mut Module, v: VarId) -> ExprId {
        m.add(Expr::Read(v))
    }

    pub(crate) fn bin(m: &mut Module, op: BinOp, a: ExprId, b: ExprId) -> ExprId {
        m.add(Expr::Binary(op, a, b))
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * (1.0 + a.abs().max(b.abs()))
    }

    /// v' = a v + c with a Global `a` and a per-neuron `c` drawn uniformly.
    #[test]
    fn leaky_integrator_matches_closed_form() {
        let mut m = Module::new("leak", 1.0);
        let p = pop(&mut m, "p", 3, Some("Leak"));
        let a = param(&mut m, "p.a", Space::Global, 0.9);
        let (lo, hi) = (m.constant(0.0), m.constant(1.0));
        let c = var(
            &mut m,
            "p.c",
            Space::Pop(p),
            VarKind::Param {
                learn: true,
                init: Init::Uniform { lo, hi },
                bounds: None,
            },
        );
        let v = state(&mut m, "p.v", Space::Pop(p), 2.0);
        let (ra, rv, rc) = (read(&mut m, a), read(&mut m, v), read(&mut m, c));
        let av = bin(&mut m, BinOp::Mul, ra, rv);
        let next = bin(&mut m, BinOp::Add, av, rc);
        m.updates.push((v, next));
        let inst = instantiate(&m, 7).unwrap();
        let cs = inst.params[c.index()].clone();
        assert!(cs[0] != cs[1] && cs.iter().all(|&x| (0.0..1.0).contains(&x)));
        let cfg = RunConfig {
            steps: 50,
            batch: 2,
            seed: 1,
            record: vec![v, c],
        };
        let trace = run(&m, &inst, &cfg, &mut |_, _| {}).unwrap();
        assert_eq!(trace.records[0].len(), 50);
        for (t, vals) in trace.records[0].iter().enumerate() {
            let at = 0.9f64.powi(t as i32 + 1);
            assert_eq!(vals.len(), 6);
            for (k, &x) in vals.iter().enumerate() {
                let want = at * 2.0 + cs[k % 3] * (1.0 - at) / (1.0 - 0.9);
                assert!(close(x, want), "step {t} element {k}: {x} vs {want}");
            }
        }
        // A parameter is recorded without episode index.
        assert_eq!(trace.records[1][49], cs);
        assert!(trace.spikes.iter().all(Vec::is_empty));
    }

    /// pops a[3] (input) -> b[2], weight `w` in Syn(q); b.I = sum_j w_ij x_j,
    /// a.back = sum_i w_ij y_i, g = sum_j x_j.
    fn matvec_module(conn: Connectivity) -> (Module, VarId, [VarId; 5]) {
        let mut m = Module::new("mv", 1.0);
        let a = pop(&mut m, "a", 3, None);
        let b = pop(&mut m, "b", 2, Some("M"));
        let q = proj(&mut m, "q", a, b, conn);
        let x = var(&mut m, "a.x", Space::Pop(a), VarKind::Input);
        m.pops[a].out = Some(x);
        let y = var(&mut m, "b.y", Space::Pop(b), VarKind::Input);
        let w = param(&mut m, "q.w", Space::Syn(q), 0.5);
        let i = state(&mut m, "b.I", Space::Pop(b), 0.0);
        let back = state(&mut m, "a.back", Space::Pop(a), 0.0);
        let g = state(&mut m, "g", Space::Global, 0.0);
        let (rx, ry, rw) = (read(&mut m, x), read(&mut m, y), read(&mut m, w));
        let xb = m.add(Expr::Bcast(q, Side::Pre, rx));
        let wx = bin(&mut m, BinOp::Mul, rw, xb);
        let cur = m.add(Expr::SumPre(q, wx));
        let yb = m.add(Expr::Bcast(q, Side::Post, ry));
        let wy = bin(&mut m, BinOp::Mul, rw, yb);
        let bk = m.add(Expr::SumPost(q, wy));
        let sum = m.add(Expr::SumPop(a, rx));
        m.updates.extend([(i, cur), (back, bk), (g, sum)]);
        (m, w, [x, y, i, back, g])
    }

    /// Runs one step of `matvec_module` with w = [[1,2,3],[4,5,6]] (plus `patch`),
    /// x = [1,2,3], y = [1,10]; returns (b.I, a.back, g) and the mask.
    fn matvec_run(
        conn: Connectivity,
        patch: &dyn Fn(&mut Vec<f64>),
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<bool>) {
        let (m, w, [x, y, i, back, g]) = matvec_module(conn);
        let mut inst = instantiate(&m, 3).unwrap();
        assert_eq!(inst.params[w.index()], vec![0.5; 6]);
        inst.params[w.index()] = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        patch(&mut inst.params[w.index()]);
        let cfg = RunConfig {
            steps: 1,
            batch: 1,
            seed: 0,
            record: vec![i, back, g],
        };
        let trace = run(&m, &inst, &cfg, &mut |_, s: &mut State| {
            s.values[x.index()].copy_from_slice(&[1.0, 2.0, 3.0]);
            s.values[y.index()].copy_from_slice(&[1.0, 10.0]);
        })
        .unwrap();
        let r = |k: usize| trace.records[k][0].clone();
        (r(0), r(1), r(2), inst.masks[0].clone())
    }

    #[test]
    fn sums_dense() {
        let (cur, back, g, mask) = matvec_run(Connectivity::Dense, &|_| {});
        assert_eq!(mask, vec![true; 6]);
        assert_eq!(cur, vec![14.0, 32.0]);
        assert_eq!(back, vec![41.0, 52.0, 63.0]);
        assert_eq!(g, vec![6.0]);
    }

    #[test]
    fn sums_dense_no_self_skip_unconnected() {
        // A NaN at an unconnected synapse must not leak into the sums.
        let (cur, back, g, mask) = matvec_run(Connectivity::DenseNoSelf, &|w| w[0] = f64::NAN);
        assert_eq!(mask, vec![false, true, true, true, false, true]);
        assert_eq!(cur, vec![2.0 * 2.0 + 3.0 * 3.0, 4.0 * 1.0 + 6.0 * 3.0]);
        assert_eq!(back, vec![40.0, 2.0, 63.0]);
        assert_eq!(g, vec![6.0]);
    }

    #[test]
    fn sums_random_mask() {
        let (cur, back, _, mask) = matvec_run(Connectivity::Random { p: 0.5 }, &|_| {});
        let w = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
        let (x, y) = ([1.0, 2.0, 3.0], [1.0, 10.0]);
        let mut want_cur = [0.0; 2];
        let mut want_back = [0.0; 3];
        for i in 0..2 {
            for j in 0..3 {
                if mask[i * 3 + j] {
                    want_cur[i] += w[i][j] * x[j];
                    want_back[j] += w[i][j] * y[i];
                }
            }
        }
        assert_eq!(cur, want_cur);
        assert_eq!(back, want_back);
    }

    /// A 2-neuron LIF-like population: v1 = v + I; z = H(v1 - 1); v' = v1 - z.
    fn spiking_module(inclusive: bool) -> (Module, VarId, VarId, PopId) {
        let mut m = Module::new("spk", 1.0);
        let p = pop(&mut m, "n", 2, Some("LIF"));
        let i = param(&mut m, "n.I", Space::Pop(p), 0.375);
        let th = param(&mut m, "n.theta", Space::Global, 1.0);
        let v = state(&mut m, "n.v", Space::Pop(p), 0.0);
        let z = state(&mut m, "n.z", Space::Pop(p), 0.0);
        m.pops[p].out = Some(z);
        let (ri, rth, rv) = (read(&mut m, i), read(&mut m, th), read(&mut m, v));
        let v1 = bin(&mut m, BinOp::Add, rv, ri);
        let u = bin(&mut m, BinOp::Sub, v1, rth);
        let (sa, sb) = (m.constant(1.0), m.constant(10.0));
        let surrogate = Surrogate {
            kind: SurrogateKind::FastSigmoid,
            a: sa,
            b: sb,
        };
        let s = m.add(Expr::Spike {
            arg: u,
            inclusive,
            surrogate,
        });
        let zt = bin(&mut m, BinOp::Mul, s, rth);
        let vn = bin(&mut m, BinOp::Sub, v1, zt);
        m.updates.extend([(v, vn), (z, s)]);
        (m, i, v, p)
    }

    fn spike_times(trace: &Trace, p: PopId, neuron: u32, episode: u32) -> Vec<u32> {
        trace.spikes[p.index()]
            .iter()
            .filter(|s| s.1 == episode && s.2 == neuron)
            .map(|s| s.0)
            .collect()
    }

    #[test]
    fn spike_and_reset_by_subtraction() {
        let (m, i, v, p) = spiking_module(false);
        assert_eq!(spiking_outputs(&m), vec![Some(m.pops[p].out.unwrap())]);
        let mut inst = instantiate(&m, 0).unwrap();
        inst.params[i.index()][1] = 0.5;
        let cfg = RunConfig {
            steps: 12,
            batch: 2,
            seed: 0,
            record: vec![v],
        };
        let trace = run(&m, &inst, &cfg, &mut |_, _| {}).unwrap();
        for b in 0..2 {
            assert_eq!(spike_times(&trace, p, 0, b), vec![2, 5, 8, 10]);
            assert_eq!(spike_times(&trace, p, 1, b), vec![2, 4, 6, 8, 10]);
        }
        // Sorted by (step, episode, neuron).
        let mut sorted = trace.spikes[p.index()].clone();
        sorted.sort();
        assert_eq!(sorted, trace.spikes[p.index()]);
        let v0: Vec<f64> = trace.records[0].iter().map(|s| s[0]).collect();
        assert_eq!(
            v0,
            [0.375, 0.75, 0.125, 0.5, 0.875, 0.25, 0.625, 1.0, 0.375, 0.75, 0.125, 0.5]
        );

        // `>=` spikes at exactly 1.0 (step 7) too.
        let (m, _, _, p) = spiking_module(true);
        let inst = instantiate(&m, 0).unwrap();
        let cfg = RunConfig {
            steps: 12,
            batch: 1,
            seed: 0,
            record: vec![],
        };
        let trace = run(&m, &inst, &cfg, &mut |_, _| {}).unwrap();
        assert_eq!(spike_times(&trace, p, 0, 0), vec![2, 5, 7, 10]);
    }

    #[test]
    fn operators_match_std() {
        let mut m = Module::new("ops", 1.0);
        let (x, y) = (0.7, -1.3);
        let (cx, cy) = (m.constant(x), m.constant(y));
        let mut cases: Vec<(ExprId, f64)> = Vec::new();
        for (op, want) in [
            (UnOp::Neg, -x),
            (UnOp::Exp, x.exp()),
            (UnOp::Log, x.ln()),
            (UnOp::Tanh, x.tanh()),
            (UnOp::Sigmoid, 1.0 / (1.0 + (-x).exp())),
            (UnOp::Sqrt, x.sqrt()),
            (UnOp::Sin, x.sin()),
            (UnOp::Cos, x.cos()),
        ] {
            cases.push((m.add(Expr::Unary(op, cx)), want));
        }
        cases.push((m.add(Expr::Unary(UnOp::Abs, cy)), 1.3));
        cases.push((m.add(Expr::Unary(UnOp::Relu, cy)), 0.0));
        cases.push((m.add(Expr::Unary(UnOp::Relu, cx)), x));
        for (op, want) in [
            (BinOp::Add, x + y),
            (BinOp::Sub, x - y),
            (BinOp::Mul, x * y),
            (BinOp::Div, x / y),
            (BinOp::Pow, x.powf(y)),
            (BinOp::Min, y),
            (BinOp::Max, x),
            (BinOp::Lt, 0.0),
            (BinOp::Le, 0.0),
        ] {
            cases.push((bin(&mut m, op, cx, cy), want));
        }
        cases.push((bin(&mut m, BinOp::Lt, cy, cx), 1.0));
        cases.push((bin(&mut m, BinOp::Le, cx, cx), 1.0));
        let (lo, hi) = (m.constant(-1.0), m.constant(0.5));
        cases.push((m.add(Expr::Clip(cx, lo, hi)), 0.5));
        cases.push((m.add(Expr::Clip(cy, lo, hi)), -1.0));
        let nan = m.constant(f64::NAN);
        let nan_max = bin(&mut m, BinOp::Max, nan, cx);
        let outs: Vec<VarId> = cases
            .iter()
            .enumerate()
            .map(|(k, _)| state(&mut m, &format!("s{k}"), Space::Global, 0.0))
            .collect();
        let nan_out = state(&mut m, "nan", Space::Global, 0.0);
        for (k, &(e, _)) in cases.iter().enumerate() {
            m.updates.push((outs[k], e));
        }
        m.updates.push((nan_out, nan_max));
        let inst = instantiate(&m, 0).unwrap();
        let cfg = RunConfig {
            steps: 1,
            batch: 1,
            seed: 0,
            record: outs.clone(),
        };
        let trace = run(&m, &inst, &cfg, &mut |_, _| {}).unwrap();
        for (k, &(_, want)) in cases.iter().enumerate() {
            assert_eq!(
                trace.records[k][0],
                vec![want],
                "case {k}: {:?}",
                m.expr(cases[k].0)
            );
        }
        let mut interp = Interp::new(&m, &inst).unwrap();
        let mut s = initial_state(&m, &inst, 1, 0).unwrap();
        interp.step(&mut s);
        assert!(s.values[nan_out.index()][0].is_nan());
    }

    #[test]
    fn global_update_broadcasts_and_inputs_are_read() {
        let mut m = Module::new("bc", 1.0);
        let p = pop(&mut m, "p", 3, Some("M"));
        let sig = var(&mut m, "reward", Space::Global, VarKind::Input);
        let v = state(&mut m, "p.v", Space::Pop(p), 1.0);
        let r = read(&mut m, sig);
        m.updates.push((v, r));
        let inst = instantiate(&m, 0).unwrap();
        let cfg = RunConfig {
            steps: 3,
            batch: 2,
            seed: 0,
            record: vec![v],
        };
        let trace = run(&m, &inst, &cfg, &mut |t, s: &mut State| {
            s.values[sig.index()] = vec![t as f64, 10.0 * t as f64];
        })
        .unwrap();
        assert_eq!(trace.records[0][2], vec![2.0, 2.0, 2.0, 20.0, 20.0, 20.0]);
    }

    #[test]
    fn holes_and_bad_instances_are_rejected() {
        let mut m = Module::new("hole", 1.0);
        let v = state(&mut m, "v", Space::Global, 0.0);
        let r = read(&mut m, v);
        let h = m.add(Expr::Hole("f".into(), vec![r]));
        m.updates.push((v, h));
        let inst = Instance {
            params: vec![Vec::new()],
            masks: vec![],
        };
        match Interp::new(&m, &inst) {
            Err(InterpError::Hole { node, name }) => {
                assert_eq!((node, name.as_str()), (h.index(), "f"));
            }
            other => panic!("expected a hole error, got {other:?}"),
        }

        let mut m = Module::new("p", 1.0);
        let a = param(&mut m, "a", Space::Global, 1.0);
        let v = state(&mut m, "v", Space::Global, 0.0);
        let r = read(&mut m, a);
        m.updates.push((v, r));
        let bad = Instance {
            params: vec![Vec::new(), Vec::new()],
            masks: vec![],
        };
        assert!(matches!(
            Interp::new(&m, &bad),
            Err(InterpError::Instance(_))
        ));
        let good = instantiate(&m, 0).unwrap();
        assert!(Interp::new(&m, &good).is_ok());
    }
}
