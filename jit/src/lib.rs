//! The Cranelift back end: compiles a network's IR step into one native function, and
//! runs it over a batch of episodes.
//!
//! Central design decision: one compiled function computes one time step of one
//! episode, with the step cut into fused loop nests by [`schedule`] (one nest per pass
//! over a space). Episodes are independent, so a batch is split across rayon threads
//! that never synchronise within a step; the same function pointer is called from
//! every thread (it is `Send + Sync`: pure code over caller-provided memory).
//!
//! All `unsafe` of ruleopt lives in this crate: calling the compiled code ([`Kernel`]'s
//! `call`), and freeing it when the kernel drops.
#![warn(missing_docs)]

pub mod grad;
pub mod math;
pub mod run;
pub mod schedule;
mod translate;

use cranelift_codegen::ir::UserFuncName;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module as _};
use lang::ir::{Expr, Module};
use math::Libcall;
use std::collections::HashMap;
use std::time::Instant;

pub use run::{run, Runner};
pub use translate::Layout;

/// Floating-point precision of the compiled kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Precision {
    /// 32-bit floats (the default: half the memory traffic).
    #[default]
    F32,
    /// 64-bit floats (bit-compatible with the reference interpreter).
    F64,
}

/// Why a module could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum JitError {
    /// The module still has a hole.
    #[error("the hole `?{0}` has no expression yet: a rule with holes cannot be compiled")]
    Hole(String),
    /// The module is not valid IR.
    #[error(transparent)]
    Invalid(#[from] lang::validate::ValidationError),
    /// Cranelift refused the function (a bug in the translator).
    #[error("Cranelift: {0}")]
    Codegen(String),
    /// The host CPU is not supported by Cranelift.
    #[error("this CPU is not supported by Cranelift: {0}")]
    Host(String),
    /// Backpropagation through time does not fit in the memory budget.
    #[error("backpropagation through time needs at least {need} bytes of checkpoints, more than the budget of {budget}")]
    Budget {
        /// The smallest footprint.
        need: u64,
        /// The budget given.
        budget: u64,
    },
    /// An inconsistency in the translator (a bug).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Options of [`compile`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Element type.
    pub precision: Precision,
}

/// `step(vars, scratch, masks, episode)`.
type StepFn = unsafe extern "C" fn(*const *mut u8, *const *mut u8, *const *const u8, i64);

/// A compiled step function and what it needs at run time. Dropping it frees the code.
pub struct Kernel {
    module: Option<JITModule>,
    step: StepFn,
    /// Element type.
    pub precision: Precision,
    /// Buffers and masks the function expects.
    pub layout: Layout,
    /// The Cranelift IR before optimisation (for `--emit clif` and snapshots).
    pub clif: String,
    /// Seconds spent compiling (translation, Cranelift, linking).
    pub compile_seconds: f64,
    /// The variables a step writes (all others it only reads).
    pub writes: Vec<lang::ir::VarId>,
    /// Compiled by [`compile_out_of_place`]: the step writes every state's next value
    /// into a second table of pointers (see [`Kernel::call`]).
    pub out_of_place: bool,
}

// SAFETY: the compiled code is immutable after finalisation and touches only memory
// passed by the caller; the JIT module is only used again in `Drop`.
unsafe impl Send for Kernel {}
unsafe impl Sync for Kernel {}

impl Drop for Kernel {
    fn drop(&mut self) {
        if let Some(module) = self.module.take() {
            // SAFETY: `step` is never called after the kernel is dropped: callers borrow
            // the kernel for every call.
            unsafe { module.free_memory() };
        }
    }
}

impl Kernel {
    /// Calls the step function for one episode.
    ///
    /// # Safety
    ///
    /// `vars` must hold one pointer per IR variable to storage of the kernel's element
    /// type and the variable's full size (`[batch][size]` for states and inputs, with
    /// `episode < batch`) and, if [`Kernel::out_of_place`], after them one more per
    /// variable: for each state, storage of the same size, not overlapping the first
    /// table's, where the step writes the state's next value (the others are unused), `scratch` one pointer per [`Layout::scratch`] slot to that
    /// many elements, `masks` one pointer per projection (`n_post * n_pre` elements of all-ones or
    /// all-zeros bits where [`Layout::masked`], anything otherwise). No other thread may write the storage
    /// of this episode, the scratch buffers or any parameter during the call.
    pub unsafe fn call(
        &self,
        vars: *const *mut u8,
        scratch: *const *mut u8,
        masks: *const *const u8,
        episode: usize,
    ) {
        unsafe { (self.step)(vars, scratch, masks, episode as i64) }
    }
}

/// Compiles the step of a (valid, hole-free) module.
pub fn compile(m: &Module, opts: Options) -> Result<Kernel, JitError> {
    compile_with(m, opts, false)
}

/// Compiles the step of a module so that it reads the states from one storage and
/// writes their next values into another (every element of every state: see
/// [`schedule::schedule_out_of_place`]), so that a caller keeping every step's states
/// (backpropagation through time) needs no copy. Same values as [`compile`]'s kernel.
pub fn compile_out_of_place(m: &Module, opts: Options) -> Result<Kernel, JitError> {
    compile_with(m, opts, true)
}

fn compile_with(m: &Module, opts: Options, out_of_place: bool) -> Result<Kernel, JitError> {
    let start = Instant::now();
    lang::validate::validate(m)?;
    let live = m.live_step();
    if let Some((_, Expr::Hole(name, _))) = m
        .exprs()
        .iter()
        .find(|(e, x)| live[e.index()] && matches!(x, Expr::Hole(..)))
    {
        return Err(JitError::Hole(name.clone()));
    }
    let mut flags = settings::builder();
    let set = |f: &mut settings::Builder, k: &str, v: &str| {
        f.set(k, v).map_err(|e| JitError::Codegen(e.to_string()))
    };
    set(&mut flags, "use_colocated_libcalls", "false")?;
    set(&mut flags, "is_pic", "false")?;
    set(&mut flags, "opt_level", "speed")?;
    let isa = cranelift_native::builder()
        .map_err(|e| JitError::Host(e.to_string()))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| JitError::Codegen(e.to_string()))?;
    let mut builder = JITBuilder::with_isa(isa, default_libcall_names());
    for f in Libcall::ALL {
        builder.symbol(f.name(), f.address());
    }
    let mut module = JITModule::new(builder);
    let sched = if out_of_place {
        schedule::schedule_out_of_place(m)
    } else {
        schedule::schedule(m)
    };
    let layout = Layout::new(m, &sched);
    let mut writes: Vec<lang::ir::VarId> = sched
        .stages
        .iter()
        .flat_map(|st| st.stores.iter().map(|&(v, _, _)| v))
        .chain(sched.late.iter().map(|&(v, _)| v))
        .chain(sched.via_next.iter().copied())
        .collect();
    writes.sort();
    writes.dedup();
    let mut ctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    let sig = module.make_signature();
    let mut libs = HashMap::new();
    let mut lib_ids = Vec::new();
    for f in Libcall::ALL {
        let id = module
            .declare_function(
                f.name(),
                Linkage::Import,
                &f.signature(module.make_signature()),
            )
            .map_err(|e| JitError::Codegen(e.to_string()))?;
        lib_ids.push((f, id));
    }
    let mut full_sig = sig.clone();
    for _ in 0..4 {
        full_sig.params.push(cranelift_codegen::ir::AbiParam::new(
            cranelift_codegen::ir::types::I64,
        ));
    }
    let fid = module
        .declare_function("step", Linkage::Local, &full_sig)
        .map_err(|e| JitError::Codegen(e.to_string()))?;
    ctx.func.signature = sig;
    ctx.func.name = UserFuncName::user(0, fid.as_u32());
    let clif;
    {
        let mut fb = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        for (f, id) in &lib_ids {
            libs.insert(*f, module.declare_func_in_func(*id, fb.func));
        }
        let tx = translate::Tx::new(m, &sched, &layout, fb, opts.precision, libs, out_of_place);
        fb = tx.emit()?;
        fb.finalize(module.target_config());
        clif = ctx.func.display().to_string();
    }
    // RULEOPT_DISASM=FILE writes the machine code (a development aid).
    let disasm = std::env::var_os("RULEOPT_DISASM");
    ctx.set_disasm(disasm.is_some());
    module
        .define_function(fid, &mut ctx)
        .map_err(|e| JitError::Codegen(format!("{e:?}")))?;
    if let (Some(path), Some(code)) = (disasm, ctx.compiled_code().and_then(|c| c.vcode.clone())) {
        std::fs::write(path, code).map_err(|e| JitError::Internal(e.to_string()))?;
    }
    module.clear_context(&mut ctx);
    module
        .finalize_definitions()
        .map_err(|e| JitError::Codegen(e.to_string()))?;
    let ptr = module.get_finalized_function(fid);
    // SAFETY: `step` was declared with exactly this signature (four i64-sized params,
    // no returns) in the host calling convention.
    let step: StepFn = unsafe { std::mem::transmute::<*const u8, StepFn>(ptr) };
    Ok(Kernel {
        module: Some(module),
        step,
        precision: opts.precision,
        layout,
        clif,
        compile_seconds: start.elapsed().as_secs_f64(),
        writes,
        out_of_place,
    })
}
