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
    let files: HashMap<String, String> = files
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
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
    let missing = err(
        r#"{"params": {"q.w": {"data": [1,2,3,4,5,6]}, "p.tau": {"data": [1], "unit": 1}, "bb": {"data": [1, 2]}}}"#,
    );
    assert!(
        missing.contains("\"learned.json\" has no values for `b`"),
        "{missing}"
    );
    assert!(missing.contains("net.rule:18:14"), "{missing}");
    let size = err(
        r#"{"params": {"q.w": {"data": [1,2,3]}, "p.tau": {"data": [1], "unit": 1}, "b": {"data": [1, 2]}}}"#,
    );
    assert!(
        size.contains("has 3 values for `q.w` (shape [3]), but it is"),
        "{size}"
    );
    assert!(size.contains("with 6"), "{size}");
    let json = err("{\"params\": ");
    assert!(
        json.contains("bad values file \"learned.json\": not valid JSON"),
        "{json}"
    );
    let no_file = load(NET, &[("learned.json", LEARNED)]).unwrap_err();
    assert!(
        no_file.contains("cannot read \"v0.json\": no such file"),
        "{no_file}"
    );
    assert!(no_file.contains("net.rule:5:"), "{no_file}");
    // A value of the wrong unit is a unit error where it is used.
    let unit = err(
        r#"{"params": {"q.w": {"data": [1,2,3,4,5,6]}, "p.tau": {"data": [1]}, "b": {"data": [1, 2]}}}"#,
    );
    assert!(
        unit.contains("unit") || unit.contains("dimension"),
        "{unit}"
    );
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

#[test]
fn learned_values_written_back_load_to_the_same_parameters() {
    use lang::values::{Entry, Values};
    let net = NET.replace("state v from \"v0.json\";", "state v = 0;");
    let m0 = load(&net, &[("learned.json", LEARNED)]).unwrap();
    // New values for every learn parameter: scalars inline, the rest from a file.
    let mut v = Values::default();
    let mut put = |name: &str, shape: Vec<usize>, data: Vec<f64>, unit: i8| {
        v.params.insert(name.into(), Entry { shape, data, unit });
    };
    put("p.tau", vec![], vec![17.125], 1);
    put("q.w", vec![2, 3], vec![0.1, -0.2, 0.3, 1e-9, 5.0, -6.5], 0);
    put("b", vec![2], vec![1.0 / 3.0, -2.0], 0);
    let mut sources = Sources::new();
    let id = sources.add("net.rule", net.clone());
    let files = vec![(id, lang::syntax::parse(&sources, id).unwrap())];
    let header = vec!["learned by a test".to_string()];
    let text = lang::learned::rule_with_values(&files, "Net", &v, "new.json", &header).unwrap();
    assert!(text.starts_with("// learned by a test\n"), "{text}");
    assert!(text.contains("N[2](tau = 17.125 ms)"), "{text}");
    assert!(text.contains("S(w from \"new.json\")"), "{text}");
    let m = load(&text, &[("new.json", &v.to_json())]).unwrap();
    let inst = instantiate(&m, 0).unwrap();
    for (name, e) in &v.params {
        assert_eq!(
            inst.params[m.var_by_name(name).unwrap().index()],
            e.data,
            "{name}"
        );
    }
    assert_eq!(m.vars.len(), m0.vars.len());
    // A value for a parameter the network does not have is an error.
    put_err(&files, "nope.w");
}

fn put_err(files: &[(lang::FileId, lang::ast::File)], name: &str) {
    let mut v = lang::values::Values::default();
    v.params.insert(
        name.into(),
        lang::values::Entry {
            shape: vec![],
            data: vec![1.0],
            unit: 0,
        },
    );
    let e = lang::learned::rule_with_values(files, "Net", &v, "x.json", &[]).unwrap_err();
    assert!(e.contains("no parameter `nope.w`"), "{e}");
}
