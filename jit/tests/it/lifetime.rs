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

/// Episode-major stepping (each episode's whole run on one thread) equals step-major.
#[test]
fn episode_major_equals_step_major() {
    let m = lower_file("rules/networks/w1.rule");
    let kernel = compile(
        &m,
        Options {
            precision: Precision::F32,
        },
    )
    .unwrap();
    let inst = instantiate(&m, 1).unwrap();
    let (x, y) = (
        m.var_by_name("x.out").unwrap(),
        m.var_by_name("out.y").unwrap(),
    );
    let input = |b: usize, t: usize, k: usize| {
        f32::from(u8::from((k * 7 + t * 13 + b * 5).is_multiple_of(41)))
    };
    let mut a: Runner<'_, f32> = Runner::new(&kernel, &m, &inst, 4, 2).unwrap();
    for t in 0..300 {
        let xs = a.storage_mut(x);
        for (i, v) in xs.iter_mut().enumerate() {
            *v = input(i / 40, t, i % 40);
        }
        a.step();
    }
    let mut b: Runner<'_, f32> = Runner::new(&kernel, &m, &inst, 4, 2).unwrap();
    b.for_each_episode(|ep| {
        let e = ep.index();
        for t in 0..300 {
            for (k, v) in ep.var(x).iter_mut().enumerate() {
                *v = input(e, t, k);
            }
            ep.step();
        }
    });
    assert_eq!(a.get(y), b.get(y));
    for (v, _) in m.vars.iter() {
        assert_eq!(a.get(v), b.get(v));
    }
}
