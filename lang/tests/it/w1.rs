//! W1 (`rules/networks/w1.rule`) reproduces the JAX reference: with the reference
//! parameters and inputs (`benchmarks/w1/params_N64.json`, copied from the shared W1
//! bench), the interpreter's loss equals JAX's float64 loss, and the gradients of all
//! nine parameters from `diff` + `bptt` (spiking mode, surrogate derivatives) equal
//! JAX's float64 gradients (`benchmarks/w1/grads_N64_float64.json`).

use crate::common::*;
use lang::grad::{bptt, Loss};
use lang::init::{instantiate, Instance, State};
use lang::interp::Interp;
use lang::ir::{Module, VarId};
use serde_json::Value;

const NAMES: [(&str, &str); 9] = [
    ("W_in", "win.w"),
    ("W_rec", "wrec.W_rec"),
    ("A", "wrec.A"),
    ("w_m", "w_m"),
    ("b_m", "b_m"),
    ("eta", "wrec.eta"),
    ("a_plus", "wrec.a_plus"),
    ("a_minus", "wrec.a_minus"),
    ("W_out", "wout.w"),
];

fn floats(v: &Value) -> Vec<f64> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn json(rel: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo().join(rel)).unwrap()).unwrap()
}

struct W1 {
    m: Module,
    inst: Instance,
    /// [t][episode * 40 + j]
    x: Vec<Vec<f64>>,
    labels: Vec<usize>,
    steps: usize,
    batch: usize,
    y: VarId,
    xin: VarId,
}

fn setup() -> W1 {
    let params = json("benchmarks/w1/params_N64.json");
    let n = params["N"].as_u64().unwrap() as usize;
    let (steps, batch) = (
        params["T"].as_u64().unwrap() as usize,
        params["B"].as_u64().unwrap() as usize,
    );
    let text = std::fs::read_to_string(repo().join("rules/networks/w1.rule")).unwrap();
    let text = text.replace(
        "population rec: W1LIF[128];",
        &format!("population rec: W1LIF[{n}];"),
    );
    let m = module_text("rules/networks/w1.rule", &text);
    let mut inst = instantiate(&m, 0).unwrap();
    for (name, var) in NAMES {
        let v = m.var_by_name(var).unwrap_or_else(|| panic!("no {var}"));
        let data = floats(&params["params"][name]);
        assert_eq!(inst.params[v.index()].len(), data.len(), "{name}");
        inst.params[v.index()] = data;
    }
    let mut x = vec![vec![0.0; batch * 40]; steps];
    for one in params["x_spikes"]["ones"].as_array().unwrap() {
        let at = |k: usize| one[k].as_u64().unwrap() as usize;
        x[at(0)][at(1) * 40 + at(2)] = 1.0;
    }
    let labels = params["c"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap() as usize)
        .collect();
    let (y, xin) = (
        m.var_by_name("out.y").unwrap(),
        m.var_by_name("x.out").unwrap(),
    );
    W1 {
        m,
        inst,
        x,
        labels,
        steps,
        batch,
        y,
        xin,
    }
}

/// Softmax cross-entropy of each episode's mean readout over the last 50 steps.
fn logits_loss(mean_y: &[f64], labels: &[usize]) -> (f64, Vec<f64>) {
    let b = labels.len();
    let mut loss = 0.0;
    let mut dlogits = vec![0.0; 2 * b];
    for (e, &c) in labels.iter().enumerate() {
        let (l0, l1) = (mean_y[2 * e], mean_y[2 * e + 1]);
        let mx = l0.max(l1);
        let (e0, e1) = ((l0 - mx).exp(), (l1 - mx).exp());
        let lse = mx + (e0 + e1).ln();
        loss += lse - mean_y[2 * e + c];
        let (p0, p1) = (e0 / (e0 + e1), e1 / (e0 + e1));
        dlogits[2 * e] = (p0 - f64::from(u8::from(c == 0))) / b as f64;
        dlogits[2 * e + 1] = (p1 - f64::from(u8::from(c == 1))) / b as f64;
    }
    (loss / b as f64, dlogits)
}

/// The interpreter's forward pass: each episode's readout averaged over the last 50 steps.
fn forward_mean_y(w: &W1) -> Vec<f64> {
    let mut state = lang::init::initial_state(&w.m, &w.inst, w.batch, 0).unwrap();
    let mut interp = Interp::new(&w.m, &w.inst).unwrap();
    let mut mean_y = vec![0.0; w.batch * 2];
    for (t, xt) in w.x.iter().enumerate() {
        state.values[w.xin.index()].copy_from_slice(xt);
        interp.step(&mut state);
        if t >= w.steps - 50 {
            mean_y
                .iter_mut()
                .zip(&state.values[w.y.index()])
                .for_each(|(a, b)| *a += b / 50.0);
        }
    }
    mean_y
}

#[test]
fn w1_forward_matches_the_jax_reference_loss() {
    let w = setup();
    let mean_y = forward_mean_y(&w);
    let (loss, _) = logits_loss(&mean_y, &w.labels);
    let want = json("benchmarks/w1/grads_N64_float64.json")["loss"]
        .as_f64()
        .unwrap();
    assert!(
        ((loss - want) / want).abs() < 1e-9,
        "loss {loss} vs JAX float64 {want}"
    );
}

/// dL/dy(t) for the last 50 steps, from the logits' gradient (found in a first pass).
struct Readout {
    y: VarId,
    steps: usize,
    dlogits: Vec<f64>,
}

impl Loss for Readout {
    fn seed(&mut self, t: usize, _after: &State, seed: &mut [Vec<f64>]) {
        if t >= self.steps - 50 {
            for (s, d) in seed[self.y.index()].iter_mut().zip(&self.dlogits) {
                *s += d / 50.0;
            }
        }
    }
}

#[test]
fn w1_gradients_match_the_jax_reference() {
    let w = setup();
    // Forward once for the logits' gradient.
    let mean_y = forward_mean_y(&w);
    let (_, dlogits) = logits_loss(&mean_y, &w.labels);
    let adj = lang::diff::diff(&w.m).unwrap();
    let mut loss = Readout {
        y: w.y,
        steps: w.steps,
        dlogits,
    };
    let xin = w.xin;
    let grads = bptt(
        &w.m,
        &adj,
        &w.inst,
        w.batch,
        0,
        w.steps,
        false,
        &mut |t, s| s.values[xin.index()].copy_from_slice(&w.x[t]),
        &mut loss,
    )
    .unwrap();
    let reference = json("benchmarks/w1/grads_N64_float64.json");
    let mut report = String::new();
    for (name, var) in NAMES {
        let v = w.m.var_by_name(var).unwrap();
        let ours = &grads
            .iter()
            .find(|(p, _)| *p == v)
            .unwrap_or_else(|| panic!("no gradient for {var}"))
            .1;
        let want = floats(&reference["grads"][name]);
        let scale = want.iter().fold(0.0f64, |a, x| a.max(x.abs())).max(1e-12);
        let err = ours
            .iter()
            .zip(&want)
            .fold(0.0f64, |a, (x, y)| a.max((x - y).abs()))
            / scale;
        report += &format!("{name}: max |ours - JAX| / max |JAX| = {err:.1e}\n");
        assert!(err < 1e-6, "{name}: relative error {err}\n{report}");
    }
    eprintln!("{report}");
}

/// The adjoint step reads the forward step's results it needs from next-state inputs
/// (`Adjoint::next`) instead of recomputing them: the eligibility trace `E(t+1)`, the
/// membrane potential `v(t+1)` (for the surrogate) and the spike `z(t+1)`. So it no
/// longer reads the old `E`, nor sums the forward currents.
#[test]
fn w1_adjoint_reads_next_states() {
    let w = setup();
    let adj = lang::diff::diff(&w.m).unwrap();
    let a = &adj.module;
    let names: Vec<(String, String)> = adj
        .next
        .iter()
        .map(|&(s, nv)| (a.vars[s].name.clone(), a.vars[nv].name.clone()))
        .collect();
    let want = [
        ("rec.v", "next.rec.v"),
        ("rec.z", "next.rec.z"),
        ("wrec.E", "next.wrec.E"),
    ];
    assert_eq!(
        names,
        want.map(|(x, y)| (x.to_string(), y.to_string())).to_vec()
    );
    for &(_, nv) in &adj.next {
        assert_eq!(a.vars[nv].kind, lang::ir::VarKind::Input);
    }
    // Nothing of the adjoint step's own updates reads `E(t)` or sums over a projection's
    // presynaptic side with the weight (the forward current).
    let live = a.live_step();
    let e = a.var_by_name("wrec.E").unwrap();
    let mut reads_e = false;
    let mut stack: Vec<_> = a
        .updates
        .iter()
        .filter(|&&(v, _)| v.index() >= w.m.vars.len())
        .map(|&(_, x)| x)
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut sum_pre = 0;
    while let Some(x) = stack.pop() {
        if !seen.insert(x) {
            continue;
        }
        assert!(live[x.index()]);
        match a.expr(x) {
            lang::ir::Expr::Read(v) if *v == e => reads_e = true,
            lang::ir::Expr::SumPre(..) => sum_pre += 1,
            _ => {}
        }
        stack.extend(a.expr(x).operands());
    }
    assert!(!reads_e, "the adjoint step reads E(t)");
    // The remaining row sums are adjoints (of the modulator, of a_plus's and a_minus's
    // terms), not the two forward currents.
    assert_eq!(sum_pre, 3, "row sums in the adjoint step");
}
