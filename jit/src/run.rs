//! Running a compiled kernel: storage in the kernel's precision, per-episode scratch,
//! episodes split across rayon threads.

use crate::{JitError, Kernel, Precision};
use lang::init::{initial_state, Instance, State};
use lang::interp::{spiking_outputs, RunConfig, Trace};
use lang::ir::{Module, VarId, VarKind};
use rayon::prelude::*;

/// Element types a kernel computes in.
pub trait Elem: Copy + Send + Sync + Default + 'static {
    /// Converts from f64 (rounding to nearest).
    fn from_f64(x: f64) -> Self;
    /// Converts to f64 (exactly).
    fn to_f64(self) -> f64;
}
impl Elem for f32 {
    fn from_f64(x: f64) -> f32 {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}
impl Elem for f64 {
    fn from_f64(x: f64) -> f64 {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
}

/// Raw pointers that are handed to other threads; see [`Kernel::call`] for why this is
/// sound: each thread works on its own episode's storage and scratch.
#[derive(Clone, Copy)]
struct Ptrs {
    vars: *const *mut u8,
    masks: *const *const u8,
}
// SAFETY: see the type's doc.
unsafe impl Send for Ptrs {}
unsafe impl Sync for Ptrs {}

#[derive(Clone, Copy)]
struct ScratchPtr(*const *mut u8);
// SAFETY: one scratch table per episode; an episode runs on one thread at a time.
unsafe impl Send for ScratchPtr {}
unsafe impl Sync for ScratchPtr {}

/// Per episode, a buffer per scratch slot of `kernel`, and the tables of their pointers
/// (which stay valid: the buffers are never resized).
#[allow(clippy::type_complexity)]
fn scratch_for<T: Elem>(kernel: &Kernel, batch: usize) -> (Vec<Vec<Vec<T>>>, Vec<Vec<*mut u8>>) {
    let mut bufs: Vec<Vec<Vec<T>>> = (0..batch)
        .map(|_| {
            kernel
                .layout
                .scratch
                .iter()
                .map(|&n| vec![T::default(); n.max(1)])
                .collect()
        })
        .collect();
    let tables = bufs
        .iter_mut()
        .map(|b| b.iter_mut().map(|x| x.as_mut_ptr() as *mut u8).collect())
        .collect();
    (bufs, tables)
}

/// A batch of episodes of one network, stepped by a compiled kernel.
pub struct Runner<'k, T: Elem> {
    kernel: &'k Kernel,
    m: &'k Module,
    /// Per variable: `[batch][size]` for states and inputs, `[size]` for parameters.
    storage: Vec<Vec<T>>,
    masks: Vec<Vec<u8>>,
    /// Per episode: per scratch slot, a buffer. Only reached through `scratch_tables`,
    /// which point into it: it is kept for ownership.
    _scratch: Vec<Vec<Vec<T>>>,
    scratch_tables: Vec<Vec<*mut u8>>,
    batch: usize,
    /// Run episodes on rayon threads (default true).
    pub parallel: bool,
}

impl<'k, T: Elem> Runner<'k, T> {
    /// A batch in its initial state (drawn from `seed` as the interpreter does).
    pub fn new(
        kernel: &'k Kernel,
        m: &'k Module,
        inst: &Instance,
        batch: usize,
        seed: u64,
    ) -> Result<Self, JitError> {
        let want = if std::mem::size_of::<T>() == 4 {
            Precision::F32
        } else {
            Precision::F64
        };
        if kernel.precision != want {
            return Err(JitError::Internal(format!(
                "a {:?} kernel run with {}-byte elements",
                kernel.precision,
                std::mem::size_of::<T>()
            )));
        }
        if kernel.out_of_place {
            return Err(JitError::Internal(
                "an out-of-place kernel runs as a prefix only (Episode::step_prefix_into)".into(),
            ));
        }
        let state =
            initial_state(m, inst, batch, seed).map_err(|e| JitError::Internal(e.to_string()))?;
        let storage = m
            .vars
            .iter()
            .map(|(v, var)| {
                let src = match var.kind {
                    VarKind::Param { .. } => &inst.params[v.index()],
                    _ => &state.values[v.index()],
                };
                src.iter().map(|&x| T::from_f64(x)).collect()
            })
            .collect();
        // Masks are element-sized bit patterns (all ones or zeros), so a kernel masks a
        // term with one `and`.
        let es = std::mem::size_of::<T>();
        let masks = inst
            .masks
            .iter()
            .map(|mk| {
                mk.iter()
                    .flat_map(|&b| std::iter::repeat_n(if b { 0xFF } else { 0 }, es))
                    .collect()
            })
            .collect();
        let (scratch, scratch_tables) = scratch_for(kernel, batch);
        Ok(Runner {
            kernel,
            m,
            storage,
            masks,
            _scratch: scratch,
            scratch_tables,
            batch,
            parallel: true,
        })
    }

    /// Number of episodes.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// One step of every episode.
    pub fn step(&mut self) {
        self.for_each_episode(|ep| ep.step());
    }

    /// The values of a variable (all episodes), as f64.
    pub fn get(&self, v: VarId) -> Vec<f64> {
        self.storage[v.index()].iter().map(|x| x.to_f64()).collect()
    }

    /// Sets a variable (all episodes) from f64 values.
    pub fn set(&mut self, v: VarId, values: &[f64]) {
        for (d, &s) in self.storage[v.index()].iter_mut().zip(values) {
            *d = T::from_f64(s);
        }
    }

    /// The raw storage of a variable, in the kernel's precision.
    pub fn storage_mut(&mut self, v: VarId) -> &mut [T] {
        &mut self.storage[v.index()]
    }

    /// The module being run.
    pub fn module(&self) -> &Module {
        self.m
    }

    /// Runs `f` once per episode, episodes spread over rayon threads (or in order when
    /// not [`Runner::parallel`]): each call owns one episode and steps it as far as it
    /// likes (episode-major order keeps an episode's synapse state in cache for all its
    /// steps). Episodes are independent, so results do not depend on the thread count.
    pub fn for_each_episode(&mut self, f: impl Fn(&mut Episode<'_, T>) + Sync) {
        let mut vars: Vec<*mut u8> = self
            .storage
            .iter_mut()
            .map(|v| v.as_mut_ptr() as *mut u8)
            .collect();
        let masks: Vec<*const u8> = self.masks.iter().map(|mk| mk.as_ptr()).collect();
        let ptrs = Ptrs {
            vars: vars.as_mut_ptr() as *const *mut u8,
            masks: masks.as_ptr(),
        };
        let tables: Vec<ScratchPtr> = self
            .scratch_tables
            .iter()
            .map(|t| ScratchPtr(t.as_ptr()))
            .collect();
        let sizes: Vec<(usize, bool)> = self
            .m
            .vars
            .iter()
            .map(|(_, v)| {
                (
                    self.m.space_size(v.space),
                    !matches!(v.kind, VarKind::Param { .. }),
                )
            })
            .collect();
        let (kernel, sizes) = (self.kernel, &sizes);
        let one = |b: usize| {
            let mut ep = Episode {
                kernel,
                ptrs,
                scratch: tables[b],
                sizes,
                b,
                table: Vec::new(),
                call_table: Vec::new(),
                marker: std::marker::PhantomData,
            };
            f(&mut ep);
        };
        if self.parallel && self.batch > 1 {
            (0..self.batch).into_par_iter().for_each(one);
        } else {
            (0..self.batch).for_each(one);
        }
        drop(vars);
    }
}

/// A second kernel that runs on a [`Runner`]'s storage: one whose module's variables are
/// a prefix of the runner's module's (the forward step, or the one-shot initial-value
/// step, run on the storage of an adjoint runner). Holds that kernel's scratch.
pub struct Prefix<'k, T> {
    kernel: &'k Kernel,
    _bufs: Vec<Vec<Vec<T>>>,
    tables: Vec<Vec<*mut u8>>,
    /// The kernel module's variables: how many, and its states (in order).
    n_vars: usize,
    states: Vec<VarId>,
}

// SAFETY: each episode's scratch table is used by that episode only, on one thread.
unsafe impl<T: Send> Send for Prefix<'_, T> {}
unsafe impl<T: Sync> Sync for Prefix<'_, T> {}

impl<'k, T: Elem> Runner<'k, T> {
    /// Prepares `kernel` (compiled from `kmod`) to run on this runner's storage.
    /// Errors unless `kmod`'s variables are the first variables of this runner's
    /// module (same names, spaces and kinds) and the precisions agree.
    pub fn prefix<'p>(&self, kernel: &'p Kernel, kmod: &Module) -> Result<Prefix<'p, T>, JitError> {
        if kernel.precision != self.kernel.precision {
            return Err(JitError::Internal(
                "prefix kernel of another precision".into(),
            ));
        }
        let ok = kmod.vars.len() <= self.m.vars.len()
            && kmod.vars.iter().all(|(v, var)| {
                let mine = &self.m.vars[v];
                mine.name == var.name
                    && mine.space == var.space
                    && std::mem::discriminant(&mine.kind) == std::mem::discriminant(&var.kind)
            })
            && kmod.projs.len() == self.m.projs.len();
        if !ok {
            return Err(JitError::Internal(format!(
                "`{}` is not a prefix of `{}`",
                kmod.name, self.m.name
            )));
        }
        let (bufs, tables) = scratch_for(kernel, self.batch);
        Ok(Prefix {
            kernel,
            _bufs: bufs,
            tables,
            n_vars: kmod.vars.len(),
            states: kmod
                .vars
                .iter()
                .filter(|(_, v)| matches!(v.kind, VarKind::State { .. }))
                .map(|(h, _)| h)
                .collect(),
        })
    }
}

/// One episode of a [`Runner`], handed to [`Runner::for_each_episode`].
pub struct Episode<'a, T> {
    kernel: &'a Kernel,
    ptrs: Ptrs,
    scratch: ScratchPtr,
    sizes: &'a [(usize, bool)],
    b: usize,
    /// A variable table of this episode's own pointers (for [`Episode::step_reading`]).
    table: Vec<*mut u8>,
    /// The table of the next call (reused: no allocation per step).
    call_table: Vec<*mut u8>,
    marker: std::marker::PhantomData<&'a mut T>,
}

impl<T: Elem> Episode<'_, T> {
    /// The episode's index in the batch.
    pub fn index(&self) -> usize {
        self.b
    }

    /// One step of this episode with a prefix kernel (see [`Runner::prefix`]).
    ///
    /// # Panics
    ///
    /// If the kernel is out of place (see [`Episode::step_prefix_into`]).
    pub fn step_prefix(&mut self, p: &Prefix<'_, T>) {
        assert!(
            !p.kernel.out_of_place,
            "an out-of-place kernel stepped in place"
        );
        // SAFETY: `Runner::prefix` checked that the kernel's variables are a prefix of
        // this storage's, with the same spaces; its scratch table for this episode is
        // this episode's own.
        unsafe {
            p.kernel.call(
                self.ptrs.vars,
                p.tables[self.b].as_ptr(),
                self.ptrs.masks,
                self.b,
            )
        };
    }

    /// One step of this episode with an out-of-place prefix kernel (see
    /// [`crate::compile_out_of_place`]): the kernel module's `k`-th state variable (in
    /// module order) is read from `from[k]` and its next value written into `to[k]`;
    /// inputs and parameters come from the storage, whose states are left alone.
    ///
    /// # Panics
    ///
    /// If the kernel is not out of place, or `from` or `to` does not hold one slice of
    /// the variable's size per state.
    pub fn step_prefix_into(&mut self, p: &Prefix<'_, T>, from: &[Vec<T>], to: &mut [Vec<T>]) {
        assert!(
            p.kernel.out_of_place,
            "an in-place kernel stepped out of place"
        );
        assert!(from.len() == p.states.len() && to.len() == p.states.len());
        self.fill_table();
        let mut table = std::mem::take(&mut self.call_table);
        table.clear();
        table.extend_from_slice(&self.table[..p.n_vars]);
        table.resize(2 * p.n_vars, std::ptr::null_mut());
        for (k, &v) in p.states.iter().enumerate() {
            let size = self.sizes[v.index()].0;
            assert!(
                from[k].len() == size && to[k].len() == size,
                "a state of the wrong size"
            );
            table[v.index()] = from[k].as_ptr() as *mut u8;
            table[p.n_vars + v.index()] = to[k].as_mut_ptr() as *mut u8;
        }
        // SAFETY: `Runner::prefix` checked that the kernel's variables are a prefix of
        // this storage's; every pointer of the first half of `table` points at one
        // episode's worth of its variable (this episode's storage, or `from`, which the
        // kernel only reads), the second half at `to` (distinct `Vec`s from `from`'s,
        // borrowed mutably) for every state; the scratch table is this episode's own.
        unsafe {
            p.kernel.call(
                table.as_ptr(),
                p.tables[self.b].as_ptr(),
                self.ptrs.masks,
                0,
            )
        };
        self.call_table = table;
    }

    /// Fills [`Episode::table`] with this episode's own pointers, once.
    fn fill_table(&mut self) {
        if !self.table.is_empty() {
            return;
        }
        let es = std::mem::size_of::<T>();
        // This episode's pointers, so that the kernel is called as episode 0.
        for (k, &(size, batched)) in self.sizes.iter().enumerate() {
            // SAFETY: the table has one pointer per variable; a batched variable's
            // storage holds `batch * size` elements, so the offset stays inside.
            let base = unsafe { *self.ptrs.vars.add(k) };
            let off = if batched { self.b * size * es } else { 0 };
            self.table.push(base.wrapping_add(off));
        }
    }

    /// One step of this episode.
    pub fn step(&mut self) {
        // SAFETY: as in `Runner::step`; this episode is only stepped by this call.
        unsafe {
            self.kernel
                .call(self.ptrs.vars, self.scratch.0, self.ptrs.masks, self.b)
        };
    }

    /// One step of this episode in which each variable of `saved` is read from the
    /// given slice (a state kept elsewhere, such as a checkpoint) instead of the
    /// episode's storage: no copy into the storage first.
    ///
    /// # Panics
    ///
    /// If a slice does not have the variable's size, a variable is a parameter, or the
    /// kernel writes it (an adjoint step leaves the forward state alone).
    pub fn step_reading(&mut self, saved: &[(VarId, &[T])]) {
        self.fill_table();
        let mut table = std::mem::take(&mut self.call_table);
        table.clear();
        table.extend_from_slice(&self.table);
        for &(v, x) in saved {
            let (size, batched) = self.sizes[v.index()];
            assert!(
                batched && x.len() == size,
                "a saved state of the wrong size"
            );
            assert!(
                !self.kernel.writes.contains(&v),
                "the kernel writes a variable it was asked to read from a saved state"
            );
            table[v.index()] = x.as_ptr() as *mut u8;
        }
        // SAFETY: every pointer of `table` points at a buffer of its variable's size for
        // one episode (this episode's storage, or `saved`, which the kernel only reads by
        // `kernel.writes`); the scratch table is this episode's own.
        unsafe {
            self.kernel
                .call(table.as_ptr(), self.scratch.0, self.ptrs.masks, 0)
        };
        self.call_table = table;
    }

    /// This episode's values of a state or input variable.
    ///
    /// # Panics
    ///
    /// If `v` is a parameter: parameters are shared by all episodes.
    pub fn var(&mut self, v: VarId) -> &mut [T] {
        let (size, batched) = self.sizes[v.index()];
        assert!(
            batched,
            "parameters are shared by all episodes: read them from the Runner"
        );
        // SAFETY: the table holds a pointer to each variable's full storage, and the
        // slice of episode `b` of a state or input is touched by this episode only.
        unsafe {
            let base = *self.ptrs.vars.add(v.index()) as *mut T;
            std::slice::from_raw_parts_mut(base.add(self.b * size), size)
        }
    }
}

/// Runs like [`lang::interp::run`], on a compiled kernel: `drive(t, state)` sets the
/// input variables of `state` before each step (only inputs are read back from it; the
/// rest of `state` is not kept up to date).
pub fn run(
    kernel: &Kernel,
    m: &Module,
    inst: &Instance,
    cfg: &RunConfig,
    drive: &mut dyn FnMut(usize, &mut State),
) -> Result<Trace, JitError> {
    match kernel.precision {
        Precision::F32 => run_with::<f32>(kernel, m, inst, cfg, drive),
        Precision::F64 => run_with::<f64>(kernel, m, inst, cfg, drive),
    }
}

fn run_with<T: Elem>(
    kernel: &Kernel,
    m: &Module,
    inst: &Instance,
    cfg: &RunConfig,
    drive: &mut dyn FnMut(usize, &mut State),
) -> Result<Trace, JitError> {
    let mut runner: Runner<'_, T> = Runner::new(kernel, m, inst, cfg.batch, cfg.seed)?;
    let mut state = initial_state(m, inst, cfg.batch, cfg.seed)
        .map_err(|e| JitError::Internal(e.to_string()))?;
    let inputs: Vec<VarId> = m
        .vars
        .iter()
        .filter(|(_, v)| v.kind == VarKind::Input)
        .map(|(h, _)| h)
        .collect();
    let spiking = spiking_outputs(m);
    let mut trace = Trace {
        spikes: vec![Vec::new(); m.pops.len()],
        records: vec![Vec::new(); cfg.record.len()],
    };
    for t in 0..cfg.steps {
        drive(t, &mut state);
        for &v in &inputs {
            runner.set(v, &state.values[v.index()]);
        }
        runner.step();
        for (p, out) in spiking.iter().enumerate() {
            let Some(out) = *out else { continue };
            let n = m.space_size(m.vars[out].space);
            for (k, z) in runner.storage[out.index()].iter().enumerate() {
                if z.to_f64() != 0.0 {
                    trace.spikes[p].push((t as u32, (k / n) as u32, (k % n) as u32));
                }
            }
        }
        for (r, &v) in cfg.record.iter().enumerate() {
            trace.records[r].push(runner.get(v));
        }
    }
    Ok(trace)
}
