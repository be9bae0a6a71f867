//! Instantiation: concrete parameter values, connectivity masks and initial states,
//! deterministic from a seed.
//!
//! # Random streams
//!
//! Every random draw comes from a [`ChaCha8Rng`] seeded with `seed_from_u64(seed)` and
//! switched to its own stream (`set_stream`), so adding a variable or a projection does
//! not change the draws of the others:
//!
//! | what | stream |
//! |---|---|
//! | parameter variable `v` | `v.index()` |
//! | mask of projection `q` | `1 << 32 \| q.index()` |
//! | state variable `v`, episode `b` | `1 << 63 \| b << 32 \| v.index()` |
//!
//! Within a stream, elements are drawn in storage order (row-major, see [`crate::ir`]).
//! State draws are per episode, so the first episodes of a batch start the same
//! whatever the batch size.
//!
//! # Initializers
//!
//! [`Init::Expr`] is evaluated over parameters (reading a state or an input is an
//! error) and broadcast into the variable's space if it is `Global`.
//! [`Init::Normal`]/[`Init::Uniform`] evaluate their arguments the same way (each
//! `Global` or in the variable's space) and draw independently per element; `Uniform`
//! draws in `[lo, hi)` and gives `lo` when `lo == hi`. Parameter initializers may read
//! other parameters: they are evaluated in dependency order, and a cycle is an error.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Uniform};

use crate::interp::eval_op;
use crate::ir::{Connectivity, Expr, ExprId, Init, Module, Space, Var, VarId, VarKind};
use crate::print::space_name;

/// Concrete parameter values and connectivity masks of one network instance.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// Per variable (indexed by `VarId.index()`): the values of a Param var
    /// (len = space size), empty for others.
    pub params: Vec<Vec<f64>>,
    /// Per projection (`ProjId.index()`): connectivity mask, len `n_post * n_pre`,
    /// row-major `[i_post][j_pre]`.
    pub masks: Vec<Vec<bool>>,
}

/// The state of a batch of episodes.
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    /// Number of episodes.
    pub batch: usize,
    /// Per variable (`VarId.index()`): len = `batch * space size` for State and Input
    /// vars (episode-major), empty for params.
    pub values: Vec<Vec<f64>>,
}

impl State {
    /// The values of variable `v` in episode `b` (empty for a parameter).
    pub fn episode(&self, m: &Module, v: VarId, b: usize) -> &[f64] {
        let n = m.space_size(m.vars[v].space);
        let vals = &self.values[v.index()];
        if vals.is_empty() {
            return vals;
        }
        &vals[b * n..(b + 1) * n]
    }

    /// The values of variable `v` in episode `b`, mutably (empty for a parameter).
    /// Use it to set inputs.
    pub fn episode_mut(&mut self, m: &Module, v: VarId, b: usize) -> &mut [f64] {
        let n = m.space_size(m.vars[v].space);
        let vals = &mut self.values[v.index()];
        if vals.is_empty() {
            return vals;
        }
        &mut vals[b * n..(b + 1) * n]
    }
}

/// Why a module could not be instantiated.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum InitError {
    /// An initializer reads a state or input variable.
    #[error("the initializer of `{var}` reads `{read}`, which is not a parameter")]
    ReadsNonParam {
        /// The variable being initialized.
        var: String,
        /// The state or input it reads.
        read: String,
    },
    /// An initializer contains an expression still to be discovered.
    #[error("the initializer of `{var}` contains the hole `?{hole}`")]
    Hole {
        /// The variable being initialized.
        var: String,
        /// The hole's name.
        hole: String,
    },
    /// Parameter initializers depend on each other in a cycle.
    #[error("the initializer of parameter `{var}` depends on itself")]
    Cycle {
        /// A parameter on the cycle.
        var: String,
    },
    /// Invalid distribution arguments (negative or non-finite sd, `lo > hi`, ...).
    #[error("the initializer of `{var}`: {msg}")]
    Distribution {
        /// The variable being initialized.
        var: String,
        /// What is wrong, with the element index.
        msg: String,
    },
    /// An initializer value is in a space that does not fit the variable.
    #[error("the initializer of `{var}` is in {found}, the variable in {want}")]
    Space {
        /// The variable being initialized.
        var: String,
        /// The initializer's space.
        found: String,
        /// The variable's space.
        want: String,
    },
    /// A random connectivity has a probability outside `[0, 1]`.
    #[error("projection `{proj}`: connection probability {p} is not in [0, 1]")]
    Probability {
        /// The projection.
        proj: String,
        /// The probability.
        p: f64,
    },
    /// The instance does not belong to the module.
    #[error("instance does not match the module: {0}")]
    Mismatch(String),
}

/// The operands of an initializer.
pub(crate) fn init_operands(init: &Init) -> Vec<ExprId> {
    match *init {
        Init::Expr(e) => vec![e],
        Init::Normal { mean: a, sd: b } | Init::Uniform { lo: a, hi: b } => vec![a, b],
        Init::Data(_) => vec![],
    }
}

/// The initializer of a parameter or state variable.
pub(crate) fn var_init(v: &Var) -> Option<&Init> {
    match &v.kind {
        VarKind::Param { init, .. } | VarKind::State { init } => Some(init),
        VarKind::Input => None,
    }
}

/// All nodes reachable from `roots`, in arena (topological) order.
pub(crate) fn reachable(m: &Module, roots: &[ExprId]) -> Vec<ExprId> {
    let mut seen = vec![false; m.exprs().len()];
    let mut stack = roots.to_vec();
    while let Some(e) = stack.pop() {
        if !std::mem::replace(&mut seen[e.index()], true) {
            stack.extend(m.expr(e).operands());
        }
    }
    seen.iter()
        .enumerate()
        .filter(|(_, &s)| s)
        .map(|(i, _)| ExprId::new(i))
        .collect()
}

fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Evaluates initializer expressions over parameters, memoizing node values.
struct InitEval {
    vals: Vec<Vec<f64>>,
    done: Vec<bool>,
}

impl InitEval {
    fn new(m: &Module) -> InitEval {
        InitEval {
            vals: vec![Vec::new(); m.exprs().len()],
            done: vec![false; m.exprs().len()],
        }
    }

    /// The value of `root` (in its own space), for the initializer of `owner`.
    /// Every parameter it reads must be in `params` already.
    fn eval(
        &mut self,
        m: &Module,
        params: &[Vec<f64>],
        masks: &[Vec<bool>],
        owner: VarId,
        root: ExprId,
    ) -> Result<&[f64], InitError> {
        for id in reachable(m, &[root]) {
            if self.done[id.index()] {
                continue;
            }
            let size = m.space_size(m.space(id));
            let mut out = vec![0.0; size];
            match m.expr(id) {
                Expr::Read(v) => {
                    let var = &m.vars[*v];
                    if !matches!(var.kind, VarKind::Param { .. }) {
                        return Err(InitError::ReadsNonParam {
                            var: m.vars[owner].name.clone(),
                            read: var.name.clone(),
                        });
                    }
                    let p = &params[v.index()];
                    if p.len() != size {
                        // Not computed yet: only possible on a dependency cycle.
                        return Err(InitError::Cycle {
                            var: var.name.clone(),
                        });
                    }
                    out.copy_from_slice(p);
                }
                Expr::Hole(name, _) => {
                    return Err(InitError::Hole {
                        var: m.vars[owner].name.clone(),
                        hole: name.clone(),
                    })
                }
                e => eval_op(m, masks, e, &self.vals[..id.index()], &mut out),
            }
            self.vals[id.index()] = out;
            self.done[id.index()] = true;
        }
        Ok(&self.vals[root.index()])
    }

    /// The value of `root` in the space of variable `owner` (broadcast if Global).
    fn eval_in(
        &mut self,
        m: &Module,
        params: &[Vec<f64>],
        masks: &[Vec<bool>],
        owner: VarId,
        root: ExprId,
    ) -> Result<Vec<f64>, InitError> {
        let want = m.vars[owner].space;
        let found = m.space(root);
        let n = m.space_size(want);
        if found != want && found != Space::Global {
            return Err(InitError::Space {
                var: m.vars[owner].name.clone(),
                found: space_name(m, found),
                want: space_name(m, want),
            });
        }
        let v = self.eval(m, params, masks, owner, root)?;
        Ok(if found == want {
            v.to_vec()
        } else {
            vec![v[0]; n]
        })
    }

    /// The values of variable `owner` from its initializer; random draws from `rng`.
    fn init_values(
        &mut self,
        m: &Module,
        params: &[Vec<f64>],
        masks: &[Vec<bool>],
        owner: VarId,
        init: &Init,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<f64>, InitError> {
        let name = || m.vars[owner].name.clone();
        match *init {
            Init::Expr(e) => self.eval_in(m, params, masks, owner, e),
            Init::Data(k) => m
                .data
                .get(k as usize)
                .filter(|d| d.len() == m.space_size(m.vars[owner].space))
                .cloned()
                .ok_or_else(|| InitError::Mismatch(format!("bad initial values of `{}`", name()))),
            Init::Normal { mean, sd } => {
                let mean = self.eval_in(m, params, masks, owner, mean)?;
                let sd = self.eval_in(m, params, masks, owner, sd)?;
                mean.iter()
                    .zip(&sd)
                    .enumerate()
                    .map(|(k, (&mu, &s))| {
                        if !mu.is_finite() || !s.is_finite() || s < 0.0 {
                            return Err(InitError::Distribution {
                                var: name(),
                                msg: format!("normal({mu}, {s}) at element {k}: needs a finite mean and sd >= 0"),
                            });
                        }
                        let d = Normal::new(mu, s).map_err(|e| InitError::Distribution {
                            var: name(),
                            msg: format!("normal({mu}, {s}) at element {k}: {e}"),
                        })?;
                        Ok(d.sample(rng))
                    })
                    .collect()
            }
            Init::Uniform { lo, hi } => {
                let lo = self.eval_in(m, params, masks, owner, lo)?;
                let hi = self.eval_in(m, params, masks, owner, hi)?;
                lo.iter()
                    .zip(&hi)
                    .enumerate()
                    .map(|(k, (&a, &b))| {
                        if !a.is_finite() || !b.is_finite() || a > b || !(b - a).is_finite() {
                            return Err(InitError::Distribution {
                                var: name(),
                                msg: format!(
                                    "uniform({a}, {b}) at element {k}: needs finite lo <= hi"
                                ),
                            });
                        }
                        if a == b {
                            // Keep the stream position independent of the arguments.
                            let _: f64 = rng.gen();
                            Ok(a)
                        } else {
                            Ok(Uniform::new(a, b).sample(rng))
                        }
                    })
                    .collect()
            }
        }
    }
}

/// The connectivity masks of a module's projections.
fn masks(m: &Module, seed: u64) -> Result<Vec<Vec<bool>>, InitError> {
    m.projs
        .iter()
        .map(|(q, proj)| {
            let n_pre = m.pops[proj.pre].size;
            let n_post = m.pops[proj.post].size;
            let mut mask = vec![true; n_post * n_pre];
            match proj.conn {
                Connectivity::Dense => {}
                Connectivity::DenseNoSelf => {
                    for i in 0..n_post.min(n_pre) {
                        mask[i * n_pre + i] = false;
                    }
                }
                Connectivity::OneToOne => {
                    for (k, b) in mask.iter_mut().enumerate() {
                        *b = k / n_pre == k % n_pre;
                    }
                }
                Connectivity::Random { p } => {
                    if !(0.0..=1.0).contains(&p) {
                        return Err(InitError::Probability {
                            proj: proj.name.clone(),
                            p,
                        });
                    }
                    let mut rng = rng_for(seed, 1 << 32 | q.index() as u64);
                    for b in mask.iter_mut() {
                        *b = rng.gen_bool(p);
                    }
                }
            }
            Ok(mask)
        })
        .collect()
}

/// The parameters a parameter's initializer reads (directly or through other nodes),
/// or an error if it reads a state or input or contains a hole.
fn param_deps(m: &Module, v: VarId, init: &Init) -> Result<Vec<VarId>, InitError> {
    let mut deps = Vec::new();
    for id in reachable(m, &init_operands(init)) {
        match m.expr(id) {
            Expr::Read(r) => match m.vars[*r].kind {
                VarKind::Param { .. } => deps.push(*r),
                _ => {
                    return Err(InitError::ReadsNonParam {
                        var: m.vars[v].name.clone(),
                        read: m.vars[*r].name.clone(),
                    })
                }
            },
            Expr::Hole(name, _) => {
                return Err(InitError::Hole {
                    var: m.vars[v].name.clone(),
                    hole: name.clone(),
                })
            }
            _ => {}
        }
    }
    Ok(deps)
}

/// The parameters in an order where each comes after those its initializer reads.
fn param_order(m: &Module) -> Result<Vec<(VarId, Init)>, InitError> {
    let mut deps: Vec<Option<(Init, Vec<VarId>)>> = vec![None; m.vars.len()];
    for (v, var) in m.vars.iter() {
        if let VarKind::Param { init, .. } = &var.kind {
            deps[v.index()] = Some((*init, param_deps(m, v, init)?));
        }
    }
    // Depth-first post-order with colours: 0 unvisited, 1 on the path, 2 done. An
    // explicit stack, so deep dependency chains cannot overflow.
    let mut colour = vec![0u8; m.vars.len()];
    let mut order = Vec::new();
    for start in m.vars.handles() {
        if deps[start.index()].is_none() || colour[start.index()] != 0 {
            continue;
        }
        let mut stack: Vec<(VarId, usize)> = vec![(start, 0)];
        colour[start.index()] = 1;
        while let Some((v, next)) = stack.pop() {
            let (init, ds) = deps[v.index()].as_ref().expect("only params are pushed");
            if let Some(&d) = ds.get(next) {
                stack.push((v, next + 1));
                match colour[d.index()] {
                    0 => {
                        colour[d.index()] = 1;
                        stack.push((d, 0));
                    }
                    1 => {
                        return Err(InitError::Cycle {
                            var: m.vars[d].name.clone(),
                        })
                    }
                    _ => {}
                }
            } else {
                colour[v.index()] = 2;
                order.push((v, *init));
            }
        }
    }
    Ok(order)
}

/// Draws the parameters and connectivity masks of one instance of `m`.
///
/// Deterministic in `seed`; see the module doc for the random streams. Errors when an
/// initializer reads a state or input, contains a hole, has invalid distribution
/// arguments or a wrong space, when parameters depend on each other in a cycle, or a
/// connection probability is outside `[0, 1]`.
pub fn instantiate(m: &Module, seed: u64) -> Result<Instance, InitError> {
    let masks = masks(m, seed)?;
    let mut params: Vec<Vec<f64>> = vec![Vec::new(); m.vars.len()];
    let mut ev = InitEval::new(m);
    for (v, init) in param_order(m)? {
        let mut rng = rng_for(seed, v.index() as u64);
        params[v.index()] = ev.init_values(m, &params, &masks, v, &init, &mut rng)?;
    }
    Ok(Instance { params, masks })
}

/// Checks that `inst` has the shape `m` asks for.
pub(crate) fn check_instance(m: &Module, inst: &Instance) -> Result<(), String> {
    if inst.params.len() != m.vars.len() {
        return Err(format!(
            "{} parameter slots for {} variables",
            inst.params.len(),
            m.vars.len()
        ));
    }
    for (v, var) in m.vars.iter() {
        let want = match var.kind {
            VarKind::Param { .. } => m.space_size(var.space),
            _ => 0,
        };
        let got = inst.params[v.index()].len();
        if got != want {
            return Err(format!(
                "`{}` has {got} parameter values, expected {want}",
                var.name
            ));
        }
    }
    if inst.masks.len() != m.projs.len() {
        return Err(format!(
            "{} masks for {} projections",
            inst.masks.len(),
            m.projs.len()
        ));
    }
    for (q, proj) in m.projs.iter() {
        let want = m.space_size(Space::Syn(q));
        let got = inst.masks[q.index()].len();
        if got != want {
            return Err(format!(
                "mask of `{}` has {got} entries, expected {want}",
                proj.name
            ));
        }
    }
    Ok(())
}

/// The state a batch of `batch` episodes starts in: State vars from their
/// initializers (random ones drawn per episode, see the module doc), Input vars 0,
/// nothing for params.
pub fn initial_state(
    m: &Module,
    inst: &Instance,
    batch: usize,
    seed: u64,
) -> Result<State, InitError> {
    check_instance(m, inst).map_err(InitError::Mismatch)?;
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); m.vars.len()];
    let mut ev = InitEval::new(m);
    for (v, var) in m.vars.iter() {
        let n = m.space_size(var.space);
        match &var.kind {
            VarKind::Param { .. } => {}
            VarKind::Input => values[v.index()] = vec![0.0; batch * n],
            VarKind::State { init } => {
                let mut vals = Vec::with_capacity(batch * n);
                if let Init::Expr(e) = *init {
                    // The same in every episode.
                    let x = ev.eval_in(m, &inst.params, &inst.masks, v, e)?;
                    for _ in 0..batch {
                        vals.extend_from_slice(&x);
                    }
                } else {
                    for b in 0..batch {
                        let mut rng = rng_for(seed, 1 << 63 | (b as u64) << 32 | v.index() as u64);
                        vals.extend(ev.init_values(
                            m,
                            &inst.params,
                            &inst.masks,
                            v,
                            init,
                            &mut rng,
                        )?);
                    }
                }
                values[v.index()] = vals;
            }
        }
    }
    Ok(State { batch, values })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::tests::{bin, param, pop, proj, read, state, var};
    use crate::ir::{BinOp, PopId};

    fn learn(m: &mut Module, name: &str, space: Space, init: Init) -> VarId {
        var(
            m,
            name,
            space,
            VarKind::Param {
                learn: true,
                init,
                bounds: None,
            },
        )
    }

    /// Random params in every space, a random mask and a random state.
    fn random_module(p: f64) -> (Module, PopId, Vec<VarId>) {
        let mut m = Module::new("rnd", 1.0);
        let a = pop(&mut m, "a", 100, Some("M"));
        let q = proj(&mut m, "q", a, a, Connectivity::Random { p });
        let (zero, one) = (m.constant(0.0), m.constant(1.0));
        let w = learn(
            &mut m,
            "q.w",
            Space::Syn(q),
            Init::Normal {
                mean: zero,
                sd: one,
            },
        );
        let b = learn(
            &mut m,
            "a.b",
            Space::Pop(a),
            Init::Uniform { lo: zero, hi: one },
        );
        let g = learn(
            &mut m,
            "g",
            Space::Global,
            Init::Normal { mean: one, sd: one },
        );
        let s = var(
            &mut m,
            "a.s",
            Space::Pop(a),
            VarKind::State {
                init: Init::Uniform { lo: zero, hi: one },
            },
        );
        let rs = read(&mut m, s);
        m.updates.push((s, rs));
        (m, a, vec![w, b, g, s])
    }

    #[test]
    fn instantiation_is_deterministic_in_the_seed() {
        let (m, _, vars) = random_module(0.3);
        let i1 = instantiate(&m, 42).unwrap();
        let i2 = instantiate(&m, 42).unwrap();
        let i3 = instantiate(&m, 43).unwrap();
        assert_eq!(i1, i2);
        for &v in &vars[..3] {
            assert_ne!(i1.params[v.index()], i3.params[v.index()]);
        }
        assert_ne!(i1.masks, i3.masks);
        assert_eq!(i1.params[vars[0].index()].len(), 100 * 100);
        assert_eq!(i1.params[vars[1].index()].len(), 100);
        assert_eq!(i1.params[vars[2].index()].len(), 1);
        assert!(i1.params[vars[3].index()].is_empty());
        // Draws are independent across elements and look like their distributions.
        let w = &i1.params[vars[0].index()];
        let mean = w.iter().sum::<f64>() / w.len() as f64;
        let var = w.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / w.len() as f64;
        assert!(
            mean.abs() < 0.05 && (var - 1.0).abs() < 0.05,
            "mean {mean} var {var}"
        );
        let b = &i1.params[vars[1].index()];
        assert!(b.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(b.windows(2).all(|p| p[0] != p[1]));
    }

    #[test]
    fn random_mask_density() {
        let (m, _, _) = random_module(0.3);
        let inst = instantiate(&m, 5).unwrap();
        let ones = inst.masks[0].iter().filter(|&&b| b).count();
        // 10000 Bernoulli(0.3): sd ~ 46.
        assert!((2800..3200).contains(&ones), "{ones} connections");
        let (m, _, _) = random_module(0.0);
        assert!(instantiate(&m, 5).unwrap().masks[0].iter().all(|&b| !b));
        let (m, _, _) = random_module(1.5);
        assert!(matches!(
            instantiate(&m, 5),
            Err(InitError::Probability { .. })
        ));
    }

    #[test]
    fn adding_a_variable_keeps_the_draws_of_others() {
        let (m, a, vars) = random_module(0.3);
        let before = instantiate(&m, 9).unwrap();
        let mut m2 = m.clone();
        let (zero, one) = (m2.constant(0.0), m2.constant(1.0));
        learn(
            &mut m2,
            "a.extra",
            Space::Pop(a),
            Init::Normal {
                mean: zero,
                sd: one,
            },
        );
        let after = instantiate(&m2, 9).unwrap();
        for &v in &vars {
            assert_eq!(before.params[v.index()], after.params[v.index()]);
        }
        assert_eq!(before.masks, after.masks);
    }

    #[test]
    fn random_states_per_episode() {
        let (m, _, vars) = random_module(0.3);
        let s = vars[3];
        let inst = instantiate(&m, 1).unwrap();
        let s2 = initial_state(&m, &inst, 2, 11).unwrap();
        let s5 = initial_state(&m, &inst, 5, 11).unwrap();
        assert_eq!(s2.values[s.index()].len(), 200);
        assert_eq!(s5.values[s.index()].len(), 500);
        assert_eq!(s2.values[s.index()][..], s5.values[s.index()][..200]);
        assert_ne!(s5.episode(&m, s, 0), s5.episode(&m, s, 1));
        assert_ne!(initial_state(&m, &inst, 2, 12).unwrap(), s2);
        assert!(s2.values[vars[0].index()].is_empty());
    }

    #[test]
    fn params_in_dependency_order_and_broadcast() {
        let mut m = Module::new("dep", 1.0);
        let a = pop(&mut m, "a", 3, Some("M"));
        // p1[a] = 2 * p2 + p3 where p2 (Global) and p3 (Pop(a), drawn) come later.
        let p1 = param(&mut m, "a.p1", Space::Pop(a), 0.0);
        let p2 = param(&mut m, "p2", Space::Global, 1.5);
        let (lo, hi) = (m.constant(-1.0), m.constant(1.0));
        let p3 = learn(&mut m, "a.p3", Space::Pop(a), Init::Uniform { lo, hi });
        let two = m.constant(2.0);
        let (r2, r3) = (read(&mut m, p2), read(&mut m, p3));
        let t = bin(&mut m, BinOp::Mul, two, r2);
        let e = bin(&mut m, BinOp::Add, t, r3);
        m.vars[p1].kind = VarKind::Param {
            learn: true,
            init: Init::Expr(e),
            bounds: None,
        };
        // A Global init broadcasts into a Pop param; a state init may read params.
        let half = param(&mut m, "a.half", Space::Pop(a), 0.5);
        let rp1 = read(&mut m, p1);
        let s = var(
            &mut m,
            "a.s",
            Space::Pop(a),
            VarKind::State {
                init: Init::Expr(rp1),
            },
        );
        let rs = read(&mut m, s);
        m.updates.push((s, rs));
        let inst = instantiate(&m, 4).unwrap();
        let p3v = &inst.params[p3.index()];
        let want: Vec<f64> = p3v.iter().map(|x| 3.0 + x).collect();
        assert_eq!(inst.params[p1.index()], want);
        assert_eq!(inst.params[half.index()], vec![0.5; 3]);
        let st = initial_state(&m, &inst, 2, 0).unwrap();
        assert_eq!(st.values[s.index()], [want.clone(), want].concat());
    }

    /// A read of a variable that will be pushed later (to build forward references).
    fn read_future(m: &mut Module, v: VarId, space: Space) -> ExprId {
        // Push placeholder vars up to v so the read type-checks, then fix them up.
        while m.vars.len() <= v.index() {
            let k = m.vars.len();
            var(m, &format!("tmp{k}"), space, VarKind::Input);
        }
        m.vars[v].space = space;
        read(m, v)
    }

    #[test]
    fn errors() {
        // Cycle: p0 = p1, p1 = p0.
        let mut m = Module::new("cyc", 1.0);
        let r1 = read_future(&mut m, VarId::new(1), Space::Global);
        let r0 = read_future(&mut m, VarId::new(0), Space::Global);
        m.vars[VarId::new(0)].kind = VarKind::Param {
            learn: false,
            init: Init::Expr(r1),
            bounds: None,
        };
        m.vars[VarId::new(1)].kind = VarKind::Param {
            learn: false,
            init: Init::Expr(r0),
            bounds: None,
        };
        assert!(
            matches!(instantiate(&m, 0), Err(InitError::Cycle { .. })),
            "{:?}",
            instantiate(&m, 0)
        );

        // Param init reading a state.
        let mut m = Module::new("st", 1.0);
        let s = state(&mut m, "s", Space::Global, 0.0);
        let rs = read(&mut m, s);
        m.updates.push((s, rs));
        learn(&mut m, "p", Space::Global, Init::Expr(rs));
        assert_eq!(
            instantiate(&m, 0),
            Err(InitError::ReadsNonParam {
                var: "p".into(),
                read: "s".into()
            })
        );

        // State init reading an input.
        let mut m = Module::new("in", 1.0);
        let i = var(&mut m, "i", Space::Global, VarKind::Input);
        let ri = read(&mut m, i);
        let s = var(
            &mut m,
            "s",
            Space::Global,
            VarKind::State {
                init: Init::Expr(ri),
            },
        );
        m.updates.push((s, ri));
        let inst = instantiate(&m, 0).unwrap();
        assert!(matches!(
            initial_state(&m, &inst, 1, 0),
            Err(InitError::ReadsNonParam { .. })
        ));

        // Holes.
        let mut m = Module::new("hole", 1.0);
        let h = m.add(Expr::Hole("g".into(), vec![]));
        learn(&mut m, "p", Space::Global, Init::Expr(h));
        assert_eq!(
            instantiate(&m, 0),
            Err(InitError::Hole {
                var: "p".into(),
                hole: "g".into()
            })
        );
        let mut m = Module::new("hole", 1.0);
        let h = m.add(Expr::Hole("g".into(), vec![]));
        let s = var(
            &mut m,
            "s",
            Space::Global,
            VarKind::State {
                init: Init::Expr(h),
            },
        );
        let rs = read(&mut m, s);
        m.updates.push((s, rs));
        let inst = instantiate(&m, 0).unwrap();
        assert_eq!(
            initial_state(&m, &inst, 1, 0),
            Err(InitError::Hole {
                var: "s".into(),
                hole: "g".into()
            })
        );

        // Bad distributions.
        let mut m = Module::new("dist", 1.0);
        let (zero, neg) = (m.constant(0.0), m.constant(-1.0));
        learn(
            &mut m,
            "p",
            Space::Global,
            Init::Normal {
                mean: zero,
                sd: neg,
            },
        );
        assert!(matches!(
            instantiate(&m, 0),
            Err(InitError::Distribution { .. })
        ));
        let mut m = Module::new("dist", 1.0);
        let (zero, neg) = (m.constant(0.0), m.constant(-1.0));
        learn(
            &mut m,
            "p",
            Space::Global,
            Init::Uniform { lo: zero, hi: neg },
        );
        assert!(matches!(
            instantiate(&m, 0),
            Err(InitError::Distribution { .. })
        ));
        let mut m = Module::new("dist", 1.0);
        let (zero, inf) = (m.constant(0.0), m.constant(f64::INFINITY));
        learn(
            &mut m,
            "p",
            Space::Global,
            Init::Uniform { lo: zero, hi: inf },
        );
        assert!(matches!(
            instantiate(&m, 0),
            Err(InitError::Distribution { .. })
        ));
        // lo == hi is fine.
        let mut m = Module::new("dist", 1.0);
        let two = m.constant(2.0);
        let p = learn(
            &mut m,
            "p",
            Space::Global,
            Init::Uniform { lo: two, hi: two },
        );
        assert_eq!(instantiate(&m, 0).unwrap().params[p.index()], vec![2.0]);

        // An initializer in the wrong space.
        let mut m = Module::new("sp", 1.0);
        let a = pop(&mut m, "a", 2, None);
        let b = pop(&mut m, "b", 3, None);
        let pa = param(&mut m, "a.p", Space::Pop(a), 1.0);
        let ra = read(&mut m, pa);
        learn(&mut m, "b.p", Space::Pop(b), Init::Expr(ra));
        assert!(matches!(instantiate(&m, 0), Err(InitError::Space { .. })));
    }
}
