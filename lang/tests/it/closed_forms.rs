//! The interpreter against closed forms and published behaviour, on the `rules/` corpus.

use crate::common::*;
use lang::init::{instantiate, State};
use lang::interp::{run, RunConfig, Trace};
use lang::ir::Module;
use rand::{Rng, SeedableRng};

/// Lowers `text`, runs it for `steps` with `drive`, recording `record` (qualified names).
fn sim(
    text: &str,
    steps: usize,
    record: &[&str],
    drive: &mut dyn FnMut(&Module, usize, &mut State),
) -> (Module, Trace) {
    let m = module_text("test.rule", text);
    let inst = instantiate(&m, 1).unwrap();
    let record = record
        .iter()
        .map(|n| {
            m.var_by_name(n)
                .unwrap_or_else(|| panic!("no var {n}\n{m}"))
        })
        .collect();
    let cfg = RunConfig {
        steps,
        batch: 1,
        seed: 1,
        record,
    };
    let mm = m.clone();
    let trace = run(&m, &inst, &cfg, &mut |t, s| drive(&mm, t, s)).unwrap();
    (m, trace)
}

fn set_input(m: &Module, s: &mut State, name: &str, values: &[f64]) {
    let v = m
        .var_by_name(name)
        .unwrap_or_else(|| panic!("no input {name}"));
    s.values[v.index()][..values.len()].copy_from_slice(values);
}

fn spike_steps(m: &Module, trace: &Trace, pop: &str) -> Vec<u32> {
    let p = m.pops.iter().find(|(_, p)| p.name == pop).unwrap().0;
    trace.spikes[p.index()].iter().map(|&(t, _, _)| t).collect()
}

/// LIF (reset to zero, refractory) under constant drive I fires with period
/// t_ref + tau ln(I / (I - v_th)) (Gerstner et al. 2014, eq. 1.11).
#[test]
fn lif_fires_at_its_analytical_rate() {
    let drives = [1.1, 1.5, 2.0, 4.0];
    let mut text =
        String::from("import \"rules/neurons/lif_zero.rule\";\nnetwork T {\n  dt = 0.1 ms;\n");
    for (i, d) in drives.iter().enumerate() {
        text += &format!("  population n{i}: LIFZero[1](I_ext = {d});\n");
    }
    text += "}\n";
    let steps = 20_000; // 2 s
    let (m, trace) = sim(&text, steps, &[], &mut |_, _, _| {});
    let (tau, th, t_ref, dt) = (20.0_f64, 1.0_f64, 2.0_f64, 0.1_f64);
    for (i, &d) in drives.iter().enumerate() {
        let spikes = spike_steps(&m, &trace, &format!("n{i}"));
        assert!(spikes.len() > 5, "drive {d}: {} spikes", spikes.len());
        let isi: Vec<u32> = spikes.windows(2).map(|w| w[1] - w[0]).collect();
        // The discrete-time prediction, exactly: held for t_ref, then the exact
        // integrator gives v_k = I (1 - e^{-k dt / tau}) until v_k > v_th.
        let held = (t_ref / dt).round() as u32;
        let k = (1..)
            .find(|&k| d * (1.0 - (-(k as f64) * dt / tau).exp()) > th)
            .unwrap();
        assert!(
            isi.iter().all(|&x| x == held + k),
            "drive {d}: isi {isi:?}, predicted {}",
            held + k
        );
        // And the continuous-time rate, within the discretisation (dt / period).
        let period = t_ref + tau * (d / (d - th)).ln();
        let measured = (isi[0] as f64) * dt;
        assert!(
            (measured - period).abs() <= dt,
            "drive {d}: period {measured} ms vs analytical {period} ms"
        );
    }
}

/// Pairing one pre and one post spike dt apart changes an additive STDP weight by
/// A+ exp(-dt/tau+) (pre first) or -A- exp(dt/tau-) (post first) (Song et al. 2000).
#[test]
fn pair_stdp_reproduces_the_window() {
    let text = r#"
import "rules/synapses/stdp_additive.rule";
neuron Forced {
  input I, J;
  state q = 0;
  q = I;
  spike z when q > 0.5;
}
network Pairing {
  input pre[1];
  input teach[1];
  population post: Forced[1];
  projection drive: teach -> post.I with Teacher;
  projection s: pre -> post.J with STDPAdditive(w0 = 0.5);
}
synapse Teacher {
  weight = 1;
}
"#;
    let (a_plus, a_minus, tau_p, tau_m) = (0.005, 0.00525, 20.0_f64, 20.0_f64);
    for delta in (-100..=100).step_by(5) {
        let t_pre = 150usize;
        let t_post = (t_pre as i64 + delta) as usize;
        let (m, trace) = sim(text, 400, &["s.w"], &mut |m, t, s| {
            set_input(m, s, "pre.out", &[f64::from(u8::from(t == t_pre))]);
            set_input(m, s, "teach.out", &[f64::from(u8::from(t == t_post))]);
        });
        assert_eq!(
            spike_steps(&m, &trace, "post"),
            vec![t_post as u32],
            "the teacher sets the post spike"
        );
        let dw = trace.records[0].last().unwrap()[0] - 0.5;
        let want = match delta {
            d if d > 0 => a_plus * (-(d as f64) / tau_p).exp(),
            d if d < 0 => -a_minus * ((d as f64) / tau_m).exp(),
            _ => 0.0,
        };
        assert!(
            (dw - want).abs() < 1e-12,
            "dt = {delta}: dw = {dw}, window {want}"
        );
    }
}

/// Symmetric eigen-decomposition is not needed: the covariance is built from a known
/// orthonormal basis, so its first principal component is known.
#[test]
fn oja_converges_to_the_first_principal_component() {
    let n = 5;
    let text = r#"
import "rules/neurons/rate.rule";
import "rules/synapses/oja.rule";
network Pca {
  input x[5];
  population y: LinearRate[1];
  projection oja: x -> y with Oja(eta = 0.002);
}
"#;
    // Basis: a random rotation (Gram-Schmidt); variances 4, 1, 0.5, 0.25, 0.1.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut basis: Vec<Vec<f64>> = Vec::new();
    while basis.len() < n {
        let mut v: Vec<f64> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
        for b in &basis {
            let d: f64 = v.iter().zip(b).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(b).for_each(|(a, b)| *a -= d * b);
        }
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        v.iter_mut().for_each(|a| *a /= norm);
        basis.push(v);
    }
    let sd = [2.0, 1.0, 0.5f64.sqrt(), 0.5, 0.1f64.sqrt()];
    let pc1 = basis[0].clone();
    let mut noise = rand::rngs::StdRng::seed_from_u64(11);
    let (_, trace) = sim(text, 20_000, &["oja.w"], &mut |m, _, s| {
        let mut x = vec![0.0; n];
        for (b, s) in basis.iter().zip(sd) {
            let g: f64 = {
                // Box-Muller
                let (u1, u2): (f64, f64) = (noise.gen_range(1e-12..1.0), noise.gen_range(0.0..1.0));
                (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
            };
            x.iter_mut().zip(b).for_each(|(xi, bi)| *xi += s * g * bi);
        }
        set_input(m, s, "x.out", &x);
    });
    let w = trace.records[0].last().unwrap();
    let norm = w.iter().map(|a| a * a).sum::<f64>().sqrt();
    let cos = w.iter().zip(&pc1).map(|(a, b)| a * b).sum::<f64>() / norm;
    assert!(cos.abs() > 0.99, "|cos| = {} (w = {w:?})", cos.abs());
    assert!(
        (norm - 1.0).abs() < 0.05,
        "Oja keeps |w| near 1, got {norm}"
    );
}

/// BCM with a sliding threshold becomes selective: of two input patterns shown at
/// random, the neuron ends up responding to one and not the other (Bienenstock et al.
/// 1982, fig. 2; Intrator & Cooper 1992).
#[test]
fn bcm_becomes_selective_to_one_of_two_patterns() {
    let text = r#"
import "rules/neurons/rate.rule";
import "rules/synapses/bcm.rule";
network Sel {
  input x[4];
  population y: LinearRate[1];
  projection bcm: x -> y with BCM(eta = 0.02, tau_theta = 20 ms, w0 ~ uniform(0.2, 0.3));
}
"#;
    let patterns = [[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]];
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let (_, trace) = sim(text, 30_000, &["bcm.w"], &mut |m, _, s| {
        let k = rng.gen_range(0..2);
        set_input(m, s, "x.out", &patterns[k]);
    });
    let w = trace.records[0].last().unwrap();
    let r: Vec<f64> = patterns
        .iter()
        .map(|p| p.iter().zip(w).map(|(a, b)| a * b).sum())
        .collect();
    let sel = (r[0] - r[1]).abs() / (r[0] + r[1]);
    assert!(sel > 0.9, "responses {r:?}, selectivity {sel}, w = {w:?}");
    assert!(
        r[0].max(r[1]) > 0.1,
        "the neuron still responds to one pattern: {r:?}"
    );
}

/// Izhikevich regular spiking: under a step of input the inter-spike intervals grow
/// (spike-frequency adaptation, Izhikevich 2003 fig. 2 RS).
#[test]
fn izhikevich_regular_spiking_adapts() {
    let text = r#"
import "rules/neurons/izhikevich.rule";
network Step {
  dt = 0.5 ms;
  population n: Izhikevich[1](I_ext = 10);
}
"#;
    let (m, trace) = sim(text, 2000, &[], &mut |_, _, _| {});
    let spikes = spike_steps(&m, &trace, "n");
    assert!(spikes.len() >= 5, "{spikes:?}");
    let isi: Vec<u32> = spikes.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        isi[isi.len() - 1] as f64 > 1.5 * isi[0] as f64,
        "isi {isi:?}"
    );
    assert!(
        isi.windows(2).take(3).all(|w| w[1] >= w[0]),
        "the first intervals lengthen: {isi:?}"
    );
}
