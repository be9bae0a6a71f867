//! Kernels are shared across threads, and freed when dropped.

use crate::common::*;
use jit::run::Runner;
use jit::{compile, Kernel, Options, Precision};
use lang::init::instantiate;

#[test]
fn kernels_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Kernel>();
}

/// The same kernel stepping episodes on several threads gives what one thread gives.
#[test]
fn threads_do_not_change_results() {
    let m = lower_file("rules/networks/three_factor_network.rule");
    let kernel = compile(
        &m,
        Options {
            precision: Precision::F64,
        },
    )
    .unwrap();
    let inst = instantiate(&m, 1).unwrap();
    let x = m.var_by_name("x.out").unwrap();
    let run = |parallel: bool| {
        let mut r: Runner<'_, f64> = Runner::new(&kernel, &m, &inst, 8, 2).unwrap();
        r.parallel = parallel;
        for t in 0..200 {
            let vals: Vec<f64> = (0..8 * 40)
                .map(|k| f64::from(u8::from((k * 7 + t * 13) % 23 == 0)))
                .collect();
            r.set(x, &vals);
            r.step();
        }
        m.vars.iter().map(|(v, _)| r.get(v)).collect::<Vec<_>>()
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap();
    let par = pool.install(|| run(true));
    assert_eq!(par, run(false));
    // And from plain threads at once.
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..3).map(|_| s.spawn(|| run(false))).collect();
        for h in hs {
            assert_eq!(h.join().unwrap(), par);
        }
    });
}
