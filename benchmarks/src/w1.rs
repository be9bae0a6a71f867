//! W1, the shared reference workload: a plastic recurrent LIF network with a
//! three-factor rule (`rules/networks/w1.rule`; spec in the shared bench's `W1.md`),
//! run for T = 1000 steps over B = 16 episodes, loss = cross-entropy of the readout's
//! mean over the last 50 steps.
//!
//! The network text is compiled into the crate and resized by substitution, so the
//! benchmark does not depend on the working directory. Parameters and inputs come
//! either from our own generator ([`reference_inputs`], [`lang::init::instantiate`]:
//! the same distributions as `w1_common.py`, not the same numbers) or from a file of
//! the shared JSON format ([`load_params_json`]), which reproduces the JAX and PyTorch
//! references' loss.

use crate::{median, peak_rss_bytes, timed, BenchError, LoadMeter};
use jit::run::{Elem, Runner};
use jit::{Kernel, Precision};
use lang::init::Instance;
use lang::ir::Module;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Time steps of the benchmark.
pub const STEPS: usize = 1000;
/// Episodes per batch.
pub const BATCH: usize = 16;
/// Input channels.
pub const N_IN: usize = 40;
/// Readout units (classes).
pub const N_OUT: usize = 2;
/// The loss reads the mean of the readout over this many final steps.
pub const LAST: usize = 50;
/// Probability of an input spike per channel and step.
pub const P_IN: f64 = 0.02;
/// Size of the recurrent population in `w1.rule`.
pub const FILE_N: usize = 128;

/// Where the network lives in the repository (the name diagnostics would use).
pub const NETWORK_FILE: &str = "rules/networks/w1.rule";
const SOURCE: &str = include_str!("../../rules/networks/w1.rule");
const REC_DECL: &str = "population rec: W1LIF[128];";
const INIT_SCALE: &str = "1 / sqrt(128)";

/// The text of W1 with `n` recurrent neurons: the population size and the
/// `1 / sqrt(128)` initialiser scales replaced.
pub fn source(n: usize) -> String {
    SOURCE
        .replace(REC_DECL, &format!("population rec: W1LIF[{n}];"))
        .replace(INIT_SCALE, &format!("1 / sqrt({n})"))
}

/// W1 with `n` recurrent neurons, loaded, checked and lowered (it has no imports).
pub fn module(n: usize) -> Result<Module, BenchError> {
    if n == 0 {
        return Err(BenchError::Config("N must be at least 1".into()));
    }
    crate::lower_text(NETWORK_FILE, &source(n), Some("W1"), &mut |_, import| {
        Err(format!(
            "W1 is self-contained and imports nothing (\"{import}\")"
        ))
    })
}

/// Input spikes and labels of a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Inputs {
    /// Time steps.
    pub steps: usize,
    /// Episodes.
    pub batch: usize,
    /// `x[t][b][j]`, flattened: 0 or 1.
    pub x: Vec<f32>,
    /// Class of each episode, 0 or 1.
    pub labels: Vec<usize>,
}

impl Inputs {
    /// The inputs of step `t`, `[b][j]` flattened (the layout of the `x.out` variable).
    pub fn at(&self, t: usize) -> &[f32] {
        let k = self.batch * N_IN;
        &self.x[t * k..(t + 1) * k]
    }
}

/// Inputs drawn like `w1_common.py` (x ~ Bernoulli(0.02), then the labels), from our
/// own generator: the same distribution, not numpy's numbers.
pub fn reference_inputs(steps: usize, batch: usize, seed: u64) -> Inputs {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(2); // apart from the streams `lang::init` derives from the same seed
    let x = (0..steps * batch * N_IN)
        .map(|_| if rng.gen::<f64>() < P_IN { 1.0 } else { 0.0 })
        .collect();
    let labels = (0..batch).map(|_| rng.gen_range(0..N_OUT)).collect();
    Inputs {
        steps,
        batch,
        x,
        labels,
    }
}

/// The JSON names of the learned parameters and the variables they set.
pub const PARAM_VARS: [(&str, &str); 9] = [
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

/// Parameters and inputs from a file of the shared format.
#[derive(Clone, Debug)]
pub struct Reference {
    /// Recurrent neurons.
    pub n: usize,
    /// Values of each learned parameter, by JSON name, row-major.
    pub params: HashMap<String, Vec<f64>>,
    /// Inputs and labels.
    pub inputs: Inputs,
}

#[derive(Deserialize)]
struct TensorJson {
    shape: Vec<usize>,
    data: Vec<f64>,
}

#[derive(Deserialize)]
struct SpikesJson {
    shape: [usize; 3],
    ones: Vec<[usize; 3]>,
}

#[derive(Deserialize)]
struct ParamsJson {
    #[serde(rename = "N")]
    n: usize,
    #[serde(rename = "T")]
    steps: usize,
    #[serde(rename = "B")]
    batch: usize,
    #[serde(rename = "N_in")]
    n_in: usize,
    x_spikes: SpikesJson,
    c: Vec<usize>,
    params: HashMap<String, TensorJson>,
}

/// Reads `{"N","T","B","N_in","x_spikes":{"shape","ones"},"c","params":{name:{"shape",
/// "data"}}}` (see the shared bench's `W1.md`), checking every shape.
pub fn load_params_json(path: &Path) -> Result<Reference, BenchError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| BenchError::Read {
        path: name.clone(),
        source,
    })?;
    parse_params_json(&text).map_err(|why| BenchError::Params { path: name, why })
}

fn parse_params_json(text: &str) -> Result<Reference, String> {
    let f: ParamsJson = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let (n, steps, batch) = (f.n, f.steps, f.batch);
    if n == 0 || steps == 0 || batch == 0 {
        return Err("N, T and B must be at least 1".into());
    }
    if f.n_in != N_IN {
        return Err(format!("N_in is {}, W1 has {N_IN} inputs", f.n_in));
    }
    if f.x_spikes.shape != [steps, batch, N_IN] {
        return Err(format!(
            "x_spikes has shape {:?}, expected [T, B, N_in] = {:?}",
            f.x_spikes.shape,
            [steps, batch, N_IN]
        ));
    }
    let mut x = vec![0.0; steps * batch * N_IN];
    for [t, b, j] in f.x_spikes.ones {
        if t >= steps || b >= batch || j >= N_IN {
            return Err(format!("input spike [{t}, {b}, {j}] out of range"));
        }
        x[(t * batch + b) * N_IN + j] = 1.0;
    }
    if f.c.len() != batch || f.c.iter().any(|&c| c >= N_OUT) {
        return Err(format!("c must hold B = {batch} labels in 0..{N_OUT}"));
    }
    let shapes: [(&str, Vec<usize>); 9] = [
        ("W_in", vec![n, N_IN]),
        ("W_rec", vec![n, n]),
        ("A", vec![n, n]),
        ("w_m", vec![n]),
        ("b_m", vec![]),
        ("eta", vec![]),
        ("a_plus", vec![]),
        ("a_minus", vec![]),
        ("W_out", vec![N_OUT, n]),
    ];
    let mut params = f.params;
    let mut out = HashMap::new();
    for (name, shape) in shapes {
        let t = params
            .remove(name)
            .ok_or_else(|| format!("parameter `{name}` is missing"))?;
        let len: usize = shape.iter().product();
        if t.shape != shape || t.data.len() != len {
            return Err(format!(
                "parameter `{name}` has shape {:?} and {} values, expected {shape:?}",
                t.shape,
                t.data.len()
            ));
        }
        out.insert(name.to_string(), t.data);
    }
    Ok(Reference {
        n,
        params: out,
        inputs: Inputs {
            steps,
            batch,
            x,
            labels: f.c,
        },
    })
}

impl Reference {
    /// An instance of `m` (W1 with [`Reference::n`] neurons) holding these parameters.
    pub fn instance(&self, m: &Module) -> Result<Instance, BenchError> {
        let mut inst =
            lang::init::instantiate(m, 0).map_err(|e| BenchError::Init(e.to_string()))?;
        for (name, var) in PARAM_VARS {
            let v = m
                .var_by_name(var)
                .ok_or_else(|| BenchError::Init(format!("W1 has no variable `{var}`")))?;
            let data = &self.params[name];
            let slot = &mut inst.params[v.index()];
            if slot.len() != data.len() {
                return Err(BenchError::Init(format!(
                    "`{var}` has {} values, `{name}` {}: is the network of size N = {}?",
                    slot.len(),
                    data.len(),
                    self.n
                )));
            }
            slot.clone_from(data);
        }
        Ok(inst)
    }
}

/// How the batch is spread over threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parallelism {
    /// Every episode on the calling thread.
    Sequential,
    /// Episodes split across rayon's global pool.
    Rayon,
}

/// Runs `inputs.steps` steps over `inputs.batch` episodes on a compiled W1 and returns
/// the loss: the mean over episodes of the cross-entropy of the readout's mean over
/// the last [`LAST`] steps (all steps, if fewer) against the label.
///
/// Episode-major ([`Runner::for_each_episode`]): each episode runs all its steps on one
/// thread, so the batch is split across threads once per pass, not once per step, and
/// an episode's synapse state stays in cache.
pub fn forward(
    kernel: &Kernel,
    m: &Module,
    inst: &Instance,
    inputs: &Inputs,
    par: Parallelism,
) -> Result<f64, BenchError> {
    match kernel.precision {
        Precision::F32 => forward_with::<f32>(kernel, m, inst, inputs, par, Order::EpisodeMajor),
        Precision::F64 => forward_with::<f64>(kernel, m, inst, inputs, par, Order::EpisodeMajor),
    }
}

/// [`forward`] in lock-step: every step of the whole batch before the next
/// ([`Runner::step`], as `ruleopt simulate` runs), the batch split across threads at
/// every step. Same result, slower for small networks.
pub fn forward_lockstep(
    kernel: &Kernel,
    m: &Module,
    inst: &Instance,
    inputs: &Inputs,
    par: Parallelism,
) -> Result<f64, BenchError> {
    match kernel.precision {
        Precision::F32 => forward_with::<f32>(kernel, m, inst, inputs, par, Order::Lockstep),
        Precision::F64 => forward_with::<f64>(kernel, m, inst, inputs, par, Order::Lockstep),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    EpisodeMajor,
    Lockstep,
}

fn forward_with<T: Elem>(
    kernel: &Kernel,
    m: &Module,
    inst: &Instance,
    inputs: &Inputs,
    par: Parallelism,
    order: Order,
) -> Result<f64, BenchError> {
    let var = |name: &str| {
        m.var_by_name(name)
            .ok_or_else(|| BenchError::Init(format!("W1 has no variable `{name}`")))
    };
    let (xv, yv) = (var("x.out")?, var("out.y")?);
    let mut runner: Runner<'_, T> = Runner::new(kernel, m, inst, inputs.batch, 0)?;
    runner.parallel = par == Parallelism::Rayon;
    if runner.storage_mut(xv).len() != inputs.batch * N_IN
        || runner.storage_mut(yv).len() != inputs.batch * N_OUT
    {
        return Err(BenchError::Init(
            "x.out or out.y has an unexpected size".into(),
        ));
    }
    let (steps, last) = (inputs.steps, LAST.min(inputs.steps));
    let mut mean_y = vec![0.0f64; inputs.batch * N_OUT];
    match order {
        Order::EpisodeMajor => {
            let sums = std::sync::Mutex::new(&mut mean_y);
            runner.for_each_episode(|ep| {
                let b = ep.index();
                let mut acc = [0.0f64; N_OUT];
                for t in 0..steps {
                    let x = &inputs.at(t)[b * N_IN..(b + 1) * N_IN];
                    for (d, &s) in ep.var(xv).iter_mut().zip(x) {
                        *d = T::from_f64(f64::from(s));
                    }
                    ep.step();
                    if t >= steps - last {
                        for (a, y) in acc.iter_mut().zip(ep.var(yv).iter()) {
                            *a += y.to_f64();
                        }
                    }
                }
                let mut sums = sums.lock().unwrap_or_else(|e| e.into_inner());
                sums[b * N_OUT..(b + 1) * N_OUT].copy_from_slice(&acc);
            });
        }
        Order::Lockstep => {
            for t in 0..steps {
                for (d, &s) in runner.storage_mut(xv).iter_mut().zip(inputs.at(t)) {
                    *d = T::from_f64(f64::from(s));
                }
                runner.step();
                if t >= steps - last {
                    for (acc, y) in mean_y.iter_mut().zip(runner.storage_mut(yv).iter()) {
                        *acc += y.to_f64();
                    }
                }
            }
        }
    }
    mean_y.iter_mut().for_each(|y| *y /= last as f64);
    Ok(cross_entropy(&mean_y, &inputs.labels))
}

/// [`forward`] on the reference interpreter (f64): the oracle of the compiled forward.
pub fn forward_interp(m: &Module, inst: &Instance, inputs: &Inputs) -> Result<f64, BenchError> {
    let var = |name: &str| {
        m.var_by_name(name)
            .ok_or_else(|| BenchError::Init(format!("W1 has no variable `{name}`")))
    };
    let (xv, yv) = (var("x.out")?, var("out.y")?);
    let init = |e: &dyn std::fmt::Display| BenchError::Init(e.to_string());
    let mut state = lang::init::initial_state(m, inst, inputs.batch, 0).map_err(|e| init(&e))?;
    let mut interp = lang::interp::Interp::new(m, inst).map_err(|e| init(&e))?;
    let last = LAST.min(inputs.steps);
    let mut mean_y = vec![0.0f64; inputs.batch * N_OUT];
    for t in 0..inputs.steps {
        for (d, &s) in state.values[xv.index()].iter_mut().zip(inputs.at(t)) {
            *d = f64::from(s);
        }
        interp.step(&mut state);
        if t >= inputs.steps - last {
            for (acc, y) in mean_y.iter_mut().zip(&state.values[yv.index()]) {
                *acc += y;
            }
        }
    }
    mean_y.iter_mut().for_each(|y| *y /= last as f64);
    Ok(cross_entropy(&mean_y, &inputs.labels))
}

/// Mean over episodes of `logsumexp(logits[b]) - logits[b][label[b]]`, with `logits`
/// flattened `[b][class]`.
pub fn cross_entropy(logits: &[f64], labels: &[usize]) -> f64 {
    let total: f64 = labels
        .iter()
        .zip(logits.chunks(N_OUT))
        .map(|(&c, l)| crate::tasks::env::cross_entropy(l, c).0)
        .sum();
    total / labels.len() as f64
}

/// What [`bench_forward`] runs.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Recurrent neurons (ignored with `params`: the file's N is used).
    pub n: usize,
    /// Timed forward passes, after one untimed warm-up.
    pub repeats: usize,
    /// Threads of rayon's global pool (set by the caller, see [`crate::set_threads`]);
    /// more than one runs episodes in parallel.
    pub threads: usize,
    /// Element type of the kernel.
    pub precision: Precision,
    /// Parameters and inputs from this file instead of drawn from `seed`.
    pub params: Option<std::path::PathBuf>,
    /// Seed of the drawn parameters and inputs.
    pub seed: u64,
    /// Run with [`forward_lockstep`] instead of [`forward`].
    pub lockstep: bool,
}

impl Default for BenchConfig {
    fn default() -> BenchConfig {
        BenchConfig {
            n: FILE_N,
            repeats: 5,
            threads: 2,
            precision: Precision::F32,
            params: None,
            seed: 0,
            lockstep: false,
        }
    }
}

/// One benchmark's measurements (the `--json` object of `ruleopt bench w1`).
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    /// `"w1"`.
    pub workload: String,
    /// `"fwd"`.
    pub mode: String,
    /// Recurrent neurons.
    pub n: usize,
    /// Time steps.
    pub steps: usize,
    /// Episodes.
    pub batch: usize,
    /// `"f32"` or `"f64"`.
    pub precision: String,
    /// Threads of the pool.
    pub threads: usize,
    /// `"episode-major"` ([`forward`]) or `"lockstep"` ([`forward_lockstep`]).
    pub order: String,
    /// Where parameters and inputs came from: a file, or `"seed S"`.
    pub inputs: String,
    /// Wall time of every timed forward pass, in seconds.
    pub times_s: Vec<f64>,
    /// Median of `times_s`.
    pub median_s: f64,
    /// Minimum of `times_s`.
    pub min_s: f64,
    /// The JIT alone ([`Kernel::compile_seconds`]).
    pub compile_s: f64,
    /// Parse, check, lower and JIT, from text to a callable kernel.
    pub compile_total_s: f64,
    /// Peak resident memory of the process (`VmHWM`), bytes.
    pub peak_rss_bytes: u64,
    /// `N * N * B * T / median_s`.
    pub synapse_updates_per_s: f64,
    /// The loss of the (last) forward pass.
    pub loss: f64,
    /// Per timed pass, the share of all cores other processes used meanwhile
    /// ([`LoadMeter`]); a high value means the times are not to be trusted.
    pub other_load: Vec<f64>,
}

/// The parameters and inputs a benchmark runs on: the reference file's, or drawn from
/// the seed; and a description of their source.
pub fn instance_and_inputs(
    m: &Module,
    reference: Option<&Reference>,
    cfg: &BenchConfig,
) -> Result<(Instance, Inputs, String), BenchError> {
    Ok(match reference {
        Some(r) => (
            r.instance(m)?,
            r.inputs.clone(),
            cfg.params
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
        None => (
            lang::init::instantiate(m, cfg.seed).map_err(|e| BenchError::Init(e.to_string()))?,
            reference_inputs(STEPS, BATCH, cfg.seed),
            format!("seed {}", cfg.seed),
        ),
    })
}

/// Compiles W1 once, runs one warm-up and `repeats` timed forward passes.
pub fn bench_forward(cfg: &BenchConfig) -> Result<BenchResult, BenchError> {
    if cfg.repeats == 0 {
        return Err(BenchError::Config("--repeats must be at least 1".into()));
    }
    let reference = cfg.params.as_deref().map(load_params_json).transpose()?;
    let n = reference.as_ref().map_or(cfg.n, |r| r.n);
    let (m, lower_s) = timed(|| module(n));
    let m = m?;
    let (kernel, jit_s) = timed(|| {
        jit::compile(
            &m,
            jit::Options {
                precision: cfg.precision,
            },
        )
    });
    let kernel = kernel?;
    let (inst, inputs, source) = instance_and_inputs(&m, reference.as_ref(), cfg)?;
    let par = if cfg.threads > 1 {
        Parallelism::Rayon
    } else {
        Parallelism::Sequential
    };
    let pass = if cfg.lockstep {
        forward_lockstep
    } else {
        forward
    };
    let mut loss = pass(&kernel, &m, &inst, &inputs, par)?;
    let mut times = Vec::with_capacity(cfg.repeats);
    let mut other_load = Vec::with_capacity(cfg.repeats);
    for _ in 0..cfg.repeats {
        let meter = LoadMeter::start();
        let (l, s) = timed(|| pass(&kernel, &m, &inst, &inputs, par));
        other_load.push(meter.stop());
        loss = l?;
        times.push(s);
    }
    let median_s = median(&times);
    let updates = (n * n * inputs.batch * inputs.steps) as f64;
    Ok(BenchResult {
        workload: "w1".into(),
        mode: "fwd".into(),
        n,
        steps: inputs.steps,
        batch: inputs.batch,
        precision: match cfg.precision {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
        .into(),
        threads: cfg.threads,
        order: if cfg.lockstep {
            "lockstep"
        } else {
            "episode-major"
        }
        .into(),
        inputs: source,
        min_s: times.iter().copied().fold(f64::INFINITY, f64::min),
        median_s,
        times_s: times,
        compile_s: kernel.compile_seconds,
        compile_total_s: lower_s + jit_s,
        peak_rss_bytes: peak_rss_bytes(),
        synapse_updates_per_s: updates / median_s,
        loss,
        other_load,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(n: usize, precision: Precision) -> (Module, Kernel) {
        let m = module(n).expect("W1 lowers");
        let k = jit::compile(&m, jit::Options { precision }).expect("W1 compiles");
        (m, k)
    }

    #[test]
    fn source_is_resized() {
        assert!(
            SOURCE.contains(REC_DECL),
            "w1.rule declares rec: W1LIF[128]"
        );
        let s = source(16);
        assert!(s.contains("population rec: W1LIF[16];"));
        let code: Vec<&str> = s
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect();
        assert!(
            code.iter().all(|l| !l.contains("128")),
            "every 128 is replaced"
        );
        let scales = code.iter().filter(|l| l.contains("1 / sqrt(16)")).count();
        assert_eq!(scales, 3, "W_rec, W_out and w_m are scaled");
        assert!(module(0).is_err());
    }

    #[test]
    fn small_forward_gives_a_finite_loss() {
        let (m, k) = compiled(16, Precision::F32);
        let rec = m.pops.iter().find(|(_, p)| p.name == "rec").expect("rec").1;
        assert_eq!(rec.size, 16);
        let inst = lang::init::instantiate(&m, 1).expect("instance");
        let inputs = reference_inputs(50, 3, 1);
        assert_eq!(inputs.x.len(), 50 * 3 * N_IN);
        let seq = forward(&k, &m, &inst, &inputs, Parallelism::Sequential).expect("runs");
        let par = forward(&k, &m, &inst, &inputs, Parallelism::Rayon).expect("runs");
        assert!(seq.is_finite() && seq > 0.0, "loss {seq}");
        assert_eq!(seq, par, "episodes are independent of the thread split");
        for p in [Parallelism::Sequential, Parallelism::Rayon] {
            let lockstep = forward_lockstep(&k, &m, &inst, &inputs, p).expect("runs");
            assert_eq!(
                seq, lockstep,
                "the order of episodes and steps does not matter"
            );
        }
    }

    /// Sizes that are not multiples of the vector width, and more input spikes than
    /// the benchmark's, so that the network is active: the f64 kernel gives the
    /// interpreter's loss exactly, the f32 kernel to float32 accuracy.
    #[test]
    fn compiled_forward_matches_the_interpreter() {
        for n in [1, 3, 5, 6, 13, 17] {
            let mut inputs = reference_inputs(120, 3, n as u64);
            for (k, x) in inputs.x.iter_mut().enumerate() {
                if k % 7 == 0 {
                    *x = 1.0;
                }
            }
            let (m, k64) = compiled(n, Precision::F64);
            let inst = lang::init::instantiate(&m, 2).expect("instance");
            let want = forward_interp(&m, &inst, &inputs).expect("interpreter runs");
            let got = forward(&k64, &m, &inst, &inputs, Parallelism::Rayon).expect("runs");
            assert_eq!(got.to_bits(), want.to_bits(), "N = {n}: {got} vs {want}");
            let (m32, k32) = compiled(n, Precision::F32);
            let got = forward(&k32, &m32, &inst, &inputs, Parallelism::Sequential).expect("runs");
            assert!(
                (got - want).abs() < 1e-4 * want.abs().max(1.0),
                "N = {n}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn inputs_have_the_reference_rate() {
        let inputs = reference_inputs(1000, 16, 0);
        let rate = inputs.x.iter().map(|&x| f64::from(x)).sum::<f64>() / inputs.x.len() as f64;
        assert!((rate - P_IN).abs() < 0.002, "rate {rate}");
        assert!(inputs.labels.iter().all(|&c| c < N_OUT));
        assert_eq!(inputs, reference_inputs(1000, 16, 0), "deterministic");
    }

    #[test]
    fn cross_entropy_of_equal_logits_is_ln2() {
        let l = cross_entropy(&[0.3, 0.3, -1.0, -1.0], &[0, 1]);
        assert!((l - std::f64::consts::LN_2).abs() < 1e-15);
    }

    #[test]
    fn bad_params_files_are_errors() {
        assert!(parse_params_json("{}").is_err());
        let ok = r#"{"N":1,"T":1,"B":1,"N_in":40,"x_spikes":{"shape":[1,1,40],"ones":[[0,0,3]]},
            "c":[1],"params":{"W_in":{"shape":[1,40],"data":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
            0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]},"W_rec":{"shape":[1,1],"data":[0]},
            "A":{"shape":[1,1],"data":[0.1]},"w_m":{"shape":[1],"data":[0]},
            "b_m":{"shape":[],"data":[0]},"eta":{"shape":[],"data":[0.1]},
            "a_plus":{"shape":[],"data":[0.05]},"a_minus":{"shape":[],"data":[0.05]},
            "W_out":{"shape":[2,1],"data":[1,2]}}}"#;
        let r = parse_params_json(ok).expect("a valid file");
        assert_eq!((r.n, r.inputs.x[3], r.inputs.labels[0]), (1, 1.0, 1));
        let m = module(1).expect("W1 lowers");
        let inst = r.instance(&m).expect("fits");
        let w_out = m.var_by_name("wout.w").expect("wout.w");
        assert_eq!(inst.params[w_out.index()], vec![1.0, 2.0]);
        assert!(r.instance(&module(2).expect("lowers")).is_err(), "wrong N");
        for (from, to) in [
            (r#""ones":[[0,0,3]]"#, r#""ones":[[0,0,40]]"#),
            (r#""c":[1]"#, r#""c":[2]"#),
            (
                r#""W_rec":{"shape":[1,1],"data":[0]}"#,
                r#""W_rec":{"shape":[1,1],"data":[]}"#,
            ),
            (r#""N_in":40"#, r#""N_in":4"#),
        ] {
            assert!(parse_params_json(&ok.replace(from, to)).is_err(), "{to}");
        }
    }

    /// The reference parameters and inputs at N = 64 give the JAX references' loss:
    /// float64 to 1e-9 relative, float32 to 1e-5.
    #[test]
    fn reference_loss_at_n64() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("w1/params_N64.json");
        let r = load_params_json(&path).expect("params_N64.json");
        assert_eq!(r.n, 64);
        for (precision, want, tol) in [
            // grads_N64_float64.json and grads_N64_float32.json of the shared W1 bench.
            (Precision::F64, 1.3864503701883168, 1e-9),
            (Precision::F32, 1.3864508867263794, 1e-5),
        ] {
            let (m, k) = compiled(64, precision);
            let inst = r.instance(&m).expect("fits");
            let loss = forward(&k, &m, &inst, &r.inputs, Parallelism::Rayon).expect("runs");
            assert!(
                ((loss - want) / want).abs() < tol,
                "{precision:?}: loss {loss}, reference {want}"
            );
        }
    }
}
