//! Compiled BPTT (forward, adjoint and initial-value kernels, checkpointed) against the
//! interpreter's BPTT, for every checkpoint interval.

use crate::common::*;
use jit::grad::{bptt, EpisodeLoss, GradKernels};
use jit::run::{Elem, Episode};
use jit::{Options, Precision};
use lang::init::{instantiate, State};
use lang::ir::{VarId, VarKind};

/// L = sum over the last step's states of c * state (c fixed), inputs from a formula.
struct Final {
    steps: usize,
    inputs: Vec<(VarId, usize)>,
    /// (state var, adjoint var, weights for one episode)
    c: Vec<(VarId, VarId, Vec<f64>)>,
}

fn input_value(k: usize, t: usize, b: usize) -> f64 {
    f64::from(u8::from((k * 7 + t * 3 + b * 5).is_multiple_of(11)))
}

impl<T: Elem> EpisodeLoss<T> for Final {
    type Acc = ();
    fn inputs(&self, b: usize, t: usize, ep: &mut Episode<'_, T>, _: &mut ()) {
        for &(v, n) in &self.inputs {
            for (k, x) in ep.var(v)[..n].iter_mut().enumerate() {
                *x = T::from_f64(input_value(k, t, b));
            }
        }
    }
    fn observe(&self, _: usize, _: usize, _: &mut Episode<'_, T>, _: &mut ()) {}
    fn seed(&self, _: usize, t: usize, ep: &mut Episode<'_, T>, _: &()) {
        if t + 1 == self.steps {
            for (_, a, c) in &self.c {
                for (x, w) in ep.var(*a).iter_mut().zip(c) {
                    *x = T::from_f64(x.to_f64() + w);
                }
            }
        }
    }
}

struct InterpFinal<'a>(&'a Final);
impl lang::grad::Loss for InterpFinal<'_> {
    fn seed(&mut self, t: usize, _after: &State, seed: &mut [Vec<f64>]) {
        if t + 1 == self.0.steps {
            for (s, _, c) in &self.0.c {
                let n = c.len();
                for (k, x) in seed[s.index()].iter_mut().enumerate() {
                    *x += c[k % n];
                }
            }
        }
    }
}

#[test]
fn compiled_bptt_equals_the_interpreter_for_every_checkpoint_interval() {
    for f in [
        "rules/networks/three_factor_network.rule",
        "rules/networks/alif_network.rule",
        "rules/networks/backpropamine_network.rule",
    ] {
        let m = lower_file(f);
        let adj = lang::diff::diff(&m).unwrap();
        let inst = instantiate(&m, 2).unwrap();
        let (batch, steps) = (3, 40);
        let inputs: Vec<(VarId, usize)> = m
            .vars
            .iter()
            .filter(|(_, v)| v.kind == VarKind::Input)
            .map(|(h, v)| (h, m.space_size(v.space)))
            .collect();
        let c = adj
            .adj
            .iter()
            .map(|&(s, a)| {
                let n = m.space_size(m.vars[s].space);
                (
                    s,
                    a,
                    (0..n).map(|k| ((k * 13 % 7) as f64 - 3.0) / 3.0).collect(),
                )
            })
            .collect();
        let loss = Final {
            steps,
            inputs: inputs.clone(),
            c,
        };
        let want = lang::grad::bptt(
            &m,
            &adj,
            &inst,
            batch,
            1,
            steps,
            false,
            &mut |t, s| {
                for &(v, n) in &inputs {
                    for (k, x) in s.values[v.index()].iter_mut().enumerate() {
                        *x = input_value(k % n, t, k / n);
                    }
                }
            },
            &mut InterpFinal(&loss),
        )
        .unwrap();
        let kernels = GradKernels::compile(
            &m,
            &adj,
            Options {
                precision: Precision::F64,
            },
        )
        .unwrap();
        for k in [1, 7, steps] {
            let got = bptt::<f64, _>(&kernels, &m, &adj, &inst, batch, 1, steps, k, &loss).unwrap();
            for ((p, g), (_, w)) in got.grads.iter().zip(&want) {
                for (i, (x, y)) in g.iter().zip(w).enumerate() {
                    assert!(
                        (x - y).abs() <= 1e-9 * y.abs().max(1.0),
                        "{f}, K = {k}: d/d{}[{i}]: jit {x}, interpreter {y}",
                        m.vars[*p].name
                    );
                }
            }
        }
    }
}

/// Gradients do not depend on the checkpoint interval, bit for bit, in f32 and f64 on
/// every corpus network: the first pass (in-place kernel), the recomputed segments
/// (out-of-place kernel) and the adjoint steps' next states agree exactly.
#[test]
fn gradients_do_not_depend_on_the_checkpoint_interval() {
    fn run<T: Elem>(precision: Precision) {
        for f in network_files() {
            let m = lower_file(&f);
            let adj = lang::diff::diff(&m).unwrap();
            let inst = instantiate(&m, 2).unwrap();
            let (batch, steps) = (3, 30);
            let loss = Final {
                steps,
                inputs: m
                    .vars
                    .iter()
                    .filter(|(_, v)| v.kind == VarKind::Input)
                    .map(|(h, v)| (h, m.space_size(v.space)))
                    .collect(),
                c: adj
                    .adj
                    .iter()
                    .map(|&(s, a)| {
                        let n = m.space_size(m.vars[s].space);
                        (
                            s,
                            a,
                            (0..n).map(|k| ((k * 13 % 7) as f64 - 3.0) / 3.0).collect(),
                        )
                    })
                    .collect(),
            };
            let kernels = GradKernels::compile(&m, &adj, Options { precision }).unwrap();
            let grads = |k: usize| {
                bptt::<T, _>(&kernels, &m, &adj, &inst, batch, 1, steps, k, &loss)
                    .unwrap()
                    .grads
            };
            let want = grads(steps);
            for k in [1, 4, 7] {
                for ((p, g), (_, w)) in grads(k).iter().zip(&want) {
                    let same = g
                        .iter()
                        .zip(w)
                        .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()));
                    assert!(
                        same,
                        "{f} ({precision:?}), K = {k}: d/d{} differs",
                        m.vars[*p].name
                    );
                }
            }
        }
    }
    run::<f32>(Precision::F32);
    run::<f64>(Precision::F64);
}
