//! Times the forward of a network file on the JIT (a development probe).
#![allow(clippy::print_stdout)] // a development tool: printing is its output
use std::time::Instant;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = &args[1];
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(128);
    let prec = if args.get(3).map(String::as_str) == Some("f64") {
        jit::Precision::F64
    } else {
        jit::Precision::F32
    };
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace("W1LIF[128]", &format!("W1LIF[{n}]"));
    let mut sources = lang::Sources::new();
    let root = sources.add(path.clone(), text);
    let t0 = Instant::now();
    let files = lang::load(&mut sources, root, &mut |_, _| Err("no imports".into())).unwrap();
    let prog = lang::check::check(&sources, &files).unwrap();
    let m = lang::lower::lower(&prog, None).unwrap();
    let t1 = Instant::now();
    let kernel = jit::compile(&m, jit::Options { precision: prec }).unwrap();
    let t2 = Instant::now();
    eprintln!(
        "lower {:.2} ms, jit {:.2} ms",
        (t1 - t0).as_secs_f64() * 1e3,
        (t2 - t1).as_secs_f64() * 1e3
    );
    if std::env::var("CLIF").is_ok() {
        println!("{}", kernel.clif);
    }
    let inst = lang::init::instantiate(&m, 0).unwrap();
    let x = m.var_by_name("x.out").unwrap();
    for rep in 0..3 {
        let t = Instant::now();
        let mut spikes = 0.0;
        macro_rules! go {
            ($T:ty) => {{
                let mut r: jit::Runner<'_, $T> =
                    jit::Runner::new(&kernel, &m, &inst, 16, 0).unwrap();
                let z = m.var_by_name("rec.z").unwrap();
                let mut rng = 12345u64;
                for _ in 0..1000 {
                    let xs = r.storage_mut(x);
                    for v in xs.iter_mut() {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        *v = if rng.is_multiple_of(50) { 1.0 } else { 0.0 };
                    }
                    r.step();
                    spikes += r.get(z).iter().sum::<f64>();
                }
            }};
        }
        if std::env::var("EPMAJOR").is_ok() {
            let mut r: jit::Runner<'_, f32> = jit::Runner::new(&kernel, &m, &inst, 16, 0).unwrap();
            let z = m.var_by_name("rec.z").unwrap();
            let total = std::sync::atomic::AtomicU64::new(0);
            r.for_each_episode(|ep| {
                let mut rng = 12345u64 + ep.index() as u64;
                let mut s = 0u64;
                for _ in 0..1000 {
                    for v in ep.var(x).iter_mut() {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        *v = if rng.is_multiple_of(50) { 1.0 } else { 0.0 };
                    }
                    ep.step();
                    s += ep.var(z).iter().filter(|&&v| v != 0.0).count() as u64;
                }
                total.fetch_add(s, std::sync::atomic::Ordering::Relaxed);
            });
            spikes = total.into_inner() as f64;
        } else {
            match prec {
                jit::Precision::F32 => go!(f32),
                jit::Precision::F64 => go!(f64),
            }
        }
        eprintln!(
            "rep {rep}: {:.3} s, spike rate {:.3}",
            t.elapsed().as_secs_f64(),
            spikes / (16.0 * 1000.0 * n as f64)
        );
    }
}
