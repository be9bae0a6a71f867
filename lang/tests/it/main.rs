//! Integration tests of the language: corpus snapshots, diagnostics, closed forms.

mod common;
mod corpus;
