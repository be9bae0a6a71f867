//! `from "file.json"` initial values: loaded, size- and unit-checked, instantiated.

use crate::common::render;
use lang::init::{initial_state, instantiate};
use lang::Sources;
use std::collections::HashMap;

const NET: &str = r#"
neuron N {
  learn tau = 20 ms;
  input I;
  state v from "v0.json";
  dv/dt = (-v + I) / tau;
  spike z when v > 1;
  reset v = 0;
}
synapse S {
  learn w[synapse] ~ normal(0, 1);
  weight = w;
}
network Net {
  input x[3];
  population p: N[2](tau from "learned.json");
  projection q: x -> p with S(w from "learned.json");
  learn b[p] from "learned.json";
}
"#;

const LEARNED: &str = r#"{"params": {
  "q.w": {"shape": [2, 3], "data": [1, 2, 3, 4, 5, 6]},
  "p.tau": {"shape": [], "data": [12.5], "unit": 1},
  "b": {"shape": [2], "data": [-1, 1]}
}}"#;
const V0: &str = r#"{"params": {"p.v": {"data": [0.25, 0.5]}}}"#;

/// Loads and checks `net` with in-memory files; the program or rendered diagnostics.
fn load(net: &str, files: &[(&str, &str)]) -> Result<lang::ir::Module, String> {
    let files: HashMap<String, String> =
        files.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let mut sources = Sources::new();
    let root = sources.add("net.rule", net);
    let mut resolve = |_: &str, path: &str| -> Result<(String, String), String> {
        files
            .get(path)
            .map(|t| (path.to_string(), t.clone()))
            .ok_or_else(|| "no such file".to_string())
    };
    let render = |s: &Sources, d: &[lang::Diagnostic]| render(s, d);
    let parsed = lang::load(&mut sources, root, &mut resolve).map_err(|d| render(&sources, &d))?;
    let prog = lang::check::check(&sources, &parsed).map_err(|d| render(&sources, &d))?;
    lang::lower::lower(&prog, None).map_err(|d| render(&sources, &d))
}

#[test]
fn values_come_from_the_file_in_storage_order() {
    let m = load(NET, &[("learned.json", LEARNED), ("v0.json", V0)]).unwrap();
    lang::validate::validate(&m).unwrap();
    let inst = instantiate(&m, 7).unwrap();
    let get = |name: &str| inst.params[m.var_by_name(name).unwrap().index()].clone();
    assert_eq!(get("q.w"), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(get("p.tau"), [12.5]);
    assert_eq!(get("b"), [-1.0, 1.0]);
    assert_eq!(m.vars[m.var_by_name("p.tau").unwrap()].unit, 1);
    let st = initial_state(&m, &inst, 2, 0).unwrap();
    let v = m.var_by_name("p.v").unwrap();
    assert_eq!(st.values[v.index()], [0.25, 0.5, 0.25, 0.5]);
    // The printed IR says where the values come from.
    assert!(m.to_string().contains("from data#"), "{m}");
}

#[test]
fn bad_values_files_are_diagnosed_at_the_from() {
    let err = |learned: &str| load(NET, &[("learned.json", learned), ("v0.json", V0)]).unwrap_err();
    let missing = err(r#"{"params": {"q.w": {"data": [1,2,3,4,5,6]}, "p.tau": {"data": [1], "unit": 1}, "bb": {"data": [1, 2]}}}"#);
    assert!(missing.contains("\"learned.json\" has no values for `b`"), "{missing}");
    assert!(missing.contains("net.rule:18:14"), "{missing}");
    let size = err(r#"{"params": {"q.w": {"data": [1,2,3]}, "p.tau": {"data": [1], "unit": 1}, "b": {"data": [1, 2]}}}"#);
    assert!(size.contains("has 3 values for `q.w` (shape [3]), but it is"), "{size}");
    assert!(size.contains("with 6"), "{size}");
    let json = err("{\"params\": ");
    assert!(json.contains("bad values file \"learned.json\": not valid JSON"), "{json}");
    let no_file = load(NET, &[("learned.json", LEARNED)]).unwrap_err();
    assert!(no_file.contains("cannot read \"v0.json\": no such file"), "{no_file}");
    assert!(no_file.contains("net.rule:5:"), "{no_file}");
    // A value of the wrong unit is a unit error where it is used.
    let unit = err(r#"{"params": {"q.w": {"data": [1,2,3,4,5,6]}, "p.tau": {"data": [1]}, "b": {"data": [1, 2]}}}"#);
    assert!(unit.contains("unit") || unit.contains("dimension"), "{unit}");
}

#[test]
fn from_round_trips_through_the_printed_ast() {
    let mut sources = Sources::new();
    let id = sources.add("net.rule", NET);
    let f = lang::syntax::parse(&sources, id).unwrap();
    let text = f.to_string();
    assert!(text.contains("state v from \"v0.json\";"), "{text}");
    assert!(text.contains("tau from \"learned.json\""), "{text}");
    let id2 = sources.add("again.rule", text.clone());
    let again = lang::syntax::parse(&sources, id2).unwrap();
    assert_eq!(again.to_string(), text);
}
