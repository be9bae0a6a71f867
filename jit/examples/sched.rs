//! Prints the schedule of a network's step (or, with `--adjoint`, of its adjoint step;
//! with `--out-of-place`, the schedule of `jit::compile_out_of_place`).
#![allow(clippy::print_stdout)] // a development tool: printing is its output
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = &args[1];
    let text = std::fs::read_to_string(path).unwrap();
    let mut sources = lang::Sources::new();
    let root = sources.add(path.clone(), text);
    let mut resolve = |imp: &str, p: &str| -> Result<(String, String), String> {
        let dir = std::path::Path::new(imp).parent().unwrap();
        let f = dir.join(p);
        Ok((
            f.to_string_lossy().into_owned(),
            std::fs::read_to_string(&f).map_err(|e| e.to_string())?,
        ))
    };
    let files = lang::load(&mut sources, root, &mut resolve).unwrap();
    let prog = lang::check::check(&sources, &files).unwrap();
    let mut m = lang::lower::lower(&prog, None).unwrap();
    if args.iter().any(|a| a == "--adjoint") {
        m = lang::diff::diff(&m).unwrap().module;
    }
    let s = if args.iter().any(|a| a == "--out-of-place") {
        jit::schedule::schedule_out_of_place(&m)
    } else {
        jit::schedule::schedule(&m)
    };
    for (k, st) in s.stages.iter().enumerate() {
        println!("stage {k} {:?} gate {:?}", st.space, st.gate);
        for &e in &st.nodes {
            let f = lang::print::expr_to_string(&m, e);
            println!(
                "   #{} {:?} {}{}",
                e.index(),
                m.expr(e),
                if s.materialized.contains(&e) {
                    "MAT "
                } else {
                    ""
                },
                if f.len() <= 60 { f } else { String::new() }
            );
        }
        for (v, e, n) in &st.stores {
            println!("   store {} <- #{} next={n}", m.vars[*v].name, e.index());
        }
    }
    println!(
        "alias {:?}",
        s.alias
            .iter()
            .map(|(e, v)| (e.index(), m.vars[*v].name.clone()))
            .collect::<Vec<_>>()
    );
    println!(
        "late {:?}",
        s.late
            .iter()
            .map(|(v, e)| (m.vars[*v].name.clone(), e.index()))
            .collect::<Vec<_>>()
    );
}
