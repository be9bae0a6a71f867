//! `ruleopt simulate`: runs a module — compiled by the JIT, or on the reference
//! interpreter — with a task stub (Poisson spikes on the input populations, constants
//! on the signals), or on a task's closed-loop episodes ([`on_task`]), and summarises
//! the run as a rate table, JSON, and (see [`crate::raster`]) an SVG raster plot. Both
//! back ends produce the same [`lang::interp::Trace`], so everything after the run is
//! shared.

use crate::Error;
use lang::diag::did_you_mean;
use lang::interp::RunConfig;
use lang::ir::{Module, PopId, VarId, VarKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;

/// Rate of an input population without `--rate`, in Hz.
pub const DEFAULT_RATE_HZ: f64 = 20.0;

/// What runs the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The reference interpreter (f64).
    Interp,
    /// The Cranelift JIT, in this precision.
    Jit(jit::Precision),
}

impl Backend {
    /// `interp`, `jit f32`, `jit f64`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Interp => "interp",
            Backend::Jit(jit::Precision::F32) => "jit f32",
            Backend::Jit(jit::Precision::F64) => "jit f64",
        }
    }
}

/// What to run; names are checked against the module by [`simulate`].
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Time steps.
    pub steps: usize,
    /// Episodes.
    pub batch: usize,
    /// Seed of the instance, the initial state and the Poisson inputs.
    pub seed: u64,
    /// Poisson rate (Hz) per input population; others get [`DEFAULT_RATE_HZ`].
    pub rates: Vec<(String, f64)>,
    /// Constant value per signal; others are 0.
    pub signals: Vec<(String, f64)>,
    /// Variables to record every step (a parameter is recorded once per step, without
    /// an episode index).
    pub record: Vec<String>,
    /// What runs the network.
    pub backend: Backend,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            steps: 1000,
            batch: 1,
            seed: 0,
            rates: vec![],
            signals: vec![],
            record: vec![],
            backend: Backend::Jit(jit::Precision::F32),
        }
    }
}

/// One population's summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PopSummary {
    /// Name.
    pub name: String,
    /// Neurons or channels.
    pub size: usize,
    /// Neuron model; `None` for input channels.
    pub model: Option<String>,
    /// Mean rate in Hz over neurons, episodes and time; `None` for non-spiking models.
    pub rate_hz: Option<f64>,
    /// Mean of the output of a non-spiking model over neurons, episodes and time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_output: Option<f64>,
    /// `[step, episode, neuron]` of every spike.
    pub spikes: Vec<[u32; 3]>,
}

/// Everything a run produced; serialises to the `--out` JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimResult {
    /// Network name.
    pub network: String,
    /// Time step, ms.
    pub dt_ms: f64,
    /// Time steps run.
    pub steps: usize,
    /// Episodes.
    pub batch: usize,
    /// Seed.
    pub seed: u64,
    /// What ran the network ([`Backend::name`]).
    pub backend: String,
    /// Per population, in declaration order.
    pub populations: Vec<PopSummary>,
    /// Recorded variables: `[step][episode * size + i]`.
    pub records: BTreeMap<String, Vec<Vec<f64>>>,
}

/// Whether a population emits spikes: an input population (its channels are 0/1), or a
/// model whose output is a spike indicator (as the interpreter decides it).
fn spiking_pops(module: &Module) -> Vec<bool> {
    let spiking = lang::interp::spiking_outputs(module);
    module
        .pops
        .iter()
        .map(|(h, p)| {
            if p.model.is_none() {
                p.out.is_some()
            } else {
                spiking.get(h.index()).is_some_and(Option::is_some)
            }
        })
        .collect()
}

/// Input variables that are not an input population's output: task signals.
fn signal_vars(module: &Module) -> Vec<VarId> {
    let outs: Vec<VarId> = module
        .pops
        .iter()
        .filter(|(_, p)| p.model.is_none())
        .filter_map(|(_, p)| p.out)
        .collect();
    module
        .vars
        .iter()
        .filter(|(v, var)| var.kind == VarKind::Input && !outs.contains(v))
        .map(|(v, _)| v)
        .collect()
}

/// "; did you mean `x`?" when a known name is close, else the list of known names
/// (`what` names them: "input populations", ...).
fn hint<'a>(name: &str, what: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    const SHOWN: usize = 12;
    let known: Vec<&str> = known.into_iter().collect();
    if let Some(h) = did_you_mean(name, known.iter().copied()) {
        return format!("; {h}");
    }
    match known.len() {
        0 => format!("; this network has no {what}"),
        n if n <= SHOWN => format!("; {what}: {}", known.join(", ")),
        n => format!(
            "; {what}: {}, ... ({} more)",
            known[..SHOWN].join(", "),
            n - SHOWN
        ),
    }
}

/// Runs the module with Poisson inputs and constant signals.
pub fn simulate(module: &Module, cfg: &SimConfig) -> Result<SimResult, Error> {
    let dt = module.dt;
    // Input populations and their spike probabilities per step.
    let inputs: Vec<(PopId, VarId)> = module
        .pops
        .iter()
        .filter(|(_, p)| p.model.is_none())
        .filter_map(|(h, p)| p.out.map(|v| (h, v)))
        .collect();
    for (name, _) in &cfg.rates {
        if !inputs.iter().any(|&(p, _)| module.pops[p].name == *name) {
            let known = inputs.iter().map(|&(p, _)| module.pops[p].name.as_str());
            return Err(Error::UnknownInput {
                name: name.clone(),
                hint: hint(name, "input populations", known),
            });
        }
    }
    let mut drives = Vec::new();
    for &(p, v) in &inputs {
        let name = &module.pops[p].name;
        let rate = cfg
            .rates
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map_or(DEFAULT_RATE_HZ, |&(_, r)| r);
        let prob = rate * dt / 1000.0;
        if !(0.0..=1.0).contains(&prob) {
            return Err(Error::RateTooHigh {
                name: name.clone(),
                rate,
                dt,
            });
        }
        drives.push((p, v, module.pops[p].size, prob));
    }
    // Signals.
    let signals = signal_vars(module);
    let mut signal_values = Vec::new();
    for (name, value) in &cfg.signals {
        match signals.iter().find(|&&v| module.vars[v].name == *name) {
            Some(&v) => signal_values.push((v, *value)),
            None => {
                let known = signals.iter().map(|&v| module.vars[v].name.as_str());
                return Err(Error::UnknownSignal {
                    name: name.clone(),
                    hint: hint(name, "signals", known),
                });
            }
        }
    }
    // Recorded variables: the requested ones, then the outputs of non-spiking models.
    let mut record = recorded_vars(module, &cfg.record)?;
    let requested = record.len();
    let spiking = spiking_pops(module);
    let rate_outputs: Vec<(PopId, VarId)> = module
        .pops
        .iter()
        .filter(|&(h, p)| p.model.is_some() && !spiking[h.index()])
        .filter_map(|(h, p)| p.out.map(|v| (h, v)))
        .collect();
    for &(_, v) in &rate_outputs {
        if !record.contains(&v) {
            record.push(v);
        }
    }

    let instance =
        lang::init::instantiate(module, cfg.seed).map_err(|e| Error::Init(e.to_string()))?;
    let config = RunConfig {
        steps: cfg.steps,
        batch: cfg.batch,
        seed: cfg.seed,
        record: record.clone(),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    rng.set_stream(1); // independent of the streams `lang` derives from the same seed
    let mut input_spikes: Vec<Vec<[u32; 3]>> = vec![Vec::new(); module.pops.len()];
    let mut drive = |step: usize, state: &mut lang::init::State| {
        for &(p, v, size, prob) in &drives {
            let Some(values) = state.values.get_mut(v.index()) else {
                continue;
            };
            for (k, x) in values.iter_mut().enumerate() {
                let spike = rng.gen::<f64>() < prob;
                *x = if spike { 1.0 } else { 0.0 };
                if spike {
                    input_spikes[p.index()].push([
                        step as u32,
                        (k / size.max(1)) as u32,
                        (k % size.max(1)) as u32,
                    ]);
                }
            }
        }
        for &(v, value) in &signal_values {
            if let Some(values) = state.values.get_mut(v.index()) {
                values.iter_mut().for_each(|x| *x = value);
            }
        }
    };
    let trace = match cfg.backend {
        Backend::Interp => lang::interp::run(module, &instance, &config, &mut drive)
            .map_err(|e| Error::Interp(e.to_string()))?,
        Backend::Jit(precision) => {
            let kernel = jit::compile(module, jit::Options { precision })?;
            jit::run(&kernel, module, &instance, &config, &mut drive)
                .map_err(|e| Error::Interp(e.to_string()))?
        }
    };

    let time_s = cfg.steps as f64 * dt / 1000.0;
    let mut populations = Vec::new();
    for (h, p) in module.pops.iter() {
        let spikes: Vec<[u32; 3]> = if p.model.is_none() {
            std::mem::take(&mut input_spikes[h.index()])
        } else {
            trace
                .spikes
                .get(h.index())
                .map_or_else(Vec::new, |s| s.iter().map(|&(t, e, i)| [t, e, i]).collect())
        };
        let mean_output = rate_outputs
            .iter()
            .find(|&&(q, _)| q == h)
            .and_then(|&(_, v)| {
                let k = record.iter().position(|&r| r == v)?;
                mean(trace.records.get(k)?)
            });
        populations.push(pop_summary(
            p,
            spiking[h.index()],
            spikes,
            mean_output,
            cfg.batch,
            time_s,
        ));
    }
    let records = record[..requested]
        .iter()
        .zip(trace.records)
        .map(|(&v, values)| (module.vars[v].name.clone(), values))
        .collect();
    Ok(SimResult {
        network: module.name.clone(),
        dt_ms: dt,
        steps: cfg.steps,
        batch: cfg.batch,
        seed: cfg.seed,
        backend: cfg.backend.name().to_string(),
        populations,
        records,
    })
}

/// The variables named by `names`, checked against the module.
fn recorded_vars(module: &Module, names: &[String]) -> Result<Vec<VarId>, Error> {
    let mut record = Vec::new();
    for name in names {
        let Some(v) = module.var_by_name(name) else {
            let known = module.vars.iter().map(|(_, v)| v.name.as_str());
            return Err(Error::UnknownVar {
                name: name.clone(),
                hint: hint(name, "variables", known),
            });
        };
        if !record.contains(&v) {
            record.push(v);
        }
    }
    Ok(record)
}

/// Runs `cfg.batch` episodes of `task` closed-loop, from `cfg.seed` (the network's
/// instance and the episodes), on the JIT in `cfg.backend`'s precision: the forward
/// pass of training and evaluation ([`search::train::Trainer::record`]). `cfg.steps`
/// is the task's. Returns the summary and the task's score.
pub fn on_task(
    module: &Module,
    task: &benchmarks::tasks::env::EnvTask,
    cfg: &SimConfig,
) -> Result<(SimResult, search::train::Score), Error> {
    let Backend::Jit(precision) = cfg.backend else {
        return Err(Error::Init(
            "--task runs on the JIT (the training's forward pass): drop --backend interp".into(),
        ));
    };
    let mut record = recorded_vars(module, &cfg.record)?;
    let requested = record.len();
    // Every population's output, for the table and the spikes.
    let outs: Vec<(PopId, VarId)> = module
        .pops
        .iter()
        .filter_map(|(h, p)| p.out.map(|v| (h, v)))
        .collect();
    for &(_, v) in &outs {
        if !record.contains(&v) {
            record.push(v);
        }
    }
    let tcfg = search::train::TrainConfig {
        batch: cfg.batch,
        seed: cfg.seed,
        precision,
        ..search::train::TrainConfig::default()
    };
    let trainer = search::train::Trainer::evaluator(module, task, tcfg)?;
    let (score, mut records) = trainer.record(cfg.batch, cfg.seed, &record)?;
    let steps = search::train::Task::steps(task);
    let time_s = steps as f64 * module.dt / 1000.0;
    let spiking = spiking_pops(module);
    let mut populations = Vec::new();
    for (h, p) in module.pops.iter() {
        let values = outs
            .iter()
            .find(|&&(q, _)| q == h)
            .and_then(|&(_, v)| record.iter().position(|&r| r == v))
            .map(|k| &records[k]);
        let size = p.size.max(1);
        let mut spikes = Vec::new();
        let mut mean_output = None;
        if let Some(values) = values {
            if spiking[h.index()] {
                for (t, row) in values.iter().enumerate() {
                    for (k, &z) in row.iter().enumerate() {
                        if z != 0.0 {
                            spikes.push([t as u32, (k / size) as u32, (k % size) as u32]);
                        }
                    }
                }
            } else {
                mean_output = mean(values);
            }
        }
        populations.push(pop_summary(
            p,
            spiking[h.index()],
            spikes,
            mean_output,
            cfg.batch,
            time_s,
        ));
    }
    records.truncate(requested);
    let records = record[..requested]
        .iter()
        .zip(records)
        .map(|(&v, values)| (module.vars[v].name.clone(), values))
        .collect();
    Ok((
        SimResult {
            network: module.name.clone(),
            dt_ms: module.dt,
            steps,
            batch: cfg.batch,
            seed: cfg.seed,
            backend: cfg.backend.name().to_string(),
            populations,
            records,
        },
        score,
    ))
}

/// The mean of every recorded value; `None` if there is none.
fn mean(values: &[Vec<f64>]) -> Option<f64> {
    let n: usize = values.iter().map(Vec::len).sum();
    (n > 0).then(|| values.iter().flatten().sum::<f64>() / n as f64)
}

/// Population `p`'s summary: its rate (Hz, over neurons, episodes and `time_s`) when
/// it spikes, else the mean of its output.
fn pop_summary(
    p: &lang::ir::Pop,
    spiking: bool,
    spikes: Vec<[u32; 3]>,
    mean_output: Option<f64>,
    batch: usize,
    time_s: f64,
) -> PopSummary {
    PopSummary {
        name: p.name.clone(),
        size: p.size,
        model: p.model.clone(),
        rate_hz: spiking.then(|| spikes.len() as f64 / (p.size as f64 * batch as f64 * time_s)),
        mean_output,
        spikes,
    }
}

/// Prints the per-population table.
pub fn write_table(res: &SimResult, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "network {}: {} steps of {} ms, batch {}, seed {}, backend {}",
        res.network, res.steps, res.dt_ms, res.batch, res.seed, res.backend
    )?;
    let rows: Vec<[String; 5]> = res
        .populations
        .iter()
        .map(|p| {
            [
                p.name.clone(),
                p.model.clone().unwrap_or_else(|| "(input)".to_string()),
                p.size.to_string(),
                p.rate_hz
                    .map_or_else(|| "-".to_string(), |r| format!("{r:.2}")),
                p.mean_output
                    .map_or_else(|| "-".to_string(), |m| format!("{m:.4}")),
            ]
        })
        .collect();
    let header = ["population", "model", "size", "rate (Hz)", "mean output"];
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        format!(
            "{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {:>w4$}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2],
            w3 = width[3],
            w4 = width[4]
        )
    };
    writeln!(out, "{}", line(header).trim_end())?;
    for row in &rows {
        writeln!(
            out,
            "{}",
            line([&row[0], &row[1], &row[2], &row[3], &row[4]]).trim_end()
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::hint;

    #[test]
    fn hints_suggest_or_list() {
        assert_eq!(
            hint("rewad", "signals", ["reward"]),
            "; did you mean `reward`?"
        );
        assert_eq!(
            hint("q", "signals", ["reward", "target"]),
            "; signals: reward, target"
        );
        assert_eq!(hint("q", "signals", []), "; this network has no signals");
        let many: Vec<String> = (0..20).map(|i| format!("pop{i}.v")).collect();
        let h = hint("zzz", "variables", many.iter().map(String::as_str));
        assert!(h.ends_with("pop11.v, ... (8 more)"), "{h}");
    }
}
