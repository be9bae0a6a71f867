//! W1 (`rules/networks/w1.rule`) reproduces the JAX reference forward pass exactly:
//! with the reference parameters and inputs (`benchmarks/w1/params_N64.json`, copied
//! from the shared W1 bench), the interpreter's loss equals JAX's float64 loss.

use crate::common::*;
use lang::init::instantiate;
use lang::interp::Interp;
use serde_json::Value;

fn floats(v: &Value) -> Vec<f64> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn w1_forward_matches_the_jax_reference_loss() {
    let params: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("benchmarks/w1/params_N64.json")).unwrap(),
    )
    .unwrap();
    let grads: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("benchmarks/w1/grads_N64_float64.json")).unwrap(),
    )
    .unwrap();
    let n = params["N"].as_u64().unwrap() as usize;
    let (t_steps, batch) = (
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
    for (name, var) in [
        ("W_in", "win.w"),
        ("W_rec", "wrec.W_rec"),
        ("A", "wrec.A"),
        ("w_m", "w_m"),
        ("b_m", "b_m"),
        ("eta", "wrec.eta"),
        ("a_plus", "wrec.a_plus"),
        ("a_minus", "wrec.a_minus"),
        ("W_out", "wout.w"),
    ] {
        let v = m.var_by_name(var).unwrap_or_else(|| panic!("no {var}"));
        let data = floats(&params["params"][name]);
        assert_eq!(inst.params[v.index()].len(), data.len(), "{name}");
        inst.params[v.index()] = data;
    }
    let mut x = vec![vec![0.0; batch * 40]; t_steps];
    for one in params["x_spikes"]["ones"].as_array().unwrap() {
        let (t, b, j) = (
            one[0].as_u64().unwrap() as usize,
            one[1].as_u64().unwrap() as usize,
            one[2].as_u64().unwrap() as usize,
        );
        x[t][b * 40 + j] = 1.0;
    }
    let labels: Vec<usize> = params["c"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap() as usize)
        .collect();
    let xin = m.var_by_name("x.out").unwrap();
    let y = m.var_by_name("out.y").unwrap();
    let mut state = lang::init::initial_state(&m, &inst, batch, 0).unwrap();
    let mut interp = Interp::new(&m, &inst).unwrap();
    let mut mean_y = vec![0.0; batch * 2];
    for (t, xt) in x.iter().enumerate() {
        state.values[xin.index()].copy_from_slice(xt);
        interp.step(&mut state);
        if t >= t_steps - 50 {
            mean_y
                .iter_mut()
                .zip(&state.values[y.index()])
                .for_each(|(a, b)| *a += b / 50.0);
        }
    }
    let loss: f64 = (0..batch)
        .map(|b| {
            let (l0, l1) = (mean_y[2 * b], mean_y[2 * b + 1]);
            let mx = l0.max(l1);
            let lse = mx + ((l0 - mx).exp() + (l1 - mx).exp()).ln();
            lse - mean_y[2 * b + labels[b]]
        })
        .sum::<f64>()
        / batch as f64;
    let want = grads["loss"].as_f64().unwrap();
    assert!(
        ((loss - want) / want).abs() < 1e-9,
        "loss {loss} vs JAX float64 {want}"
    );
}
