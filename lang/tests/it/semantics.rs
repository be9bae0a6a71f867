//! Each construct of the language, on small networks, against hand-computed values.

use crate::common::*;
use lang::init::{initial_state, instantiate, State};
use lang::interp::Interp;
use lang::ir::{Expr, Module, Space, VarKind};

/// Runs `steps` steps of batch 1 with `drive`, returns the final state.
fn steps(m: &Module, n: usize, drive: &mut dyn FnMut(usize, &mut State)) -> State {
    let inst = instantiate(m, 5).unwrap();
    let mut s = initial_state(m, &inst, 1, 5).unwrap();
    let mut it = Interp::new(m, &inst).unwrap();
    for t in 0..n {
        drive(t, &mut s);
        it.step(&mut s);
    }
    s
}

fn get(m: &Module, s: &State, name: &str) -> Vec<f64> {
    s.values[m
        .var_by_name(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .index()]
    .clone()
}

fn set(m: &Module, s: &mut State, name: &str, v: &[f64]) {
    s.values[m.var_by_name(name).unwrap().index()][..v.len()].copy_from_slice(v);
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn integrators_exact_exp_euler_and_euler() {
    let text = r#"
neuron Three {
  param tau = 10 ms;
  param g = 0.5;
  param I0 = 2;
  state a = 1;
  state b = 1;
  state c = 1;
  state d = 1;
  state k = 0.2;
  da/dt = (I0 - a) / tau;                     // auto: exact (constant coefficient)
  db/dt = (I0 - b) / tau using euler;
  dc/dt = -k * c / tau + I0 / tau;            // auto: exp_euler (coefficient is a state)
  dd/dt = -d * d / tau;                        // auto: euler (not linear)
}
network N { dt = 0.5 ms; population p: Three[1]; }
"#;
    let m = module_text("t.rule", text);
    let s = steps(&m, 1, &mut |_, _| {});
    let (dt, tau, i0, k): (f64, f64, f64, f64) = (0.5, 10.0, 2.0, 0.2);
    let e = (-dt / tau).exp();
    assert!(
        close(get(&m, &s, "p.a")[0], 1.0 * e + i0 * (1.0 - e)),
        "exact"
    );
    assert!(
        close(get(&m, &s, "p.b")[0], 1.0 + dt * (i0 - 1.0) / tau),
        "euler"
    );
    let a = -k / tau;
    let ea = (a * dt).exp();
    assert!(
        close(get(&m, &s, "p.c")[0], ea + (i0 / tau / a) * (ea - 1.0)),
        "exp_euler"
    );
    assert!(
        close(get(&m, &s, "p.d")[0], 1.0 - dt / tau),
        "euler (nonlinear)"
    );
}

#[test]
fn consecutive_odes_step_together_and_statements_in_order() {
    let text = r#"
neuron Pair {
  state x = 1;
  state y = 0;
  state u = 0;
  state w = 0;
  dx/dt = -y / (1 ms) using euler;
  dy/dt = x / (1 ms) using euler;
  u = x;          // sees the new x
  w = u * 2;      // sees the new u
}
network N { dt = 0.1 ms; population p: Pair[1]; }
"#;
    let m = module_text("t.rule", text);
    let s = steps(&m, 1, &mut |_, _| {});
    assert!(close(get(&m, &s, "p.x")[0], 1.0));
    assert!(
        close(get(&m, &s, "p.y")[0], 0.1),
        "y used the old x: {:?}",
        get(&m, &s, "p.y")
    );
    assert!(close(get(&m, &s, "p.w")[0], 2.0));
}

#[test]
fn units_convert_to_milliseconds() {
    let text = r#"
neuron U {
  param tau = 0.02 s;
  param r = 50 Hz;
  state a = 1;
  state b = 0;
  a = a * exp(-dt / tau);
  b = r * dt;
}
network N { dt = 1 ms; population p: U[1]; }
"#;
    let m = module_text("t.rule", text);
    let s = steps(&m, 1, &mut |_, _| {});
    assert!(close(get(&m, &s, "p.a")[0], (-1.0f64 / 20.0).exp()));
    assert!(close(get(&m, &s, "p.b")[0], 0.05));
}

#[test]
fn spikes_resets_and_refractoriness() {
    let text = r#"
neuron Sub {
  param I_ext = 0.75;
  state v = 0;
  v += I_ext;
  spike z when v > 1;
  reset v -= 1;
}
neuron Zero {
  param I_ext = 0.6;
  state v = 0;
  v += I_ext;
  spike z when v >= 1.2 surrogate arctan(scale = 2);
  reset { v = 0; }
  refractory 3 ms;
}
network N { population a: Sub[1]; population b: Zero[1]; }
"#;
    let m = module_text("t.rule", text);
    let mut za = Vec::new();
    let mut zb = Vec::new();
    let mut vb = Vec::new();
    let inst = instantiate(&m, 0).unwrap();
    let mut s = initial_state(&m, &inst, 1, 0).unwrap();
    let mut it = Interp::new(&m, &inst).unwrap();
    for _ in 0..12 {
        it.step(&mut s);
        za.push(get(&m, &s, "a.z")[0]);
        zb.push(get(&m, &s, "b.z")[0]);
        vb.push(get(&m, &s, "b.v")[0]);
    }
    // a: v = 0.75, 1.5 -> spike -> 0.5, 1.25 -> spike -> 0.25, 1.0 (not > 1), 1.75 -> ...
    assert_eq!(za, [0., 1., 1., 0., 1., 1., 1., 0., 1., 1., 1., 0.]);
    // b: spikes at v >= 1.2 (step 2), reset to 0, held 3 steps, then 0.6, 1.2 -> spike.
    assert_eq!(zb, [0., 1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1.]);
    assert!(
        close(vb[2], 0.0) && close(vb[4], 0.0) && close(vb[5], 0.6),
        "{vb:?}"
    );
}

#[test]
fn traces_gating_clip_and_modulators() {
    let text = r#"
neuron Relay { input I; state q = 0; q = I; spike z when q > 0.5; }
synapse Rule {
  param tau = 10 ms;
  learn eta = 0.5;
  learn theta[post] = 0.25;
  modulator m;
  state x[pre] = 0;
  state e = 0;
  state p = 0 clip [-0.3, 0.3];
  weight = 0;
  dx/dt = -x / tau;
  on pre { x += 1; }
  e = x * post.out - theta;
  p += eta * m * e;
}
synapse One { weight = 1; }
network N {
  input a[2];
  input b[3];
  signal reward;
  population post: Relay[3];
  projection teach: b -> post with One connect dense();
  projection r: a -> post with Rule(m = reward);
}
"#;
    let m = module_text("t.rule", text);
    // theta is one per post neuron.
    let theta = m.var_by_name("r.theta").unwrap();
    assert_eq!(
        m.vars[theta].space,
        Space::Pop(m.pops.iter().find(|(_, p)| p.name == "post").unwrap().0)
    );
    let s = steps(&m, 2, &mut |t, s| {
        set(
            &m,
            s,
            "a.out",
            if t == 0 { &[1.0, 0.0] } else { &[0.0, 0.0] },
        );
        set(&m, s, "b.out", &[1.0, 1.0, 1.0]); // sum over 3 teachers: post fires each step
        set(&m, s, "reward", &[2.0]);
    });
    let decay = (-0.1f64).exp();
    let x = get(&m, &s, "r.x");
    assert!(close(x[0], decay) && close(x[1], 0.0), "pre trace: {x:?}");
    // e[i][j] = x_j * post_i - theta_i, p accumulates eta * m * e, clipped.
    let e = get(&m, &s, "r.e");
    assert!(close(e[0], decay - 0.25) && close(e[1], -0.25), "{e:?}");
    let p = get(&m, &s, "r.p");
    let p1: f64 = (0.5f64 * 2.0 * (1.0 - 0.25)).clamp(-0.3, 0.3);
    let p2: f64 = (p1 + 0.5 * 2.0 * (decay - 0.25)).clamp(-0.3, 0.3);
    assert!(close(p[0], p2), "{p:?} vs {p2}");
    assert!(close(p[1], -0.3), "clipped: {p:?}");
}

#[test]
fn projection_order_and_connectivity() {
    let text = r#"
neuron Relay { input I; state q = 0; q = I; output q; }
synapse One { weight = 1; }
network N {
  input x[1];
  population a: Relay[4];
  population b: Relay[4];
  projection xa: x -> a with One;
  projection ab: a -> b with One;
  projection bb: b -> b with One connect dense_no_self();
  projection ba: b -> a with One connect random(p = 0.5);
}
"#;
    let m = module_text("t.rule", text);
    // a -> b is feed-forward (a is declared first): b sees a's value of this step;
    // b -> b and b -> a are recurrent/backward: the previous step's (0 at step 1).
    let s = steps(&m, 1, &mut |_, s| set(&m, s, "x.out", &[1.0]));
    assert_eq!(get(&m, &s, "a.q"), [1.0; 4]);
    assert_eq!(get(&m, &s, "b.q"), [4.0; 4]);
    let inst = instantiate(&m, 5).unwrap();
    let ba = m.projs.iter().find(|(_, p)| p.name == "ba").unwrap().0;
    let ones = inst.masks[ba.index()].iter().filter(|&&b| b).count();
    assert!(
        ones > 0 && ones < 16,
        "random(p = 0.5) mask has {ones} of 16"
    );
    let s = steps(&m, 2, &mut |_, s| set(&m, s, "x.out", &[1.0]));
    let a = get(&m, &s, "a.q");
    for (i, &ai) in a.iter().enumerate() {
        let row = inst.masks[ba.index()][i * 4..i * 4 + 4]
            .iter()
            .filter(|&&b| b)
            .count();
        assert!(
            close(ai, 1.0 + 4.0 * row as f64),
            "a[{i}] = {ai} with {row} inputs"
        );
    }
    // dense_no_self: 3 of b's 4 previous values (4 each), plus the sum of the new a.
    let b = get(&m, &s, "b.q");
    let sum_a: f64 = a.iter().sum();
    assert!(
        b.iter().all(|&x| close(x, sum_a + 12.0)),
        "{b:?} vs {}",
        sum_a + 12.0
    );
}

#[test]
fn one_to_one_connects_neuron_i_to_neuron_i() {
    let text = r#"
neuron Relay { input I; state q = 0; q = I; output q; }
synapse W { param w = 2; weight = w; }
network N {
  input x[3];
  population a: Relay[3];
  projection xa: x -> a with W connect one_to_one();
}
"#;
    let m = module_text("t.rule", text);
    let s = steps(&m, 1, &mut |_, s| set(&m, s, "x.out", &[1.0, 10.0, 100.0]));
    assert_eq!(get(&m, &s, "a.q"), [2.0, 20.0, 200.0]);
    // Different sizes: an error at the connectivity, with both sizes.
    let bad = text.replace("Relay[3]", "Relay[4]");
    let (sources, prog) = load_text("t.rule", &bad);
    let d = match prog {
        Err(d) => d,
        Ok(p) => lang::lower::lower(&p, None).unwrap_err(),
    };
    let r = render(&sources, &d);
    assert!(
        r.contains("t.rule:7:40: `one_to_one` needs populations of the same size: `x` has 3 neurons, `a` 4")
            && r.contains("^"),
        "{r}"
    );
}

#[test]
fn parameters_initializers_and_bounds() {
    let text = r#"
synapse S {
  learn w[synapse] ~ normal(0.5, 0.1) in [0, 1];
  learn g[post] ~ uniform(-1, 1);
  param k = 2 * h;
  param h = 3;
  weight = w * k;
}
neuron R { input I; state q = 0; q = I; output q; }
network N {
  input x[30];
  population y: R[20];
  projection s: x -> y with S;
}
"#;
    let m = module_text("t.rule", text);
    let inst = instantiate(&m, 9).unwrap();
    let w = &inst.params[m.var_by_name("s.w").unwrap().index()];
    assert_eq!(w.len(), 600);
    let mean = w.iter().sum::<f64>() / 600.0;
    let sd = (w.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 600.0).sqrt();
    assert!(
        (mean - 0.5).abs() < 0.02 && (sd - 0.1).abs() < 0.02,
        "normal(0.5, 0.1): {mean} {sd}"
    );
    let g = &inst.params[m.var_by_name("s.g").unwrap().index()];
    assert_eq!(g.len(), 20);
    assert!(g.iter().all(|x| (-1.0..1.0).contains(x)));
    assert_eq!(
        inst.params[m.var_by_name("s.k").unwrap().index()],
        [6.0],
        "parameters may use later parameters"
    );
    let VarKind::Param { learn, bounds, .. } = &m.vars[m.var_by_name("s.w").unwrap()].kind else {
        panic!()
    };
    assert!(*learn && *bounds == Some((0.0, 1.0)));
    // Same seed, same values; another seed, others.
    assert_eq!(&instantiate(&m, 9).unwrap().params, &inst.params);
    assert_ne!(&instantiate(&m, 10).unwrap().params, &inst.params);
}

#[test]
fn holes_check_and_print_but_do_not_run() {
    let text = r#"
neuron R { input I; state q = 0; q = I; spike z when q > 0.5; }
synapse H {
  state e = 0;
  weight = e;
  e += ?f(pre.out, post.out, e);
}
network N { input x[2]; population y: R[2]; projection h: x -> y with H; }
"#;
    let m = module_text("t.rule", text);
    assert!(m
        .exprs()
        .iter()
        .any(|(_, e)| matches!(e, Expr::Hole(name, args) if name == "f" && args.len() == 3)));
    assert!(m.to_string().contains("hole"), "{m}");
    let inst = instantiate(&m, 0);
    let err = match inst {
        Err(e) => e.to_string(),
        Ok(inst) => Interp::new(&m, &inst)
            .expect_err("a module with holes cannot run")
            .to_string(),
    };
    assert!(err.contains("?f"), "{err}");
}

#[test]
fn surrogate_shapes() {
    use lang::ir::{Surrogate, SurrogateKind};
    let mut m = Module::new("s", 1.0);
    let u = m.constant(0.25);
    for (kind, a, b, want) in [
        (
            SurrogateKind::FastSigmoid,
            1.0,
            10.0,
            1.0 / (1.0f64 + 2.5).powi(2),
        ),
        (SurrogateKind::Triangle, 0.3, 1.0, 0.3 * 0.75),
        (
            SurrogateKind::Arctan,
            1.0,
            2.0,
            1.0 / (1.0 + (std::f64::consts::PI * 0.5f64).powi(2)),
        ),
    ] {
        let s = Surrogate {
            kind,
            a: m.constant(a),
            b: m.constant(b),
        };
        let e = m.surrogate_value(u, s);
        let got = m.as_const(e).expect("folds to a constant");
        assert!(close(got, want), "{kind:?}: {got} vs {want}");
    }
}

#[test]
fn names_may_start_with_keywords() {
    let text = r#"
neuron K {
  param learning = 2;
  state letter = 0;
  state statex = 0;
  state inx = 0;
  letter = learning;
  statex += 1;
  inx = letter + statex;
}
network N { population p: K[1]; }
"#;
    let m = module_text("t.rule", text);
    let s = steps(&m, 1, &mut |_, _| {});
    assert_eq!(get(&m, &s, "p.inx"), [3.0]);
}
