//! Symbolic gradients (the adjoint step from `diff`, run backward in time) against
//! central finite differences, in smooth mode, for every network of the corpus.

use crate::common::*;
use lang::grad::{bptt, Loss};
use lang::init::{initial_state, instantiate, Instance, State};
use lang::interp::Interp;
use lang::ir::{Module, VarKind};
use rand::{Rng, SeedableRng};

/// L = sum over all states after the last step of c * state, with fixed random c.
struct Final {
    steps: usize,
    c: Vec<Vec<f64>>,
}

impl Loss for Final {
    fn seed(&mut self, t: usize, _after: &State, seed: &mut [Vec<f64>]) {
        if t + 1 == self.steps {
            for (s, c) in seed.iter_mut().zip(&self.c) {
                s.copy_from_slice(c);
            }
        }
    }
}

fn drive(m: &Module, t: usize, s: &mut State) {
    for (v, var) in m.vars.iter() {
        if var.kind == VarKind::Input {
            for (k, x) in s.values[v.index()].iter_mut().enumerate() {
                *x = f64::from(u8::from((k * 7 + t * 3).is_multiple_of(11)))
                    + 0.1 * ((k + t) as f64).sin();
            }
        }
    }
}

fn loss(m: &Module, inst: &Instance, f: &Final, batch: usize) -> f64 {
    let mut it = Interp::new(m, inst).unwrap();
    it.smooth = true;
    let mut s = initial_state(m, inst, batch, 1).unwrap();
    for t in 0..f.steps {
        drive(m, t, &mut s);
        it.step(&mut s);
    }
    s.values
        .iter()
        .zip(&f.c)
        .map(|(v, c)| v.iter().zip(c).map(|(a, b)| a * b).sum::<f64>())
        .sum()
}

#[test]
fn smooth_mode_gradients_match_finite_differences() {
    let (batch, steps) = (2, 30);
    let mut report = String::new();
    for f in network_files() {
        let m = module_text(&f, &std::fs::read_to_string(repo().join(&f)).unwrap());
        let adj = lang::diff::diff(&m).unwrap();
        lang::validate::validate(&adj.module)
            .unwrap_or_else(|e| panic!("{f}: adjoint IR invalid: {e}"));
        let inst = instantiate(&m, 2).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let st = initial_state(&m, &inst, batch, 1).unwrap();
        let c: Vec<Vec<f64>> = m
            .vars
            .iter()
            .map(|(v, var)| match var.kind {
                VarKind::State { .. } => {
                    let mut c: Vec<f64> = st.values[v.index()]
                        .iter()
                        .map(|_| rng.gen_range(-1.0..1.0))
                        .collect();
                    // Unconnected synapses are not part of the model: no loss there.
                    if let lang::ir::Space::Syn(q) = var.space {
                        let mask = &inst.masks[q.index()];
                        for (k, x) in c.iter_mut().enumerate() {
                            if !mask[k % mask.len()] {
                                *x = 0.0;
                            }
                        }
                    }
                    c
                }
                _ => vec![0.0; st.values[v.index()].len()],
            })
            .collect();
        let mut fin = Final { steps, c };
        let grads = bptt(
            &m,
            &adj,
            &inst,
            batch,
            1,
            steps,
            true,
            &mut |t, s| drive(&m, t, s),
            &mut fin,
        )
        .unwrap();
        let mut worst = 0.0f64;
        for (p, g) in &grads {
            for k in [0, g.len() - 1] {
                // Central differences over a range of steps: stiff models (Izhikevich,
                // AdEx) need a large step against rounding, clipped rules a small one
                // against kinks; the gradient must match at one of them.
                let x = inst.params[p.index()][k];
                let central = |h: f64| {
                    let mut plus = inst.clone();
                    plus.params[p.index()][k] = x + h;
                    let mut minus = inst.clone();
                    minus.params[p.index()][k] = x - h;
                    (loss(&m, &plus, &fin, batch) - loss(&m, &minus, &fin, batch)) / (2.0 * h)
                };
                let scale = x.abs().max(1e-2);
                let (err, fd) = [
                    1e-3 * scale,
                    1e-4 * scale,
                    1e-5 * scale,
                    1e-6 * scale,
                    1e-7 * scale,
                    1e-4,
                    1e-6,
                ]
                .iter()
                .map(|&h| {
                    let fd = central(h);
                    ((fd - g[k]).abs() / fd.abs().max(g[k].abs()).max(1e-3), fd)
                })
                .fold((f64::INFINITY, 0.0), |a, b| if b.0 < a.0 { b } else { a });
                if err > worst {
                    worst = err;
                }
                if err > 1e-5 {
                    report += &format!(
                        "  FAIL d/d{}[{k}]: bptt {} vs finite difference {fd}\n",
                        m.vars[*p].name, g[k]
                    );
                }
            }
        }
        report += &format!(
            "{f}: {} parameters, worst relative error {worst:.1e}\n",
            grads.len()
        );
    }
    eprintln!("{report}");
    assert!(!report.contains("FAIL"), "{report}");
}
