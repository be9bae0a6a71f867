//! The JIT against the reference interpreter, snapshots of the Cranelift IR, and the
//! kernel's lifetime.

mod clif;
mod common;
mod equiv;
mod grad;
mod lifetime;
mod out_of_place;
mod random;
mod schedule;
