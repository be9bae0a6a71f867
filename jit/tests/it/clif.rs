//! insta snapshots of the Cranelift IR (before optimisation, Cranelift 0.135.8) of the
//! step kernel of every network in `rules/`, in f32 and f64. CI never writes them.

use crate::common::*;
use jit::{compile, Options, Precision};

#[test]
fn kernel_clif_snapshots() {
    for f in network_files() {
        let m = lower_file(&f);
        let key = f
            .trim_start_matches("rules/networks/")
            .trim_end_matches(".rule");
        for (p, tag) in [(Precision::F32, "f32"), (Precision::F64, "f64")] {
            let k = compile(&m, Options { precision: p }).unwrap_or_else(|e| panic!("{f}: {e}"));
            insta::assert_snapshot!(format!("clif__{key}__{tag}"), k.clif);
        }
    }
}

#[test]
fn the_same_module_compiles_to_the_same_code() {
    let m = lower_file("rules/networks/w1.rule");
    let a = compile(&m, Options::default()).unwrap().clif.clone();
    let b = compile(&m, Options::default()).unwrap().clif.clone();
    assert_eq!(a, b);
}

/// In f32, W1's eligibility and plastic updates (`l_e E + ...`, `P + eta m E`) and the
/// adjoint's row sums fuse their products (fused multiply-adds); f64 keeps the
/// interpreter's separate roundings.
#[test]
fn f32_products_fuse_into_sums_and_f64_ones_do_not() {
    let m = lower_file("rules/networks/w1.rule");
    let a = lang::diff::diff(&m).unwrap().module;
    for module in [&m, &a] {
        let fmas = |p| {
            compile(module, Options { precision: p })
                .unwrap()
                .clif
                .matches(" = fma ")
                .count()
        };
        assert!(fmas(Precision::F32) >= 4, "{}", module.name);
        assert_eq!(fmas(Precision::F64), 0, "{}", module.name);
    }
}

/// In f32, W1's adjoint skips the terms of its next spikes `z(t + 1)` (a next-state
/// input) in the rows where they are zero: its first dense pass has a second copy of
/// the loop, chosen per row by a comparison with zero. (The values are those of the
/// loop with the terms: `f32_adjoint_kernels_track_the_interpreter` feeds it forward
/// spikes as next states, zero in most rows.)
#[test]
fn the_f32_adjoint_skips_rows_without_next_spikes() {
    let m = lower_file("rules/networks/w1.rule");
    let a = lang::diff::diff(&m).unwrap().module;
    let tests = |module: &lang::ir::Module| {
        compile(module, Options::default())
            .unwrap()
            .clif
            .matches(" = fcmp eq ")
            .count()
    };
    // The forward's E/P pass (post spike z(t)) and the adjoint's first pass.
    assert_eq!(tests(&m), 1);
    assert_eq!(tests(&a), 1);
}
