//! Out-of-place kernels (`compile_out_of_place`) compute what in-place kernels compute
//! (bit for bit but the sign of zeros) on every corpus network's forward and adjoint steps: the adjoint steps
//! have the in-place sparse accumulations and aliases that out of place must not use,
//! and unchanged states that it must copy.

use crate::common::*;
use jit::run::{Elem, Runner};
use jit::{compile, compile_out_of_place, Options, Precision};
use lang::init::instantiate;
use lang::ir::{Module, VarId, VarKind};
use rand::{Rng, SeedableRng};
use std::sync::Mutex;

fn same_steps<T: Elem + PartialEq + std::fmt::Debug>(name: &str, m: &Module, precision: Precision) {
    let batch = 2;
    let mut inst = instantiate(m, 3).unwrap();
    // An adjoint module's own variables (adjoints, gradients) have no instance values.
    inst.params.resize(m.vars.len(), Vec::new());
    let opts = Options { precision };
    let kernel = compile(m, opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    let into = compile_out_of_place(m, opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(into.out_of_place && !kernel.out_of_place);
    let mut runner: Runner<'_, T> = Runner::new(&kernel, m, &inst, batch, 4).unwrap();
    assert!(Runner::<T>::new(&into, m, &inst, batch, 4).is_err());
    let prefix = runner.prefix(&into, m).unwrap();
    let states: Vec<VarId> = m
        .vars
        .iter()
        .filter(|(_, v)| matches!(v.kind, VarKind::State { .. }))
        .map(|(h, _)| h)
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(23);
    for step in 0..8 {
        // Random states and inputs, exact in f32; a third of them zero (spikes, sparse
        // adjoints), so that sparse sweeps skip blocks.
        for (v, var) in m.vars.iter() {
            if matches!(var.kind, VarKind::Param { .. }) {
                continue;
            }
            let vals: Vec<f64> = (0..batch * m.space_size(var.space))
                .map(|_| {
                    if rng.gen_bool(0.3) {
                        0.0
                    } else {
                        f64::from(rng.gen_range(-1.0f32..1.0))
                    }
                })
                .collect();
            runner.set(v, &vals);
        }
        // Out of place, into buffers full of garbage: every element must be written.
        let got: Mutex<Vec<(usize, Vec<Vec<T>>)>> = Mutex::new(Vec::new());
        runner.for_each_episode(|ep| {
            let from: Vec<Vec<T>> = states.iter().map(|&v| ep.var(v).to_vec()).collect();
            let mut to: Vec<Vec<T>> = from
                .iter()
                .map(|x| vec![T::from_f64(1234.5); x.len()])
                .collect();
            ep.step_prefix_into(&prefix, &from, &mut to);
            // The storage's states are left alone.
            for (&v, x) in states.iter().zip(&from) {
                assert_eq!(ep.var(v), &x[..], "{name}: the storage was written");
            }
            got.lock().unwrap().push((ep.index(), to));
        });
        runner.step();
        let mut got = got.into_inner().unwrap();
        got.sort_by_key(|(b, _)| *b);
        for (b, to) in got {
            for (&v, x) in states.iter().zip(&to) {
                let n = x.len();
                let want = runner.get(v);
                // Equal values (a NaN equal to a NaN): bits but for the sign of zeros,
                // which an in-place sparse sweep keeps (`-0` plus a skipped `0 * x`)
                // where a dense pass adds (`-0 + 0 = +0`).
                let differ = |p: &T, q: f64| {
                    let p = p.to_f64();
                    !(p == q || (p.is_nan() && q.is_nan()))
                };
                let same = !x
                    .iter()
                    .zip(&want[b * n..(b + 1) * n])
                    .any(|(p, &q)| differ(p, q));
                let first = x
                    .iter()
                    .zip(&want[b * n..(b + 1) * n])
                    .position(|(p, &q)| differ(p, q));
                assert!(
                    same,
                    "{name} ({precision:?}), step {step}, episode {b}: `{}` differs: {:?}",
                    m.vars[v].name,
                    first.map(|k| (k, x[k], want[b * n + k]))
                );
            }
        }
    }
}

fn corpus<T: Elem + PartialEq + std::fmt::Debug>(precision: Precision) {
    for f in network_files() {
        let m = lower_file(&f);
        same_steps::<T>(&f, &m, precision);
        let adj = lang::diff::diff(&m).unwrap();
        same_steps::<T>(&format!("{f} (adjoint)"), &adj.module, precision);
    }
}

#[test]
fn out_of_place_kernels_equal_in_place_ones_f64() {
    corpus::<f64>(Precision::F64);
}

#[test]
fn out_of_place_kernels_equal_in_place_ones_f32() {
    corpus::<f32>(Precision::F32);
}
