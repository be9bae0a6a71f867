//! Backpropagation through time on compiled kernels, within a memory budget.
//!
//! Each episode runs on one thread from start to end (episode-major): the forward
//! kernel runs all steps and keeps the forward state every `checkpoint` steps, and
//! every step of the last segment; then, segment by segment from the last, the forward
//! is recomputed from its checkpoint keeping every step of the segment (the last one
//! is already kept), and the adjoint kernel runs back through it. With one segment
//! (`checkpoint >= steps`) nothing is recomputed. The recompute runs an out-of-place
//! forward kernel ([`crate::compile_out_of_place`]) that reads step `t`'s states from
//! where they are kept and writes step `t + 1`'s into their slot of the segment: the
//! segment is the storage, nothing is copied. A segment's first state is its checkpoint.
//! The adjoint step of `t` reads state(t) and, for the forward results it needs
//! ([`Adjoint::next`]), state(t + 1) where they are kept (the next checkpoint after a
//! segment's last step; a copy of the final state after the last step).
//! Neuron-level and synapse-level state alike are checkpointed, so memory per episode
//! is `(steps / K + K - 1)` forward states (one more, the final state, when the adjoint
//! reads next states), and the gradients do not depend on `K`: the
//! recomputed forward is bit-identical to the first.

use crate::run::{Elem, Episode, Runner};
use crate::{JitError, Kernel};
use lang::diff::Adjoint;
use lang::init::Instance;
use lang::ir::{Module, Space, VarId, VarKind};
use std::sync::Mutex;

/// A loss that each episode computes from its own trajectory.
pub trait EpisodeLoss<T: Elem>: Sync {
    /// What an episode accumulates during its forward pass (readouts, say).
    type Acc: Send + Default;
    /// Sets the episode's input variables for step `t`. The values may depend on what
    /// the episode did so far, through `acc` (a closed-loop task: the reward of a
    /// decision): it is called once per step, in order, in the first forward pass, and
    /// [`bptt`] records the input variables and replays them wherever it recomputes.
    fn inputs(&self, b: usize, t: usize, ep: &mut Episode<'_, T>, acc: &mut Self::Acc);
    /// After forward step `t`: looks at the episode's state.
    fn observe(&self, b: usize, t: usize, ep: &mut Episode<'_, T>, acc: &mut Self::Acc);
    /// Before the adjoint of step `t`: adds dL/d(state after step t) into the adjoint
    /// variables (`adj.*`) of the episode. (The episode's forward state variables are
    /// not meaningful here: the adjoint step reads the states it needs where BPTT
    /// keeps them.)
    fn seed(&self, b: usize, t: usize, ep: &mut Episode<'_, T>, acc: &Self::Acc);
}

/// The three kernels of a gradient: forward, adjoint, and initial values.
pub struct GradKernels {
    /// The forward step.
    pub forward: Kernel,
    /// The forward step, out of place (for recomputing segments).
    pub forward_into: Kernel,
    /// The adjoint step.
    pub adjoint: Kernel,
    /// The one-shot step for gradients through initial values.
    pub init: Kernel,
}

impl GradKernels {
    /// Compiles the three kernels of `m` and its adjoint.
    pub fn compile(
        m: &Module,
        adj: &Adjoint,
        opts: crate::Options,
    ) -> Result<GradKernels, JitError> {
        Ok(GradKernels {
            forward: crate::compile(m, opts)?,
            forward_into: crate::compile_out_of_place(m, opts)?,
            adjoint: crate::compile(&adj.module, opts)?,
            init: crate::compile(&adj.init, opts)?,
        })
    }
}

/// Gradients of a batch: per `learn` parameter (in [`Adjoint::grads`] order), summed over
/// episodes, zero at unconnected synapses; and what each episode accumulated.
pub struct Gradients<A> {
    /// dL/dp per parameter.
    pub grads: Vec<(VarId, Vec<f64>)>,
    /// Per episode, the loss's accumulator.
    pub accs: Vec<A>,
    /// Forward states kept at once per episode (checkpoints plus one segment but its
    /// first state, which is a checkpoint; plus the final state if the adjoint reads
    /// next states).
    pub states_kept: usize,
}

/// Runs forward and backward over `steps` steps of `batch` episodes, checkpointing every
/// `checkpoint` steps (at least 1).
#[allow(clippy::too_many_arguments)]
pub fn bptt<T: Elem, L: EpisodeLoss<T>>(
    k: &GradKernels,
    m: &Module,
    adj: &Adjoint,
    inst: &Instance,
    batch: usize,
    seed: u64,
    steps: usize,
    checkpoint: usize,
    loss: &L,
) -> Result<Gradients<L::Acc>, JitError> {
    let a = &adj.module;
    let mut ainst = inst.clone();
    ainst.params.resize(a.vars.len(), Vec::new());
    let mut runner: Runner<'_, T> = Runner::new(&k.adjoint, a, &ainst, batch, seed)?;
    // Adjoints and gradient accumulators start at zero.
    for &(_, v) in adj.adj.iter().chain(&adj.grads) {
        runner
            .storage_mut(v)
            .iter_mut()
            .for_each(|x| *x = T::default());
    }
    let fwd = runner.prefix(&k.forward, m)?;
    let fwd_into = runner.prefix(&k.forward_into, m)?;
    let init = runner.prefix(&k.init, &adj.init)?;
    let states: Vec<VarId> = m
        .vars
        .iter()
        .filter(|(_, v)| matches!(v.kind, VarKind::State { .. }))
        .map(|(h, _)| h)
        .collect();
    let input_vars: Vec<VarId> = m
        .vars
        .iter()
        .filter(|(_, v)| v.kind == VarKind::Input)
        .map(|(h, _)| h)
        .collect();
    let input_len: usize = input_vars
        .iter()
        .map(|&v| m.space_size(m.vars[v].space))
        .sum();
    // The adjoint step's next-state inputs: (index in `states`, input variable).
    let next: Vec<(usize, VarId)> = adj
        .next
        .iter()
        .map(|&(s, nv)| {
            let k = states.iter().position(|&v| v == s).expect("a state");
            (k, nv)
        })
        .collect();
    let k_seg = checkpoint.max(1);
    let n_seg = steps.div_ceil(k_seg);
    let accs: Mutex<Vec<(usize, L::Acc)>> = Mutex::new(Vec::new());
    // Buffers of finished episodes, for the next ones (at most one set per thread):
    // fresh synapse-sized allocations each episode cost page faults.
    let pool: Mutex<Vec<Kept<T>>> = Mutex::new(Vec::new());
    runner.for_each_episode(|ep| {
        let b = ep.index();
        let mut kept = pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        // Copies the episode's states into `slots[at]` (a new slot if there is none).
        let save = |ep: &mut Episode<'_, T>, slots: &mut Vec<Vec<Vec<T>>>, at: usize| {
            if at < slots.len() {
                for (&v, x) in states.iter().zip(slots[at].iter_mut()) {
                    x.copy_from_slice(ep.var(v));
                }
            } else {
                slots.push(states.iter().map(|&v| ep.var(v).to_vec()).collect());
            }
        };
        let load = |ep: &mut Episode<'_, T>, saved: &[Vec<T>]| {
            for (&v, x) in states.iter().zip(saved) {
                ep.var(v).copy_from_slice(x);
            }
        };
        // Every step's inputs, as the loss set them in the first pass.
        let recorded = &mut kept.recorded;
        recorded.clear();
        let mut acc = L::Acc::default();
        let checkpoints = &mut kept.checkpoints;
        // The states after a segment's first (its checkpoint): `segment[i]` holds
        // state(t0 + 1 + i). Overwritten by every segment (fresh allocations of
        // synapse-sized states each step cost page faults). The last segment's are kept
        // by the first pass, so it is never recomputed.
        let segment = &mut kept.segment;
        let last = (n_seg - 1) * k_seg;
        for t in 0..steps {
            if t % k_seg == 0 {
                save(ep, checkpoints, t / k_seg);
            } else if t > last {
                save(ep, segment, t - last - 1);
            }
            loss.inputs(b, t, ep, &mut acc);
            for &v in &input_vars {
                recorded.extend_from_slice(ep.var(v));
            }
            ep.step_prefix(&fwd);
            loss.observe(b, t, ep, &mut acc);
        }
        // The state after the last step (what the last adjoint step reads as next).
        if !next.is_empty() {
            save(ep, &mut kept.end, 0);
        }
        let (checkpoints, segment, recorded) = (
            &kept.checkpoints[..n_seg],
            &mut kept.segment,
            &kept.recorded,
        );
        let end = kept.end.first().map_or(&[][..], |x| &x[..]);
        let replay = |ep: &mut Episode<'_, T>, t: usize| {
            let mut at = t * input_len;
            for &v in &input_vars {
                let x = ep.var(v);
                x.copy_from_slice(&recorded[at..at + x.len()]);
                at += x.len();
            }
        };
        for (s, cp) in checkpoints.iter().enumerate().rev() {
            let (t0, t1) = (s * k_seg, ((s + 1) * k_seg).min(steps));
            // Recompute the segment from its checkpoint (but the last: kept), each step
            // reading its states where they are kept and writing the next step's into
            // their slot (state(t1) is not needed).
            for t in (t0..t1 - 1).filter(|_| t0 != last) {
                let i = t - t0;
                if segment.len() == i {
                    segment.push(
                        states
                            .iter()
                            .map(|&v| vec![T::default(); ep.var(v).len()])
                            .collect(),
                    );
                }
                let (done, rest) = segment.split_at_mut(i);
                let from = if i == 0 { cp } else { &done[i - 1] };
                replay(ep, t);
                ep.step_prefix_into(&fwd_into, from, &mut rest[0]);
            }
            let mut saved: Vec<(VarId, &[T])> = Vec::with_capacity(states.len() + next.len());
            for t in (t0..t1).rev() {
                replay(ep, t);
                loss.seed(b, t, ep, &acc);
                // The adjoint step reads state(t) and state(t + 1) where they are kept.
                let now = if t == t0 { cp } else { &segment[t - t0 - 1] };
                let after = if t + 1 < t1 {
                    &segment[t - t0]
                } else if t + 1 < steps {
                    &checkpoints[s + 1]
                } else {
                    end
                };
                saved.clear();
                saved.extend(states.iter().zip(now).map(|(&v, x)| (v, &x[..])));
                for &(k, nv) in &next {
                    saved.push((nv, &after[k]));
                }
                ep.step_reading(&saved);
            }
        }
        // The initial state's adjoints into the parameters of the initial values.
        load(ep, &checkpoints[0]);
        ep.step_prefix(&init);
        accs.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((b, acc));
        pool.lock().unwrap_or_else(|e| e.into_inner()).push(kept);
    });
    let mut accs = accs.into_inner().unwrap_or_else(|e| e.into_inner());
    accs.sort_by_key(|(b, _)| *b);
    let mut grads = Vec::new();
    for &(p, g) in &adj.grads {
        let n = m.space_size(m.vars[p].space);
        let all = runner.get(g);
        let mut total = vec![0.0; n];
        for b in 0..batch {
            for (t, x) in total.iter_mut().zip(&all[b * n..(b + 1) * n]) {
                *t += x;
            }
        }
        if let Space::Syn(q) = m.vars[p].space {
            for (t, &c) in total.iter_mut().zip(&inst.masks[q.index()]) {
                if !c {
                    *t = 0.0;
                }
            }
        }
        grads.push((p, total));
    }
    Ok(Gradients {
        grads,
        accs: accs.into_iter().map(|(_, a)| a).collect(),
        states_kept: n_seg + k_seg - 1 + usize::from(!next.is_empty()),
    })
}

/// What an episode of [`bptt`] keeps: checkpoints, one segment, the final state, the
/// recorded inputs (reused by the next episode on the thread).
struct Kept<T> {
    checkpoints: Vec<Vec<Vec<T>>>,
    segment: Vec<Vec<Vec<T>>>,
    end: Vec<Vec<Vec<T>>>,
    recorded: Vec<T>,
}

impl<T> Default for Kept<T> {
    fn default() -> Self {
        Kept {
            checkpoints: Vec::new(),
            segment: Vec::new(),
            end: Vec::new(),
            recorded: Vec::new(),
        }
    }
}

/// Runs `batch` episodes forward only (no gradient, nothing kept): what each episode's
/// loss accumulated, in episode order. `k` is the forward kernel of `m`.
pub fn forward<T: Elem, L: EpisodeLoss<T>>(
    k: &Kernel,
    m: &Module,
    inst: &Instance,
    batch: usize,
    seed: u64,
    steps: usize,
    loss: &L,
) -> Result<Vec<L::Acc>, JitError> {
    let mut runner: Runner<'_, T> = Runner::new(k, m, inst, batch, seed)?;
    let accs: Mutex<Vec<(usize, L::Acc)>> = Mutex::new(Vec::new());
    runner.for_each_episode(|ep| {
        let b = ep.index();
        let mut acc = L::Acc::default();
        for t in 0..steps {
            loss.inputs(b, t, ep, &mut acc);
            ep.step();
            loss.observe(b, t, ep, &mut acc);
        }
        accs.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((b, acc));
    });
    let mut accs = accs.into_inner().unwrap_or_else(|e| e.into_inner());
    accs.sort_by_key(|(b, _)| *b);
    Ok(accs.into_iter().map(|(_, a)| a).collect())
}

/// The checkpoint interval for a memory budget, by a simple cost model.
///
/// An interval `K` keeps `ceil(steps / K) + K` forward states per episode (the
/// footprint) and recomputes about `steps - footprint` steps. The footprint is smallest
/// near `K = sqrt(steps)`, and that `K` is taken when its segments (`K` states for each
/// of the `episodes_at_once`) fit in half of `cache_bytes` (the last-level cache; the
/// other half for the adjoint's own arrays and the parameters): the recomputed states
/// are then written and read back in cache, and cost little. When they do not fit, each
/// recomputed state goes to memory and back, and a checkpoint written in the first pass
/// costs about as much as the step it spares; the interval is then the smallest one
/// from the largest whose segments fit in that half cache up to the smallest-footprint
/// one that fits the budget: cache-resident segments if the budget allows, and more
/// checkpoints otherwise. (W1, N = 512, 2 threads, 32 MiB cache, 1 GiB: K = 4, not 28:
/// 5-7% faster; N = 128: K = 28, where smaller K were slower.) Without `cache_bytes`,
/// the smallest footprint. The error says what the smallest footprint needs.
pub fn checkpoint_for_budget(
    steps: usize,
    state_bytes: usize,
    episodes_at_once: usize,
    budget_bytes: u64,
    cache_bytes: Option<u64>,
) -> Result<usize, JitError> {
    let kept = |k: usize| steps.div_ceil(k) + k;
    let need = |k: usize| (kept(k) * state_bytes * episodes_at_once.max(1)) as u64;
    let smallest = (1..=steps.max(1))
        .min_by_key(|&k| (kept(k), k))
        .unwrap_or(1);
    if need(smallest) > budget_bytes {
        return Err(JitError::Budget {
            need: need(smallest),
            budget: budget_bytes,
        });
    }
    let segment = (state_bytes * episodes_at_once.max(1)).max(1) as u64;
    let in_cache = cache_bytes.map_or(smallest, |c| ((c / 2) / segment).max(1) as usize);
    if in_cache >= smallest {
        return Ok(smallest);
    }
    Ok((in_cache..smallest)
        .find(|&k| need(k) <= budget_bytes)
        .unwrap_or(smallest))
}

/// The size of this machine's last-level data cache, if the system says (Linux:
/// `/sys/devices/system/cpu/cpu0/cache`), for [`checkpoint_for_budget`].
pub fn last_level_cache_bytes() -> Option<u64> {
    let dir = std::path::Path::new("/sys/devices/system/cpu/cpu0/cache");
    let read = |p: std::path::PathBuf| std::fs::read_to_string(p).ok();
    let mut best: Option<(u32, u64)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        let kind = read(p.join("type")).unwrap_or_default();
        if !matches!(kind.trim(), "Data" | "Unified") {
            continue;
        }
        let (Some(level), Some(size)) = (read(p.join("level")), read(p.join("size"))) else {
            continue;
        };
        let (Ok(level), Some(size)) = (level.trim().parse::<u32>(), parse_cache_size(&size)) else {
            continue;
        };
        if best.is_none_or(|(l, _)| level > l) {
            best = Some((level, size));
        }
    }
    best.map(|(_, s)| s)
}

/// `32768K`, `1M`, `512` (bytes) -> bytes.
fn parse_cache_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul) = match s.chars().last()? {
        'K' => (&s[..s.len() - 1], 1 << 10),
        'M' => (&s[..s.len() - 1], 1 << 20),
        'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok().map(|n| n * mul)
}

/// Bytes of one episode's forward state (what a checkpoint holds) in precision `p`.
pub fn state_bytes(m: &Module, p: crate::Precision) -> usize {
    let es = if p == crate::Precision::F32 { 4 } else { 8 };
    m.vars
        .iter()
        .filter(|(_, v)| matches!(v.kind, VarKind::State { .. }))
        .map(|(_, v)| m.space_size(v.space) * es)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_picks_the_smallest_footprint_or_says_what_fits() {
        // 1000 steps: 64 states is the fewest (K = 28: 36 + 28; K = 32: 32 + 32); the
        // smallest such K is taken.
        assert_eq!(
            checkpoint_for_budget(1000, 1000, 2, 1 << 30, None).unwrap(),
            28
        );
        assert_eq!(
            checkpoint_for_budget(1000, 1000, 2, 128_000, None).unwrap(),
            28
        );
        match checkpoint_for_budget(1000, 1000, 2, 127_999, None) {
            Err(JitError::Budget { need, .. }) => assert_eq!(need, 128_000),
            other => panic!("{other:?}"),
        }
        assert_eq!(checkpoint_for_budget(1, 8, 1, 16, None).unwrap(), 1);
        // Segments of 28 states of 2 episodes fit in half of 112 kB: still 28.
        assert_eq!(
            checkpoint_for_budget(1000, 1000, 2, 1 << 30, Some(112_000)).unwrap(),
            28
        );
    }

    #[test]
    fn segments_that_leave_the_cache_shrink_as_far_as_the_budget_allows() {
        // W1 at N = 512, 2 threads, 32 MiB: 3 states per episode fit in 16 MiB.
        let (state, cache) = (2_105_352, 32 << 20);
        // 1 GiB: K = 3 would keep 337 states (1.42 GB); K = 4 keeps 254 (1.07 GB).
        assert_eq!(
            checkpoint_for_budget(1000, state, 2, 1 << 30, Some(cache)).unwrap(),
            4
        );
        assert_eq!(
            checkpoint_for_budget(1000, state, 2, 2 << 30, Some(cache)).unwrap(),
            3
        );
        // A budget for the smallest footprint only: K = 28 (64 states), as without
        // cache.
        let fewest = 64 * state as u64 * 2;
        assert_eq!(
            checkpoint_for_budget(1000, state, 2, fewest, Some(cache)).unwrap(),
            28
        );
        // A cache smaller than one state: K = 1 if it fits.
        assert_eq!(
            checkpoint_for_budget(10, 8, 1, 1 << 20, Some(4)).unwrap(),
            1
        );
    }

    #[test]
    fn cache_sizes_parse() {
        assert_eq!(parse_cache_size("32768K\n"), Some(32 << 20));
        assert_eq!(parse_cache_size("1M"), Some(1 << 20));
        assert_eq!(parse_cache_size("512"), Some(512));
        assert_eq!(parse_cache_size("x"), None);
    }
}
