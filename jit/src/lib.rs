//! The Cranelift back end: compiles `lang::ir` step programs into native kernels.
//!
//! Not built yet (issue 3). The crate exists so that the workspace layout is the one in
//! `ARCHITECTURE.md` and so that nothing in `lang` ever grows a Cranelift dependency.
