//! Integration tests of the language: corpus snapshots, diagnostics, closed forms.

mod common;
mod closed_forms;
mod corpus;
mod fuzz;
mod semantics;
