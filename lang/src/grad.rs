//! Backpropagation through time on the reference interpreter: the oracle for the
//! compiled adjoint kernels of the next stages, checked itself against finite
//! differences in smooth mode.

use crate::diff::Adjoint;
use crate::init::{initial_state, Instance, State};
use crate::interp::{Interp, InterpError};
use crate::ir::{Module, VarId, VarKind};

/// What one episode batch's loss depends on, step by step.
pub trait Loss {
    /// After step `t`: adds dL/d(state after step t) into `seed` (one vector per
    /// variable of the forward module, `[episode][index]`, zero on entry for states).
    fn seed(&mut self, t: usize, after: &State, seed: &mut [Vec<f64>]);
}

/// Runs `steps` steps forward, keeping every state, then the adjoint steps backward.
/// Returns dL/dp for every `learn` parameter `p`, summed over the batch (values at
/// unconnected synapses are zero).
#[allow(clippy::too_many_arguments)]
pub fn bptt(
    m: &Module,
    adj: &Adjoint,
    inst: &Instance,
    batch: usize,
    seed: u64,
    steps: usize,
    smooth: bool,
    inputs: &mut dyn FnMut(usize, &mut State),
    loss: &mut dyn Loss,
) -> Result<Vec<(VarId, Vec<f64>)>, InterpError> {
    let mut fwd = Interp::new(m, inst)?;
    fwd.smooth = smooth;
    let mut state = initial_state(m, inst, batch, seed)?;
    let mut history: Vec<State> = Vec::with_capacity(steps);
    let mut seeds: Vec<Vec<Vec<f64>>> = Vec::with_capacity(steps);
    for t in 0..steps {
        inputs(t, &mut state);
        history.push(state.clone());
        fwd.step(&mut state);
        let mut s: Vec<Vec<f64>> = state.values.iter().map(|v| vec![0.0; v.len()]).collect();
        loss.seed(t, &state, &mut s);
        seeds.push(s);
    }
    // The adjoint module's instance: the same parameters and masks.
    let mut ainst = inst.clone();
    ainst.params.resize(adj.module.vars.len(), Vec::new());
    let mut back = Interp::new(&adj.module, &ainst)?;
    back.smooth = smooth;
    let mut a = initial_state(&adj.module, &ainst, batch, seed)?;
    for v in a.values.iter_mut() {
        v.iter_mut().for_each(|x| *x = 0.0);
    }
    for t in (0..steps).rev() {
        for (v, var) in m.vars.iter() {
            if !matches!(var.kind, VarKind::Param { .. }) {
                a.values[v.index()].clone_from(&history[t].values[v.index()]);
            }
        }
        // The states after step t, where the adjoint step reads them.
        let after = history.get(t + 1).unwrap_or(&state);
        for &(s, nv) in &adj.next {
            a.values[nv.index()].clone_from(&after.values[s.index()]);
        }
        for &(s, av) in &adj.adj {
            for (x, d) in a.values[av.index()].iter_mut().zip(&seeds[t][s.index()]) {
                *x += d;
            }
        }
        back.step(&mut a);
    }
    let mut init = Interp::new(&adj.init, &ainst)?;
    init.smooth = smooth;
    init.step(&mut a);
    let mut out = Vec::new();
    for &(p, g) in &adj.grads {
        let n = m.space_size(m.vars[p].space);
        let mut total = vec![0.0; n];
        for b in 0..batch {
            for (t, x) in total
                .iter_mut()
                .zip(&a.values[g.index()][b * n..(b + 1) * n])
            {
                *t += x;
            }
        }
        if let crate::ir::Space::Syn(q) = m.vars[p].space {
            for (t, &c) in total.iter_mut().zip(&inst.masks[q.index()]) {
                if !c {
                    *t = 0.0;
                }
            }
        }
        out.push((p, total));
    }
    Ok(out)
}
