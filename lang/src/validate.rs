//! Structural checks of a [`Module`]: the invariants the IR spec ([`crate::ir`]) states,
//! checked after the fact so passes and hand-built modules can be trusted.
//!
//! [`validate`] checks:
//!
//! - `dt` is positive and finite;
//! - populations, projections and variables have unique names; projections connect
//!   existing populations; a random connectivity has `p` in `[0, 1]`; every variable's
//!   space names an existing population or projection;
//! - a population's `out` is a variable in `Pop(that population)`;
//! - every node's operands precede it, it references existing variables, projections
//!   and populations, and its stored space is the one [`Module::derive_space`] gives
//!   (which also checks that surrogate operands are `Global`);
//! - `updates` has exactly one entry per State variable, in variable order, and none
//!   for others; each update's expression is in the variable's space or `Global`;
//! - initializers of params and states read params only (transitively), their values
//!   are `Global` or in the variable's space, and param initializers do not depend on
//!   each other in a cycle; param bounds are ordered;
//! - readouts name existing variables.
//!
//! Holes are fine (a module with holes validates but cannot run).

use std::collections::HashSet;

use crate::init::{init_operands, reachable, var_init};
use crate::ir::{Connectivity, Expr, Init, Module, PopId, Space, VarId, VarKind};
use crate::print::space_name;

/// Why a module is not well-formed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ValidationError {
    /// A module-level problem (`dt`).
    #[error("invalid IR: {0}")]
    Module(String),
    /// A population is malformed.
    #[error("invalid IR: population `{pop}`: {msg}")]
    Pop {
        /// The population's name.
        pop: String,
        /// What is wrong.
        msg: String,
    },
    /// A projection is malformed.
    #[error("invalid IR: projection `{proj}`: {msg}")]
    Proj {
        /// The projection's name.
        proj: String,
        /// What is wrong.
        msg: String,
    },
    /// A variable or its initializer is malformed.
    #[error("invalid IR: variable `{var}`: {msg}")]
    Var {
        /// The variable's name.
        var: String,
        /// What is wrong.
        msg: String,
    },
    /// An expression node is malformed.
    #[error("invalid IR: node #{node}: {msg}")]
    Node {
        /// Arena index of the node.
        node: usize,
        /// What is wrong.
        msg: String,
    },
    /// The updates are malformed.
    #[error("invalid IR: update: {0}")]
    Update(String),
    /// A readout is malformed.
    #[error("invalid IR: readout `{name}`: {msg}")]
    Readout {
        /// The readout's name.
        name: String,
        /// What is wrong.
        msg: String,
    },
}

fn pop_ok(m: &Module, p: PopId) -> bool {
    p.index() < m.pops.len()
}

fn space_ok(m: &Module, s: Space) -> bool {
    match s {
        Space::Global => true,
        Space::Pop(p) => pop_ok(m, p),
        Space::Syn(q) => q.index() < m.projs.len(),
    }
}

fn check_names<'a>(
    names: impl Iterator<Item = &'a str>,
    what: &str,
) -> Result<(), ValidationError> {
    let mut seen = HashSet::new();
    for n in names {
        if !seen.insert(n) {
            return Err(ValidationError::Module(format!(
                "two {what} are named `{n}`"
            )));
        }
    }
    Ok(())
}

fn check_decls(m: &Module) -> Result<(), ValidationError> {
    if !(m.dt.is_finite() && m.dt > 0.0) {
        return Err(ValidationError::Module(format!(
            "dt = {} is not positive and finite",
            m.dt
        )));
    }
    check_names(m.pops.iter().map(|(_, p)| p.name.as_str()), "populations")?;
    check_names(m.projs.iter().map(|(_, p)| p.name.as_str()), "projections")?;
    check_names(m.vars.iter().map(|(_, v)| v.name.as_str()), "variables")?;
    for (_, proj) in m.projs.iter() {
        let err = |msg: String| ValidationError::Proj {
            proj: proj.name.clone(),
            msg,
        };
        if !pop_ok(m, proj.pre) || !pop_ok(m, proj.post) {
            return Err(err(format!(
                "connects missing populations {:?} -> {:?}",
                proj.pre, proj.post
            )));
        }
        if let Connectivity::Random { p } = proj.conn {
            if !(0.0..=1.0).contains(&p) {
                return Err(err(format!("connection probability {p} is not in [0, 1]")));
            }
        }
        let (n_pre, n_post) = (m.pops[proj.pre].size, m.pops[proj.post].size);
        if proj.conn == Connectivity::OneToOne && n_pre != n_post {
            return Err(err(format!(
                "is one-to-one between populations of {n_pre} and {n_post} neurons"
            )));
        }
    }
    for (_, var) in m.vars.iter() {
        let err = |msg: String| ValidationError::Var {
            var: var.name.clone(),
            msg,
        };
        if !space_ok(m, var.space) {
            return Err(err(format!("lives in missing space {:?}", var.space)));
        }
        if let VarKind::Param {
            bounds: Some((lo, hi)),
            ..
        } = var.kind
        {
            if lo.is_nan() || hi.is_nan() || lo > hi {
                return Err(err(format!("bounds [{lo}, {hi}] are not ordered")));
            }
        }
    }
    for (p, pop) in m.pops.iter() {
        if let Some(out) = pop.out {
            let err = |msg: String| ValidationError::Pop {
                pop: pop.name.clone(),
                msg,
            };
            if out.index() >= m.vars.len() {
                return Err(err(format!("output {out:?} does not exist")));
            }
            if m.vars[out].space != Space::Pop(p) {
                return Err(err(format!(
                    "output `{}` is not in Pop({})",
                    m.vars[out].name, pop.name
                )));
            }
        }
    }
    Ok(())
}

fn check_nodes(m: &Module) -> Result<(), ValidationError> {
    for (id, e) in m.exprs().iter() {
        let err = |msg: String| ValidationError::Node {
            node: id.index(),
            msg,
        };
        for a in e.operands() {
            if a >= id {
                return Err(err(format!("operand #{} does not precede it", a.index())));
            }
        }
        match e {
            Expr::Read(v) if v.index() >= m.vars.len() => {
                return Err(err(format!("reads missing variable {v:?}")))
            }
            Expr::Bcast(q, ..) | Expr::SumPre(q, _) | Expr::SumPost(q, _)
                if q.index() >= m.projs.len() =>
            {
                return Err(err(format!("missing projection {q:?}")))
            }
            Expr::SumPop(p, _) if !pop_ok(m, *p) => {
                return Err(err(format!("missing population {p:?}")))
            }
            _ => {}
        }
        let derived = m.derive_space(e).map_err(err)?;
        if derived != m.space(id) {
            return Err(err(format!(
                "stored space {:?} but operands give {derived:?}",
                m.space(id)
            )));
        }
    }
    Ok(())
}

fn check_updates(m: &Module) -> Result<(), ValidationError> {
    let err = ValidationError::Update;
    let mut prev: Option<VarId> = None;
    for &(v, e) in &m.updates {
        if v.index() >= m.vars.len() {
            return Err(err(format!("of missing variable {v:?}")));
        }
        let var = &m.vars[v];
        if !matches!(var.kind, VarKind::State { .. }) {
            return Err(err(format!("`{}` is not a state variable", var.name)));
        }
        if let Some(p) = prev {
            if v == p {
                return Err(err(format!("`{}` is updated twice", var.name)));
            }
            if v < p {
                return Err(err(format!(
                    "`{}` comes after `{}`: updates must be in variable order",
                    var.name, m.vars[p].name
                )));
            }
        }
        prev = Some(v);
        if e.index() >= m.exprs().len() {
            return Err(err(format!("`{}` = missing node #{}", var.name, e.index())));
        }
        let s = m.space(e);
        if s != var.space && s != Space::Global {
            return Err(err(format!(
                "`{}` is in {} but its new value in {}",
                var.name,
                space_name(m, var.space),
                space_name(m, s)
            )));
        }
    }
    let updated: HashSet<VarId> = m.updates.iter().map(|&(v, _)| v).collect();
    for (v, var) in m.vars.iter() {
        if matches!(var.kind, VarKind::State { .. }) && !updated.contains(&v) {
            return Err(err(format!("state `{}` has no update", var.name)));
        }
    }
    Ok(())
}

fn check_inits(m: &Module) -> Result<(), ValidationError> {
    // Per param: the params its initializer reads.
    let mut deps: Vec<Vec<VarId>> = vec![Vec::new(); m.vars.len()];
    for (v, var) in m.vars.iter() {
        let Some(init) = var_init(var) else { continue };
        let err = |msg: String| ValidationError::Var {
            var: var.name.clone(),
            msg,
        };
        if let Init::Data(k) = *init {
            let want = m.space_size(var.space);
            match m.data.get(k as usize) {
                None => return Err(err(format!("initial values #{k} do not exist"))),
                Some(d) if d.len() != want => {
                    return Err(err(format!(
                        "{} initial values for {want} elements",
                        d.len()
                    )))
                }
                Some(d) if d.iter().any(|x| !x.is_finite()) => {
                    return Err(err("initial values are not all finite".into()))
                }
                _ => {}
            }
        }
        let ops = init_operands(init);
        for &e in &ops {
            if e.index() >= m.exprs().len() {
                return Err(err(format!(
                    "initializer node #{} does not exist",
                    e.index()
                )));
            }
            let s = m.space(e);
            if s != var.space && s != Space::Global {
                return Err(err(format!(
                    "is in {} but its initializer in {}",
                    space_name(m, var.space),
                    space_name(m, s)
                )));
            }
        }
        for id in reachable(m, &ops) {
            if let Expr::Read(r) = m.expr(id) {
                match m.vars[*r].kind {
                    VarKind::Param { .. } => deps[v.index()].push(*r),
                    _ => {
                        return Err(err(format!(
                            "initializer reads `{}`, which is not a parameter",
                            m.vars[*r].name
                        )))
                    }
                }
            }
        }
    }
    // Cycles among param initializers (state initializers cannot be on one: nothing
    // reads a state in an initializer).
    let mut colour = vec![0u8; m.vars.len()];
    for start in m.vars.handles() {
        if colour[start.index()] != 0 {
            continue;
        }
        colour[start.index()] = 1;
        let mut stack: Vec<(VarId, usize)> = vec![(start, 0)];
        while let Some((v, next)) = stack.pop() {
            if let Some(&d) = deps[v.index()].get(next) {
                stack.push((v, next + 1));
                match colour[d.index()] {
                    0 => {
                        colour[d.index()] = 1;
                        stack.push((d, 0));
                    }
                    1 => {
                        return Err(ValidationError::Var {
                            var: m.vars[d].name.clone(),
                            msg: "initializer depends on itself".into(),
                        })
                    }
                    _ => {}
                }
            } else {
                colour[v.index()] = 2;
            }
        }
    }
    Ok(())
}

fn check_readouts(m: &Module) -> Result<(), ValidationError> {
    for (name, v) in &m.readouts {
        if v.index() >= m.vars.len() {
            return Err(ValidationError::Readout {
                name: name.clone(),
                msg: format!("reads missing variable {v:?}"),
            });
        }
    }
    Ok(())
}

/// Checks the invariants of the IR spec; see the module doc for the list.
pub fn validate(m: &Module) -> Result<(), ValidationError> {
    check_decls(m)?;
    check_nodes(m)?;
    check_updates(m)?;
    check_inits(m)?;
    check_readouts(m)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::tests::{bin, param, pop, proj, read, state, var};
    use crate::ir::{BinOp, Init};

    /// A valid module: pop a[2] with state v' = v * k and a Syn trace over a -> a.
    fn good() -> (Module, VarId, VarId) {
        let mut m = Module::new("ok", 1.0);
        let a = pop(&mut m, "a", 2, Some("M"));
        let q = proj(&mut m, "q", a, a, Connectivity::DenseNoSelf);
        let k = param(&mut m, "k", Space::Global, 0.5);
        let v = state(&mut m, "a.v", Space::Pop(a), 1.0);
        m.pops[a].out = Some(v);
        let e = state(&mut m, "q.e", Space::Syn(q), 0.0);
        let (rk, rv) = (read(&mut m, k), read(&mut m, v));
        let vk = bin(&mut m, BinOp::Mul, rv, rk);
        let b = m.add(Expr::Bcast(q, crate::ir::Side::Pre, vk));
        m.updates.extend([(v, vk), (e, b)]);
        m.readouts.push(("a.v".into(), v));
        (m, v, e)
    }

    #[test]
    fn accepts_a_good_module_with_holes() {
        let (mut m, _, e) = good();
        assert_eq!(validate(&m), Ok(()));
        let re = read(&mut m, e);
        let h = m.add(Expr::Hole("f".into(), vec![re]));
        m.updates[1].1 = h;
        assert_eq!(validate(&m), Ok(()));
    }

    #[test]
    fn rejects_missing_update() {
        let (mut m, _, _) = good();
        m.updates.pop();
        let err = validate(&m).unwrap_err();
        assert_eq!(
            err,
            ValidationError::Update("state `q.e` has no update".into())
        );
        assert!(err.to_string().contains("q.e"));
    }

    #[test]
    fn rejects_bad_updates() {
        let (mut m, v, _) = good();
        m.updates.push((v, m.updates[0].1));
        assert!(matches!(validate(&m), Err(ValidationError::Update(msg)) if msg.contains("after")));
        let (mut m, _, _) = good();
        m.updates.swap(0, 1);
        assert!(
            matches!(validate(&m), Err(ValidationError::Update(msg)) if msg.contains("variable order"))
        );
        // An update of a parameter.
        let (mut m, _, _) = good();
        let k = VarId::new(0);
        let c = m.constant(1.0);
        m.updates.insert(0, (k, c));
        assert!(
            matches!(validate(&m), Err(ValidationError::Update(msg)) if msg.contains("`k` is not a state"))
        );
        // A Syn value for a Pop state.
        let (mut m, _, _) = good();
        m.updates[0].1 = m.updates[1].1;
        assert!(matches!(validate(&m), Err(ValidationError::Update(msg)) if msg.contains("a.v")));
    }

    #[test]
    fn rejects_init_reading_a_state() {
        let (mut m, v, _) = good();
        let rv = read(&mut m, v);
        let a = Space::Pop(crate::ir::PopId::new(0));
        var(
            &mut m,
            "p",
            a,
            VarKind::Param {
                learn: true,
                init: Init::Expr(rv),
                bounds: None,
            },
        );
        assert_eq!(
            validate(&m),
            Err(ValidationError::Var {
                var: "p".into(),
                msg: "initializer reads `a.v`, which is not a parameter".into()
            })
        );
        // Also through other nodes, and for a state's initializer.
        let (mut m, v, _) = good();
        let rv = read(&mut m, v);
        let two = m.constant(2.0);
        let e = bin(&mut m, BinOp::Mul, two, rv);
        let a = Space::Pop(crate::ir::PopId::new(0));
        let s = var(
            &mut m,
            "s",
            a,
            VarKind::State {
                init: Init::Normal { mean: two, sd: e },
            },
        );
        let rs = read(&mut m, s);
        m.updates.push((s, rs));
        assert!(
            matches!(validate(&m), Err(ValidationError::Var { var, msg }) if var == "s" && msg.contains("reads `a.v`"))
        );
    }

    #[test]
    fn rejects_init_cycles_and_bad_spaces() {
        let (mut m, _, _) = good();
        let p0 = param(&mut m, "p0", Space::Global, 0.0);
        let p1 = param(&mut m, "p1", Space::Global, 0.0);
        let (r0, r1) = (read(&mut m, p0), read(&mut m, p1));
        m.vars[p0].kind = VarKind::Param {
            learn: false,
            init: Init::Expr(r1),
            bounds: None,
        };
        assert_eq!(validate(&m), Ok(()));
        m.vars[p1].kind = VarKind::Param {
            learn: false,
            init: Init::Expr(r0),
            bounds: None,
        };
        assert!(
            matches!(validate(&m), Err(ValidationError::Var { msg, .. }) if msg.contains("depends on itself"))
        );

        let (mut m, v, e2) = good();
        let re = read(&mut m, e2);
        m.vars[v].kind = VarKind::State {
            init: Init::Expr(re),
        };
        assert!(
            matches!(validate(&m), Err(ValidationError::Var { var, msg }) if var == "a.v" && msg.contains("Syn(q)"))
        );
    }

    #[test]
    fn rejects_bad_declarations() {
        let (mut m, _, e) = good();
        m.pops[crate::ir::PopId::new(0)].out = Some(e);
        assert!(
            matches!(validate(&m), Err(ValidationError::Pop { msg, .. }) if msg.contains("q.e"))
        );
        let (mut m, _, _) = good();
        m.readouts.push(("y".into(), VarId::new(99)));
        assert!(matches!(validate(&m), Err(ValidationError::Readout { name, .. }) if name == "y"));
        let (mut m, _, _) = good();
        m.projs[crate::ir::ProjId::new(0)].conn = Connectivity::Random { p: -0.1 };
        assert!(matches!(validate(&m), Err(ValidationError::Proj { .. })));
        let (mut m, _, _) = good();
        m.dt = 0.0;
        assert!(matches!(validate(&m), Err(ValidationError::Module(_))));
        let (mut m, _, _) = good();
        var(&mut m, "k", Space::Global, VarKind::Input);
        assert!(matches!(validate(&m), Err(ValidationError::Module(msg)) if msg.contains("`k`")));
        // A variable moved to another space after nodes reading it were built.
        let (mut m, v, _) = good();
        m.vars[v].space = Space::Global;
        assert!(matches!(
            validate(&m),
            Err(ValidationError::Pop { .. } | ValidationError::Node { .. })
        ));
        m.pops[crate::ir::PopId::new(0)].out = None;
        assert!(
            matches!(validate(&m), Err(ValidationError::Node { msg, .. }) if msg.contains("stored space"))
        );
    }
}
