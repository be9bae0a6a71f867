//! JIT ≡ interpreter: the same network from the same state, step by step.

use crate::common::*;
use jit::run::{Elem, Runner};
use jit::{compile, Options, Precision};
use lang::init::{initial_state, instantiate};
use lang::interp::{spiking_outputs, Interp};
use lang::ir::{Module, VarId, VarKind};
use rand::{Rng, SeedableRng};

/// Sets every input: channels Bernoulli(0.05), signals uniform in [-1, 1].
fn inputs(m: &Module, batch: usize, rng: &mut impl Rng) -> Vec<(VarId, Vec<f64>)> {
    m.vars
        .iter()
        .filter(|(_, v)| v.kind == VarKind::Input)
        .map(|(h, v)| {
            let n = batch * m.space_size(v.space);
            let is_channel = m.pops.iter().any(|(_, p)| p.out == Some(h));
            let vals = (0..n)
                .map(|_| {
                    if is_channel {
                        f64::from(u8::from(rng.gen_bool(0.05)))
                    } else {
                        rng.gen_range(-1.0..1.0)
                    }
                })
                .collect();
            (h, vals)
        })
        .collect()
}

struct Outcome {
    /// First step at which a spike differs, if any.
    spike_divergence: Option<usize>,
    /// Largest relative state error before it.
    worst: f64,
    worst_at: String,
    divergence_at: String,
    spikes: usize,
}

/// Compares a kernel with the interpreter step by step. With `resync`, the interpreter
/// restarts every step from the kernel's state (converted to f64), so the error
/// measured is the error of one step (chaotic dynamics amplify f32 rounding over many
/// steps, whatever the kernel).
fn compare<T: Elem>(m: &Module, precision: Precision, steps: usize, resync: bool) -> Outcome {
    let stop_at_divergence = resync;
    let batch = 2;
    let inst = instantiate(m, 3).unwrap();
    let kernel = compile(m, Options { precision }).unwrap_or_else(|e| panic!("{}: {e}", m.name));
    let mut runner: Runner<'_, T> = Runner::new(&kernel, m, &inst, batch, 4).unwrap();
    let mut state = initial_state(m, &inst, batch, 4).unwrap();
    let mut interp = Interp::new(m, &inst).unwrap();
    let spiking: Vec<VarId> = spiking_outputs(m).into_iter().flatten().collect();
    let states: Vec<VarId> = m
        .vars
        .iter()
        .filter(|(_, v)| matches!(v.kind, VarKind::State { .. }))
        .map(|(h, _)| h)
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut out = Outcome {
        spike_divergence: None,
        worst: 0.0,
        worst_at: String::new(),
        divergence_at: String::new(),
        spikes: 0,
    };
    for t in 0..steps {
        for (v, vals) in inputs(m, batch, &mut rng) {
            state.values[v.index()].copy_from_slice(&vals);
            runner.set(v, &vals);
        }
        if resync {
            for &v in &states {
                state.values[v.index()] = runner.get(v);
            }
        }
        interp.step(&mut state);
        runner.step();
        for &z in &spiking {
            let (a, b) = (&state.values[z.index()], runner.get(z));
            out.spikes += a.iter().filter(|&&x| x != 0.0).count();
            if a != &b && out.spike_divergence.is_none() {
                out.spike_divergence = Some(t);
                let k = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(0);
                let v = m.var_by_name(&m.vars[z].name.replace(".z", ".v"));
                let vv = v.map(|v| (state.values[v.index()][k], runner.get(v)[k]));
                out.divergence_at = format!("{}[{k}] (v: {vv:?})", m.vars[z].name);
            }
        }
        if out.spike_divergence.is_some() && stop_at_divergence {
            break;
        }
        for &v in &states {
            let (a, b) = (&state.values[v.index()], runner.get(v));
            for (k, (x, y)) in a.iter().zip(&b).enumerate() {
                let err = if x.is_nan() && y.is_nan() {
                    0.0
                } else {
                    (x - y).abs() / x.abs().max(1.0)
                };
                if err.is_nan() || err > out.worst {
                    out.worst = if err.is_nan() { f64::INFINITY } else { err };
                    out.worst_at =
                        format!("{}[{k}] at step {t}: interp {x}, jit {y}", m.vars[v].name);
                }
            }
        }
    }
    out
}

#[test]
fn f64_kernels_match_the_interpreter_on_the_corpus() {
    for f in network_files() {
        let m = lower_file(&f);
        let o = compare::<f64>(&m, Precision::F64, 1000, false);
        assert_eq!(
            o.spike_divergence, None,
            "{f}: spike trains differ ({} {})",
            o.worst, o.worst_at
        );
        assert!(
            o.worst <= 1e-9,
            "{f}: relative error {} ({})",
            o.worst,
            o.worst_at
        );
        eprintln!(
            "{f}: {} spikes, worst relative error {:.1e}",
            o.spikes, o.worst
        );
    }
}

/// In f32, every step stays within 1e-4 (relative) of the f64 interpreter's step from
/// the same state, for 1000 steps or until a spike differs (a membrane within f32
/// rounding of its threshold), which must be rare.
#[test]
fn f32_kernels_track_the_interpreter_step_by_step() {
    let mut diverged = Vec::new();
    for f in network_files() {
        let m = lower_file(&f);
        let o = compare::<f32>(&m, Precision::F32, 1000, true);
        assert!(
            o.worst <= 1e-4,
            "{f}: relative error {} ({}) before step {:?}",
            o.worst,
            o.worst_at,
            o.spike_divergence
        );
        eprintln!(
            "{f}: first spike difference {:?} {}, worst one-step relative error {:.1e}",
            o.spike_divergence, o.divergence_at, o.worst
        );
        if let Some(t) = o.spike_divergence {
            diverged.push((f, t));
        }
    }
    assert!(diverged.len() <= 2, "spikes differ early in {diverged:?}");
}

/// The adjoint steps from `diff` compile too, and equal the interpreter's (f64), from
/// random states, adjoints and gradients.
#[test]
fn adjoint_kernels_match_the_interpreter() {
    adjoint_kernels_track_the_interpreter::<f64>(Precision::F64, 1e-9);
}

/// The same in f32, whose vector loops (reassociated sums, comparison masks, rows
/// specialised on a zero post factor) the f64 kernels never run.
#[test]
fn f32_adjoint_kernels_track_the_interpreter() {
    adjoint_kernels_track_the_interpreter::<f32>(Precision::F32, 1e-4);
}

fn adjoint_kernels_track_the_interpreter<T: Elem>(precision: Precision, tol: f64) {
    for f in network_files() {
        let m = lower_file(&f);
        let adj = lang::diff::diff(&m).unwrap();
        let a = &adj.module;
        let mut inst = instantiate(&m, 3).unwrap();
        inst.params.resize(a.vars.len(), Vec::new());
        let kernel = compile(a, Options { precision }).unwrap_or_else(|e| panic!("{f}: {e}"));
        let batch = 2;
        let mut runner: Runner<'_, T> = Runner::new(&kernel, a, &inst, batch, 4).unwrap();
        let mut state = initial_state(a, &inst, batch, 4).unwrap();
        let mut interp = Interp::new(a, &inst).unwrap();
        let finst = instantiate(&m, 3).unwrap();
        let mut forward = Interp::new(&m, &finst).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        for _ in 0..20 {
            // Random forward state and inputs (as a checkpoint would restore), adjoints;
            // values exact in f32, so both start from the same numbers. Spikes and some
            // adjoints are often exactly zero, as in a real run.
            for (v, var) in a.vars.iter() {
                if matches!(var.kind, VarKind::Param { .. }) {
                    continue;
                }
                let vals: Vec<f64> = state.values[v.index()]
                    .iter()
                    .map(|_| {
                        if rng.gen_bool(0.3) {
                            0.0
                        } else {
                            f64::from(rng.gen_range(-1.0f32..1.0))
                        }
                    })
                    .collect();
                state.values[v.index()].copy_from_slice(&vals);
                runner.set(v, &vals);
            }
            // The next states the adjoint step reads: the forward step's results from
            // that state (rounded to f32, so both read the same numbers), as
            // backpropagation provides them.
            if !adj.next.is_empty() {
                let mut after = lang::init::State {
                    batch,
                    values: state.values[..m.vars.len()].to_vec(),
                };
                forward.step(&mut after);
                for &(s, nv) in &adj.next {
                    let vals: Vec<f64> = after.values[s.index()]
                        .iter()
                        .map(|&x| f64::from(x as f32))
                        .collect();
                    state.values[nv.index()].copy_from_slice(&vals);
                    runner.set(nv, &vals);
                }
            }
            interp.step(&mut state);
            runner.step();
            for (v, var) in a.vars.iter() {
                if !matches!(var.kind, VarKind::State { .. }) {
                    continue;
                }
                let (x, y) = (&state.values[v.index()], runner.get(v));
                let bad: Vec<(usize, f64, f64)> = x
                    .iter()
                    .zip(&y)
                    .enumerate()
                    .filter(|&(_, (p, q))| {
                        !((p.is_nan() && q.is_nan()) || (p - q).abs() <= tol * p.abs().max(1.0))
                    })
                    .map(|(k, (&p, &q))| (k, p, q))
                    .collect();
                // f32 may recompute a forward spike or comparison on the other side of
                // its threshold: isolated elements may differ, never more.
                let allowed = if precision == Precision::F32 {
                    (x.len() / 100).max(1)
                } else {
                    0
                };
                assert!(
                    bad.len() <= allowed,
                    "{f}: {}: {} elements differ, first (index, interp, jit) {:?}",
                    var.name,
                    bad.len(),
                    bad[0]
                );
            }
        }
    }
}
