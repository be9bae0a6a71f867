//! 10,000 compile/drop cycles do not grow resident memory. A test binary of its own:
//! resident memory is per process, and the other tests would allocate alongside.

use jit::{compile, Options};

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// 10,000 compile/drop cycles: resident memory does not grow with the count.
#[test]
fn compiled_code_is_freed() {
    let text = "neuron N { input I; state v = 0; dv/dt = (-v + I) / (10 ms); spike z when v > 1; reset v = 0; }\n\
                synapse S { learn w[synapse] = 0.5; weight = w; }\n\
                network T { input x[4]; population n: N[4]; projection p: x -> n with S; }\n";
    let mut sources = lang::Sources::new();
    let root = sources.add("tiny.rule", text);
    let files = lang::load(&mut sources, root, &mut |_, _| Err("no imports".into())).unwrap();
    let prog = lang::check::check(&sources, &files).unwrap();
    let m = lang::lower::lower(&prog, None).unwrap();
    let cycle = || drop(compile(&m, Options::default()).unwrap());
    for _ in 0..500 {
        cycle();
    }
    let before = rss_bytes();
    for _ in 0..10_000 {
        cycle();
    }
    let after = rss_bytes();
    // A leak of the code pages alone (at least 4 KiB each) would add 40 MB.
    assert!(
        after < before + 8 * 1024 * 1024,
        "resident memory grew from {before} to {after} bytes"
    );
}
