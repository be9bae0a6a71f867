//! Integration tests of the language: corpus snapshots, diagnostics, closed forms.

mod closed_forms;
mod common;
mod corpus;
mod fill;
mod fuzz;
mod gradients;
mod semantics;
mod values;
mod w1;
