//! Every kind of bad input gets a clear message: file, line, column, a caret and one
//! sentence. Each case is data: a file's text, and a snapshot of what `ruleopt check`
//! prints for it (colour off).

use lang::Sources;
use ruleopt::load::{Origin, Session};
use ruleopt::render::render_diagnostics;

const MODELS: &str = r#"
neuron LIF {
  param tau_m = 20 ms;
  param v_th = 1.0;
  input I;
  state v = 0;
  dv/dt = (-v + I) / tau_m;
  spike z when v > v_th;
  reset v -= v_th;
}
synapse Static {
  learn w[synapse] ~ normal(0, 0.1);
  weight = w;
}
synapse Modulated {
  modulator m;
  state e = 0;
  weight = e;
  e += m * pre.out;
}
"#;

/// Checks `text` (with [`MODELS`] appended when `with_models`) and renders the result.
fn check(text: &str, with_models: bool) -> String {
    let full = if with_models {
        format!("{text}{MODELS}")
    } else {
        text.to_string()
    };
    let mut session = Session::from_text("bad.rule", full, Origin::Bundled);
    let rendered =
        |sources: &Sources, d: &[lang::Diagnostic]| render_diagnostics(sources, d, false);
    match session.load() {
        Err(d) => rendered(&session.sources, &d),
        Ok(files) => match lang::check::check(&session.sources, &files) {
            Err(d) => rendered(&session.sources, &d),
            Ok(_) => panic!("this input was accepted:\n{text}"),
        },
    }
}

macro_rules! bad {
    ($name:ident, $models:expr, $text:expr) => {
        #[test]
        fn $name() {
            let out = check($text, $models);
            assert!(out.contains("bad.rule:"), "no file:line:col in\n{out}");
            assert!(out.contains('^'), "no caret in\n{out}");
            insta::assert_snapshot!(out);
        }
    };
}

bad!(
    syntax_error,
    false,
    "neuron N {\n  param tau = 20 ms\n  state v = 0;\n}\n"
);
bad!(
    missing_semicolon_in_a_network,
    false,
    "network N {\n  input x[2]\n  signal r;\n}\n"
);
bad!(
    bad_values_file,
    true,
    "network Net {\n  input x[2];\n  population p: LIF[2];\n  projection q: x -> p with Static(w from \"missing.json\");\n}\n"
);
bad!(
    syntax_error_bad_token,
    false,
    "neuron N {\n  state v = 0;\n  v = v * * 2;\n}\n"
);
bad!(
    keyword_as_name,
    false,
    "neuron N {\n  state weight = 0;\n}\n"
);
bad!(unknown_name, false, "neuron N {\n  param tau_m = 20 ms;\n  input I;\n  state v = 0;\n  dv/dt = (-v + I) / tau_n;\n}\n");
bad!(
    unknown_function,
    false,
    "neuron N {\n  state v = 0;\n  v = expp(v);\n}\n"
);
bad!(
    unit_mismatch_add,
    false,
    "neuron N {\n  param tau = 20 ms;\n  state v = 0;\n  v = v + tau;\n}\n"
);
bad!(
    unit_mismatch_exp,
    false,
    "neuron N {\n  param tau = 20 ms;\n  state v = 1;\n  v = v * exp(-dt);\n}\n"
);
bad!(
    unit_mismatch_ode,
    false,
    "neuron N {\n  param tau = 20 ms;\n  state v = 0;\n  dv/dt = -v * tau;\n}\n"
);
bad!(
    wrong_arity,
    false,
    "neuron N {\n  input I;\n  state v = 0;\n  v = max(v, I, 0);\n}\n"
);
bad!(
    wrong_arity_initializer,
    false,
    "synapse S {\n  learn w[synapse] ~ normal(0);\n  weight = w;\n}\n"
);
bad!(
    assignment_to_parameter,
    false,
    "neuron N {\n  param tau = 20 ms;\n  state v = 0;\n  tau = 10 ms;\n}\n"
);
bad!(
    assignment_to_input,
    false,
    "neuron N {\n  input I;\n  state v = 0;\n  I = v;\n}\n"
);
bad!(
    state_never_initialised,
    false,
    "neuron N {\n  input I;\n  state v;\n  state u = 0;\n  u = v + I;\n}\n"
);
bad!(
    unknown_hole_argument,
    false,
    "synapse S {\n  state e = 0;\n  e += ?f(pre.out, post.out, elig);\n}\n"
);
bad!(
    hole_arity,
    false,
    "synapse S {\n  state e = 0;\n  e += ?f(pre.out) + ?f(pre.out, post.out);\n}\n"
);
bad!(
    cyclic_parameters,
    false,
    "neuron N {\n  param a = b + 1;\n  param b = 2 * a;\n  state v = 0;\n}\n"
);
bad!(
    cyclic_modulators,
    true,
    "network Net {\n  population rec: LIF[4];\n  modulator a = tanh(b);\n  modulator b = a + 1;\n}\n"
);
bad!(
    unknown_population,
    true,
    "network Net {\n  input x[4];\n  population rec: LIF[10];\n  projection p: x -> recc with Static;\n}\n"
);
bad!(
    unknown_rule,
    true,
    "network Net {\n  input x[4];\n  population rec: LIF[10];\n  projection p: x -> rec with Statik;\n}\n"
);
bad!(
    unknown_model,
    true,
    "network Net {\n  population rec: LIFF[10];\n}\n"
);
bad!(
    unbound_modulator,
    true,
    "network Net {\n  input x[4];\n  population rec: LIF[10];\n  projection p: x -> rec with Modulated;\n}\n"
);
bad!(
    missing_pre_variable,
    true,
    "synapse Reads {\n  state e = 0;\n  weight = e;\n  e += pre.u;\n}\nnetwork Net {\n  population a: LIF[2];\n  population b: LIF[2];\n  projection p: a -> b with Reads;\n}\n"
);
bad!(
    unknown_override,
    true,
    "network Net {\n  population rec: LIF[10](tau = 5 ms);\n}\n"
);
bad!(
    unknown_readout,
    true,
    "network Net {\n  population rec: LIF[10];\n  readout rec.vv;\n}\n"
);
bad!(
    pre_state_reads_post,
    false,
    "synapse S {\n  state x[pre] = 0;\n  x += post.out;\n}\n"
);
bad!(
    wrong_space_name,
    false,
    "synapse S {\n  state x[axon] = 0;\n}\n"
);
bad!(
    exact_not_linear,
    false,
    "neuron N {\n  param tau = 10 ms;\n  state v = 0;\n  dv/dt = -v * v / tau using exact;\n}\n"
);
bad!(
    unknown_integrator,
    false,
    "neuron N {\n  param tau = 10 ms;\n  state v = 0;\n  dv/dt = -v / tau using rk4;\n}\n"
);
bad!(
    reset_in_synapse,
    false,
    "synapse S {\n  state w = 0;\n  reset w = 0;\n}\n"
);
bad!(
    declared_twice,
    false,
    "neuron N {\n  state v = 0;\n  state v = 1;\n}\n"
);
bad!(
    unknown_surrogate,
    false,
    "neuron N {\n  state v = 0;\n  spike z when v > 1 surrogate sigmoidal(2);\n}\n"
);
bad!(
    import_missing,
    false,
    "import \"nowhere.rule\";\nneuron N { state v = 0; }\n"
);
