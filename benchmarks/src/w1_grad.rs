//! W1's loss gradient with respect to its nine parameters, by compiled, checkpointed
//! backpropagation through time (`jit::grad`), in the shared gradient format.

use crate::tasks::ClassifyBatch;
use crate::w1::{Inputs, LAST, PARAM_VARS};
use crate::BenchError;
use jit::grad::{bptt, GradKernels};
use jit::run::Elem;
use jit::Precision;
use lang::diff::Adjoint;
use lang::init::Instance;
use lang::ir::Module;

/// W1's loss and its gradient for each named parameter (shared names: `W_in`, ...).
pub struct W1Gradients {
    /// The loss (mean cross-entropy over the batch).
    pub loss: f64,
    /// (name, shape, row-major values).
    pub grads: Vec<(String, Vec<usize>, Vec<f64>)>,
    /// Forward states kept at once per episode.
    pub states_kept: usize,
}

/// Loss and gradients of W1 (module `m`, its adjoint `adj`, compiled `kernels`) on
/// `inputs`, checkpointing every `checkpoint` steps.
pub fn gradients(
    kernels: &GradKernels,
    m: &Module,
    adj: &Adjoint,
    inst: &Instance,
    inputs: &Inputs,
    checkpoint: usize,
) -> Result<W1Gradients, BenchError> {
    match kernels.forward.precision {
        Precision::F32 => gradients_with::<f32>(kernels, m, adj, inst, inputs, checkpoint),
        Precision::F64 => gradients_with::<f64>(kernels, m, adj, inst, inputs, checkpoint),
    }
}

fn gradients_with<T: Elem>(
    kernels: &GradKernels,
    m: &Module,
    adj: &Adjoint,
    inst: &Instance,
    inputs: &Inputs,
    checkpoint: usize,
) -> Result<W1Gradients, BenchError> {
    let var = |name: &str| {
        m.var_by_name(name)
            .ok_or_else(|| BenchError::Init(format!("W1 has no variable `{name}`")))
    };
    let (x, y) = (var("x.out")?, var("out.y")?);
    let loss = ClassifyBatch::new(m, adj, inputs.clone(), x, y, LAST).map_err(BenchError::Init)?;
    let g = bptt::<T, _>(
        kernels,
        m,
        adj,
        inst,
        inputs.batch,
        0,
        inputs.steps,
        checkpoint,
        &loss,
    )?;
    let last = LAST.min(inputs.steps) as f64;
    let logits: Vec<f64> = g
        .accs
        .iter()
        .flat_map(|a| a.iter().map(|v| v / last))
        .collect();
    let value = crate::w1::cross_entropy(&logits, &inputs.labels);
    let mut grads = Vec::new();
    for (name, vname) in PARAM_VARS {
        let v = var(vname)?;
        let data = g
            .grads
            .iter()
            .find(|(p, _)| *p == v)
            .map(|(_, d)| d.clone())
            .unwrap_or_default();
        let shape = match m.vars[v].space {
            lang::ir::Space::Global => vec![],
            lang::ir::Space::Pop(p) => vec![m.pops[p].size],
            lang::ir::Space::Syn(q) => {
                vec![m.pops[m.projs[q].post].size, m.pops[m.projs[q].pre].size]
            }
        };
        grads.push((name.to_string(), shape, data));
    }
    Ok(W1Gradients {
        loss: value,
        grads,
        states_kept: g.states_kept,
    })
}

/// The shared gradient format: `{"N", "dtype", "loss", "grads": {name: {"shape", "data"}}}`.
pub fn to_json(n: usize, precision: Precision, g: &W1Gradients) -> serde_json::Value {
    let mut grads = serde_json::Map::new();
    for (name, shape, data) in &g.grads {
        grads.insert(
            name.clone(),
            serde_json::json!({ "shape": shape, "data": data }),
        );
    }
    serde_json::json!({
        "N": n,
        "dtype": if precision == Precision::F32 { "float32" } else { "float64" },
        "loss": g.loss,
        "grads": grads,
    })
}

/// Compiles W1 and its adjoint once, runs one warm-up and `cfg.repeats` timed
/// loss-and-gradient passes (checkpoint interval `checkpoint`); returns the timing and
/// the last pass's gradients.
///
/// Without `checkpoint`, the interval is chosen within `budget` (bytes for the
/// checkpoints of all episodes running at once) by [`jit::grad::checkpoint_for_budget`]
/// (with this machine's cache size), and an error says if even the smallest footprint
/// does not fit.
pub fn bench_grad(
    cfg: &crate::w1::BenchConfig,
    checkpoint: Option<usize>,
    budget: u64,
) -> Result<(crate::w1::BenchResult, W1Gradients), BenchError> {
    use crate::{median, peak_rss_bytes, timed, LoadMeter};
    if cfg.repeats == 0 {
        return Err(BenchError::Config("--repeats must be at least 1".into()));
    }
    let reference = cfg
        .params
        .as_deref()
        .map(crate::w1::load_params_json)
        .transpose()?;
    let n = reference.as_ref().map_or(cfg.n, |r| r.n);
    let (m, lower_s) = timed(|| crate::w1::module(n));
    let m = m?;
    let (kernels, jit_s) = timed(|| -> Result<(Adjoint, GradKernels), BenchError> {
        let adj = lang::diff::diff(&m).map_err(|e| BenchError::Init(e.to_string()))?;
        let k = GradKernels::compile(
            &m,
            &adj,
            jit::Options {
                precision: cfg.precision,
            },
        )?;
        Ok((adj, k))
    });
    let (adj, kernels) = kernels?;
    let checkpoint = match checkpoint {
        Some(k) => k,
        None => jit::grad::checkpoint_for_budget(
            crate::w1::STEPS,
            jit::grad::state_bytes(&m, cfg.precision),
            cfg.threads.min(crate::w1::BATCH),
            budget,
            jit::grad::last_level_cache_bytes(),
        )?,
    };
    let (inst, inputs, source) = crate::w1::instance_and_inputs(&m, reference.as_ref(), cfg)?;
    let mut g = gradients(&kernels, &m, &adj, &inst, &inputs, checkpoint)?;
    let mut times = Vec::with_capacity(cfg.repeats);
    let mut other_load = Vec::with_capacity(cfg.repeats);
    for _ in 0..cfg.repeats {
        let meter = LoadMeter::start();
        let (r, s) = timed(|| gradients(&kernels, &m, &adj, &inst, &inputs, checkpoint));
        other_load.push(meter.stop());
        g = r?;
        times.push(s);
    }
    let median_s = median(&times);
    let updates = (n * n * inputs.batch * inputs.steps) as f64;
    let r = crate::w1::BenchResult {
        workload: "w1".into(),
        mode: "grad".into(),
        n,
        steps: inputs.steps,
        batch: inputs.batch,
        precision: if cfg.precision == Precision::F32 {
            "f32"
        } else {
            "f64"
        }
        .into(),
        threads: cfg.threads,
        order: format!("episode-major, checkpoint every {checkpoint} steps"),
        inputs: source,
        min_s: times.iter().copied().fold(f64::INFINITY, f64::min),
        median_s,
        times_s: times,
        compile_s: kernels.forward.compile_seconds
            + kernels.adjoint.compile_seconds
            + kernels.init.compile_seconds,
        compile_total_s: lower_s + jit_s,
        peak_rss_bytes: peak_rss_bytes(),
        synapse_updates_per_s: updates / median_s,
        loss: g.loss,
        other_load,
    };
    Ok((r, g))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn reference_grads(file: &str) -> serde_json::Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("w1").join(file);
        serde_json::from_str(&std::fs::read_to_string(path).expect("reference gradients"))
            .expect("JSON")
    }

    /// Compiled, checkpointed BPTT reproduces JAX's W1 gradients: float64 within 1e-6
    /// and float32 within 1e-3 (relative to each parameter's largest gradient).
    #[test]
    fn gradients_match_the_jax_reference() {
        let r = crate::w1::load_params_json(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("w1/params_N64.json"),
        )
        .unwrap();
        let m = crate::w1::module(r.n).unwrap();
        let adj = lang::diff::diff(&m).unwrap();
        let inst = r.instance(&m).unwrap();
        for (precision, file, tol) in [
            (Precision::F64, "grads_N64_float64.json", 1e-6),
            (Precision::F32, "grads_N64_float32.json", 1e-3),
        ] {
            let kernels = GradKernels::compile(&m, &adj, jit::Options { precision }).unwrap();
            let want = reference_grads(file);
            for checkpoint in [10, 1000] {
                let g = gradients(&kernels, &m, &adj, &inst, &r.inputs, checkpoint).unwrap();
                let loss = want["loss"].as_f64().unwrap();
                assert!(
                    ((g.loss - loss) / loss).abs() < tol,
                    "{file}: loss {} vs {loss}",
                    g.loss
                );
                for (name, shape, data) in &g.grads {
                    let w = &want["grads"][name];
                    let wshape: Vec<usize> = w["shape"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_u64().unwrap() as usize)
                        .collect();
                    assert_eq!(&wshape, shape, "{name}");
                    let wd: Vec<f64> = w["data"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_f64().unwrap())
                        .collect();
                    let scale = wd.iter().fold(0.0f64, |a, x| a.max(x.abs())).max(1e-12);
                    let err = data
                        .iter()
                        .zip(&wd)
                        .fold(0.0f64, |a, (x, y)| a.max((x - y).abs()))
                        / scale;
                    assert!(
                        err < tol,
                        "{file}, K = {checkpoint}: {name}: relative error {err}"
                    );
                }
            }
        }
    }
}
