//! How many passes over synapses a step makes: the schedule's fusion decisions, pinned
//! for W1 (forward and adjoint).

use crate::common::*;
use jit::schedule::{schedule, Schedule};
use lang::ir::{Module, Space};

/// (dense, sparse) passes over the synapses of projection `proj`.
fn passes(m: &Module, s: &Schedule, proj: &str) -> (usize, usize) {
    let q = m
        .projs
        .iter()
        .find(|(_, p)| p.name == proj)
        .map(|(q, _)| q)
        .unwrap_or_else(|| panic!("no projection {proj}"));
    let over: Vec<_> = s
        .stages
        .iter()
        .filter(|st| st.space == Space::Syn(q))
        .collect();
    let sparse = over.iter().filter(|st| st.gate.is_some()).count();
    (over.len() - sparse, sparse)
}

#[test]
fn w1_forward_makes_one_dense_and_one_sparse_pass() {
    let m = lower_file("rules/networks/w1.rule");
    assert_eq!(passes(&m, &schedule(&m), "wrec"), (1, 1));
}

/// The adjoint step reads the forward step's results it needs (`E(t+1)`, `v(t+1)`,
/// `z(t+1)`) rather than recomputing them (so no forward current sweep), computes every
/// elementwise adjoint and the sums it feeds in one dense pass, and needs a second dense
/// pass only for what depends on those sums: the current's adjoint. The weight gradients
/// and the rest of P's adjoint add products with the presynaptic spike, in a sparse
/// sweep.
#[test]
fn w1_adjoint_makes_two_dense_passes_and_one_sparse_sweep() {
    let m = lower_file("rules/networks/w1.rule");
    let a = lang::diff::diff(&m).expect("diff").module;
    let s = schedule(&a);
    assert_eq!(passes(&a, &s, "wrec"), (2, 1));
    // No synapse-sized scratch buffer: the one value both dense passes need (P's
    // adjoint through the clip) is kept in P's adjoint itself.
    let syn_buffers = s
        .materialized
        .iter()
        .filter(|&&e| matches!(a.space(e), Space::Syn(_)))
        .filter(|&&e| !s.alias.iter().any(|&(x, _)| x == e))
        .count();
    assert_eq!(syn_buffers, 0);
    assert_eq!(s.alias.len(), 1);
}
