//! ruleopt never panics on any input: random and mutated `.rule` text is parsed,
//! checked, lowered, validated and (when it is valid) run for a few steps; each stage
//! returns `Ok` or `Err`, never a panic.

use crate::common::*;
use rand::{Rng, SeedableRng};

const TOKENS: &[&str] = &[
    "neuron",
    "synapse",
    "network",
    "param",
    "learn",
    "state",
    "input",
    "modulator",
    "output",
    "spike",
    "when",
    "surrogate",
    "reset",
    "refractory",
    "weight",
    "let",
    "using",
    "on",
    "population",
    "projection",
    "with",
    "connect",
    "signal",
    "readout",
    "clip",
    "in",
    "import",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ";",
    ",",
    ".",
    "=",
    "+=",
    "-=",
    "*=",
    "~",
    "->",
    "+",
    "-",
    "*",
    "/",
    "^",
    ">",
    ">=",
    "<",
    "?f",
    "dt",
    "pre",
    "post",
    "out",
    "v",
    "x",
    "w",
    "z",
    "I",
    "tau",
    "0",
    "1",
    "1e308",
    "1e999",
    "-1",
    "0.5",
    "20 ms",
    "1 s",
    "10 Hz",
    "exp",
    "tanh",
    "sum",
    "mean",
    "clip",
    "normal",
    "uniform",
    "exact",
    "euler",
    "exp_euler",
    "dense_no_self",
    "random",
    "pre.out",
    "post.v",
    "rec.out",
    "[synapse]",
    "[pre]",
    "[post]",
    "[neuron]",
    "\n",
    " ",
    "//",
    "/*",
    "\"",
];

fn corpus_texts() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![repo().join("rules")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rule") {
                let name = p
                    .strip_prefix(repo())
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((name, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn mutate(text: &str, rng: &mut impl Rng) -> String {
    let mut s: Vec<char> = text.chars().collect();
    for _ in 0..rng.gen_range(1..4) {
        let n = s.len().max(1);
        let at = rng.gen_range(0..n).min(s.len());
        match rng.gen_range(0..5) {
            0 => {
                let end = (at + rng.gen_range(1..12)).min(s.len());
                s.drain(at..end);
            }
            1 | 2 => {
                let tok = TOKENS[rng.gen_range(0..TOKENS.len())];
                let ins: Vec<char> = format!(" {tok} ").chars().collect();
                s.splice(at..at, ins);
            }
            3 => {
                // Duplicate a line.
                let t: String = s.iter().collect();
                let lines: Vec<&str> = t.lines().collect();
                if !lines.is_empty() {
                    let k = rng.gen_range(0..lines.len());
                    let mut l2: Vec<String> = lines.iter().map(|x| x.to_string()).collect();
                    l2.insert(k, lines[k].to_string());
                    s = l2.join("\n").chars().collect();
                }
            }
            _ => {
                if !s.is_empty() {
                    let k = at.min(s.len() - 1);
                    s[k] = char::from(rng.gen_range(32u8..127));
                }
            }
        }
    }
    s.into_iter().collect()
}

/// Runs every stage; returns whether the text was a valid, runnable network.
fn exercise(name: &str, text: &str) -> bool {
    let (_, prog) = load_text(name, text);
    let Ok(prog) = prog else { return false };
    let Ok(m) = lang::lower::lower(&prog, None) else {
        return false;
    };
    lang::validate::validate(&m).expect("lowering produced invalid IR");
    let Ok(inst) = lang::init::instantiate(&m, 0) else {
        return false;
    };
    let cfg = lang::interp::RunConfig {
        steps: 3,
        batch: 2,
        seed: 0,
        record: vec![],
    };
    lang::interp::run(&m, &inst, &cfg, &mut |_, _| {}).is_ok()
}

fn no_panic(name: &str, text: &str) {
    let r = std::panic::catch_unwind(|| exercise(name, text));
    if r.is_err() {
        panic!("panicked on input {name}:\n----\n{text}\n----");
    }
}

#[test]
fn mutated_corpus_never_panics() {
    let texts = corpus_texts();
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let iterations = if cfg!(debug_assertions) { 3000 } else { 20000 };
    let mut valid = 0;
    for i in 0..iterations {
        let (name, text) = &texts[i % texts.len()];
        let t = mutate(text, &mut rng);
        let r = std::panic::catch_unwind(|| exercise(name, &t));
        match r {
            Ok(true) => valid += 1,
            Ok(false) => {}
            Err(_) => panic!("panicked on a mutation of {name}:\n----\n{t}\n----"),
        }
    }
    // The mutations must also reach the later stages, or this test proves little.
    assert!(
        valid > iterations / 50,
        "only {valid} of {iterations} mutants were valid networks"
    );
}

#[test]
fn random_token_soup_never_panics() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..2000 {
        let n = rng.gen_range(0..60);
        let t: Vec<&str> = (0..n)
            .map(|_| TOKENS[rng.gen_range(0..TOKENS.len())])
            .collect();
        no_panic("soup.rule", &t.join(" "));
    }
    for text in [
        "",
        "\u{0}",
        "neuron",
        "neuron N {",
        "network N { population p: N[99999999999999999999]; }",
        "/*",
    ] {
        no_panic("edge.rule", text);
    }
}
