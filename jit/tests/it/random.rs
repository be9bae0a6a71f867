//! Randomly generated rules: random expression trees over the language's operators in
//! neuron updates, synapse states, weights and modulators; the f64 kernel equals the
//! interpreter.

use crate::common::*;
use jit::run::Runner;
use jit::{compile, Options, Precision};
use lang::init::{initial_state, instantiate};
use lang::interp::Interp;
use lang::ir::VarKind;
use rand::{Rng, SeedableRng};

/// A random expression over `leaves`, depth at most `d`, kept bounded (tanh, clip) so
/// that long runs stay finite.
fn expr(rng: &mut impl Rng, leaves: &[&str], d: u32) -> String {
    if d == 0 || rng.gen_bool(0.25) {
        return if rng.gen_bool(0.3) {
            format!("{:.3}", rng.gen_range(-2.0..2.0))
        } else {
            leaves[rng.gen_range(0..leaves.len())].to_string()
        };
    }
    let a = expr(rng, leaves, d - 1);
    let b = expr(rng, leaves, d - 1);
    match rng.gen_range(0..17) {
        0 => format!("({a} + {b})"),
        1 => format!("({a} - {b})"),
        2 => format!("({a} * {b})"),
        3 => format!("({a} / (1 + abs({b})))"),
        4 => format!("tanh({a})"),
        5 => format!("exp(-abs({a}))"),
        6 => format!("sigmoid({a})"),
        7 => format!("min({a}, {b})"),
        8 => format!("max({a}, {b})"),
        9 => format!("clip({a}, -1, 1)"),
        10 => format!("relu({a})"),
        11 => format!("sqrt(abs({a}))"),
        12 => format!("log(1 + abs({a}))"),
        13 => format!("sin({a})"),
        14 => format!("cos({a})"),
        15 => format!("pow(abs({a}) + 0.5, 0.5)"),
        _ => format!("({a} > {b})"),
    }
}

fn network(rng: &mut impl Rng) -> String {
    let nl = ["v", "u", "I", "g"];
    // Weights read start-of-step values: everything but the modulator `m` (last).
    let sl = ["pre.out", "post.out", "post.v", "e", "x", "k", "m"];
    format!(
        r#"
neuron R {{
  param g = 0.5;
  input I;
  state v = 0;
  state u = 0.1;
  dv/dt = ({f}) / (5 ms);
  u = tanh({h});
  spike z when v > 0.5 surrogate triangle(0.3, 1);
  reset v -= 0.5;
}}
synapse S {{
  learn k = 0.3;
  learn w[synapse] ~ normal(0, 0.5);
  modulator m;
  state x[pre] = 0;
  state e = 0 clip [-2, 2];
  weight = w + 0.1 * tanh({wt});
  x = 0.9 * x + pre.out;
  e = 0.95 * e + 0.1 * tanh({et});
}}
network N {{
  input inp[7];
  signal r;
  population a: R[6];
  population b: R[5];
  projection ia: inp -> a with S(m = r) connect random(p = 0.7);
  projection ab: a -> b with S(m = tanh(sum(a.v) + r));
  projection ba: b -> a with S(m = r) connect dense();
  projection aa: a -> a with S(m = {mm}) connect dense_no_self();
}}
"#,
        f = expr(rng, &nl, 3),
        h = expr(rng, &nl, 3),
        wt = expr(rng, &sl[..6], 3),
        et = expr(rng, &sl, 4),
        mm = expr(rng, &["r", "sum(a.out)", "mean(b.v)"], 2),
    )
}

#[test]
fn random_rules_compile_to_what_the_interpreter_computes() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(31);
    for case in 0..40 {
        let text = network(&mut rng);
        let m = lower_text("random.rule", &text, None);
        let inst = instantiate(&m, case).unwrap();
        let kernel = compile(
            &m,
            Options {
                precision: Precision::F64,
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let mut runner: Runner<'_, f64> = Runner::new(&kernel, &m, &inst, 2, case).unwrap();
        let mut state = initial_state(&m, &inst, 2, case).unwrap();
        let mut interp = Interp::new(&m, &inst).unwrap();
        let inp = m.var_by_name("inp.out").unwrap();
        let r = m.var_by_name("r").unwrap();
        for t in 0..1000 {
            let x: Vec<f64> = (0..14)
                .map(|_| f64::from(u8::from(rng.gen_bool(0.1))))
                .collect();
            let rv = vec![(t as f64 * 0.01).sin(); 2];
            for (v, vals) in [(inp, &x), (r, &rv)] {
                state.values[v.index()].copy_from_slice(vals);
                runner.set(v, vals);
            }
            interp.step(&mut state);
            runner.step();
            for (v, var) in m.vars.iter() {
                if !matches!(var.kind, VarKind::State { .. }) {
                    continue;
                }
                let (a, b) = (&state.values[v.index()], runner.get(v));
                for (k, (x, y)) in a.iter().zip(&b).enumerate() {
                    let same =
                        (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-9 * x.abs().max(1.0);
                    assert!(
                        same,
                        "case {case}, step {t}: {}[{k}] interp {x}, jit {y}\n{text}",
                        var.name
                    );
                }
            }
        }
    }
}
