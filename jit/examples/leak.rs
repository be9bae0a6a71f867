fn rss() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}
fn main() {
    let text = "neuron N { input I; state v = 0; dv/dt = (-v + I) / (10 ms); spike z when v > 1; reset v = 0; }\nsynapse S { learn w[synapse] = 0.5; weight = w; }\nnetwork T { input x[4]; population n: N[4]; projection p: x -> n with S; }\n";
    let mut sources = lang::Sources::new();
    let root = sources.add("t", text);
    let files = lang::load(&mut sources, root, &mut |_, _| Err("no".into())).unwrap();
    let prog = lang::check::check(&sources, &files).unwrap();
    let m = lang::lower::lower(&prog, None).unwrap();
    for round in 0..5 {
        for _ in 0..2000 {
            drop(jit::compile(&m, jit::Options::default()).unwrap());
        }
        eprintln!("round {round}: rss {} kB", rss());
    }
}
