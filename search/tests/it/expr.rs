//! The genome: evaluation, rule text (checked against the language's interpreter),
//! formulas, JSON.

use lang::init::{initial_state, instantiate};
use lang::interp::Interp;
use lang::Sources;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use search::expr::{literal, Node, Op, OpSet, Tree};

fn a(i: u8) -> Tree {
    Tree::arg(i)
}

fn c(x: f64) -> Tree {
    Tree::constant(x)
}

fn ap(op: Op, kids: Vec<Tree>) -> Tree {
    Tree::apply(op, kids)
}

fn close(x: f64, y: f64, tol: f64) -> bool {
    (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= tol * (1.0 + x.abs().max(y.abs()))
}

/// Values of `exprs` (rule text over parameters `x0`, `x1`, `x2` and the given named
/// constants) after one interpreter step of a one-neuron network.
fn interp_values(exprs: &[String], args: &[f64], params: &[(String, f64)]) -> Vec<f64> {
    let mut text = String::from("neuron H {\n");
    for (i, v) in args.iter().enumerate() {
        text += &format!("  param x{i} = {};\n", literal(*v));
    }
    for (name, v) in params {
        text += &format!("  param {name} = {};\n", literal(*v));
    }
    for (i, e) in exprs.iter().enumerate() {
        text += &format!("  state y{i} = 0;\n  y{i} = {e};\n");
    }
    text += "}\nnetwork N { population p: H[1]; }\n";
    let mut sources = Sources::new();
    let root = sources.add("t.rule", text.clone());
    let mut resolve = |_: &str, p: &str| -> Result<(String, String), String> { Err(p.into()) };
    let files = lang::load(&mut sources, root, &mut resolve)
        .unwrap_or_else(|d| panic!("parse: {d:?}\n{text}"));
    let prog =
        lang::check::check(&sources, &files).unwrap_or_else(|d| panic!("check: {d:?}\n{text}"));
    let m = lang::lower::lower(&prog, None).unwrap_or_else(|d| panic!("lower: {d:?}\n{text}"));
    let inst = instantiate(&m, 1).unwrap();
    let mut s = initial_state(&m, &inst, 1, 1).unwrap();
    Interp::new(&m, &inst).unwrap().step(&mut s);
    (0..exprs.len())
        .map(|i| s.values[m.var_by_name(&format!("p.y{i}")).unwrap().index()][0])
        .collect()
}

/// Checks that every tree's rule text means what `eval` computes, at each argument
/// vector, both protected and not, with constants as literals and as parameters.
fn check_rule_text(trees: &[Tree], arg_sets: &[[f64; 3]]) {
    let names = ["x0", "x1", "x2"];
    let (mut compared, mut total) = (0, 0);
    for protected in [false, true] {
        for as_params in [false, true] {
            let mut params = Vec::new();
            let texts: Vec<String> = trees
                .iter()
                .enumerate()
                .map(|(ti, t)| {
                    t.to_rule_text(&names, protected, &mut |k, v| {
                        if as_params {
                            let name = format!("t{ti}_c{k}");
                            if !params.iter().any(|(n, _)| *n == name) {
                                params.push((name.clone(), v));
                            }
                            name
                        } else {
                            literal(v)
                        }
                    })
                })
                .collect();
            for args in arg_sets {
                let got = interp_values(&texts, args, &params);
                for ((t, text), g) in trees.iter().zip(&texts).zip(got) {
                    let want = t.eval(args, protected);
                    total += 1;
                    if !want.is_finite() {
                        // The language folds `x * 0` and `0 / x`, so non-finite values
                        // may differ; finite ones must not.
                        continue;
                    }
                    assert!(
                        close(want, g, 1e-12),
                        "{t} (protected {protected}) at {args:?}: eval {want}, interpreter {g}\n  text: {text}"
                    );
                    compared += 1;
                }
            }
        }
    }
    assert!(
        compared * 10 >= total * 6,
        "only {compared} of {total} values finite"
    );
}

#[test]
fn every_op_evaluates_plain_and_protected() {
    let cases: &[(Op, &[f64], f64, f64)] = &[
        // op, operands, plain, protected
        (Op::Add, &[2.0, 3.0], 5.0, 5.0),
        (Op::Sub, &[2.0, 3.0], -1.0, -1.0),
        (Op::Mul, &[2.0, 3.0], 6.0, 6.0),
        (Op::Div, &[3.0, 2.0], 1.5, 1.5),
        (Op::Div, &[3.0, 0.0], f64::INFINITY, 3.0),
        (Op::Div, &[3.0, 1e-13], 3e13, 3.0 / (1.0 + 1e-13)),
        (Op::Div, &[3.0, -1e-12], -3e12, -3e12),
        (Op::Pow, &[2.0, 3.0], 8.0, 8.0),
        (Op::Pow, &[-2.0, 0.5], f64::NAN, std::f64::consts::SQRT_2),
        (Op::Min, &[2.0, 3.0], 2.0, 2.0),
        (Op::Min, &[f64::NAN, 3.0], f64::NAN, f64::NAN),
        (Op::Max, &[2.0, 3.0], 3.0, 3.0),
        (Op::Max, &[2.0, f64::NAN], f64::NAN, f64::NAN),
        (Op::Neg, &[2.0], -2.0, -2.0),
        (Op::Exp, &[1.0], std::f64::consts::E, std::f64::consts::E),
        (Op::Exp, &[100.0], 100f64.exp(), 30f64.exp()),
        (Op::Log, &[std::f64::consts::E], 1.0, 1.0),
        (Op::Log, &[-std::f64::consts::E], f64::NAN, 1.0),
        (Op::Log, &[0.0], f64::NEG_INFINITY, 1e-12f64.ln()),
        (Op::Tanh, &[0.5], 0.5f64.tanh(), 0.5f64.tanh()),
        (Op::Sigmoid, &[0.0], 0.5, 0.5),
        (Op::Sqrt, &[4.0], 2.0, 2.0),
        (Op::Sqrt, &[-4.0], f64::NAN, 2.0),
        (Op::Abs, &[-4.0], 4.0, 4.0),
        (Op::Square, &[-3.0], 9.0, 9.0),
    ];
    for &(op, x, plain, prot) in cases {
        let t = ap(op, x.iter().map(|&v| c(v)).collect());
        for (protected, want) in [(false, plain), (true, prot)] {
            let got = t.eval(&[], protected);
            assert!(
                close(got, want, 1e-15),
                "{t} protected {protected}: {got} != {want}"
            );
        }
    }
    assert_eq!(Op::ALL.len(), 15);
    for &op in Op::ALL {
        assert_eq!(Op::parse(op.name()), Some(op));
    }
}

#[test]
fn rule_text_of_every_op_means_eval() {
    let mut trees = Vec::new();
    for &op in Op::ALL {
        let kids = if op.arity() == 2 {
            vec![a(0), a(1)]
        } else {
            vec![a(0)]
        };
        trees.push(ap(op, kids));
        // Compound operands, and a constant, to exercise parentheses.
        let x = ap(Op::Sub, vec![a(0), c(0.5)]);
        let y = ap(Op::Neg, vec![a(1)]);
        let kids = if op.arity() == 2 { vec![x, y] } else { vec![x] };
        trees.push(ap(op, kids));
    }
    let args = [
        [0.7, -1.3, 2.0],
        [-2.5, 0.0, 0.3],
        [40.0, 1e-13, -0.2],
        [0.5, 3.0, 1.0],
    ];
    check_rule_text(&trees, &args);
}

#[test]
fn rule_text_of_random_trees_means_eval() {
    let ops = OpSet::parse(
        "+ - * / pow min max neg exp log tanh sigmoid sqrt abs square",
        true,
    )
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let trees: Vec<Tree> = (0..150)
        .map(|_| Tree::random(&mut rng, &ops, 3, 5, 0.3))
        .collect();
    let args = [[0.7, -1.3, 2.0], [-0.4, 0.25, 1.5], [1.1, 2.2, -0.9]];
    check_rule_text(&trees, &args);
}

#[test]
fn rule_text_examples() {
    let t = ap(Op::Mul, vec![a(0), ap(Op::Sub, vec![a(1), c(1.0)])]);
    let mut lit = |_: usize, v: f64| literal(v);
    assert_eq!(
        t.to_rule_text(&["post.out", "e"], true, &mut lit),
        "post.out * (e - 1)"
    );
    // Arguments that are not names are parenthesized.
    let t = ap(Op::Mul, vec![a(0), a(1)]);
    assert_eq!(
        t.to_rule_text(&["x + y", "z"], false, &mut lit),
        "(x + y) * z"
    );
    let t = ap(Op::Div, vec![a(0), ap(Op::Add, vec![a(1), c(-0.5)])]);
    assert_eq!(
        t.to_rule_text(&["x", "y"], false, &mut lit),
        "x / (y + -0.5)"
    );
    assert_eq!(
        t.to_rule_text(&["x", "y"], true, &mut lit),
        "x / (y + -0.5 + (abs(y + -0.5) < 1e-12))"
    );
    let t = ap(Op::Square, vec![ap(Op::Neg, vec![a(0)])]);
    assert_eq!(t.to_rule_text(&["x"], true, &mut lit), "(-x)^2");
    let t = ap(Op::Log, vec![ap(Op::Exp, vec![a(0)])]);
    assert_eq!(
        t.to_rule_text(&["x"], true, &mut lit),
        "log(max(abs(exp(min(x, 30))), 1e-12))"
    );
    // Constants are numbered in prefix order, the same number each time one is written.
    let t = ap(Op::Div, vec![c(2.0), ap(Op::Mul, vec![c(3.0), a(0)])]);
    let mut seen = Vec::new();
    let text = t.to_rule_text(&["x"], true, &mut |k, v| {
        seen.push((k, v));
        format!("f_c{k}")
    });
    assert_eq!(text, "f_c0 / (f_c1 * x + (abs(f_c1 * x) < 1e-12))");
    assert_eq!(seen, vec![(0, 2.0), (1, 3.0), (1, 3.0)]);
}

#[test]
fn formulas() {
    let check = |t: Tree, names: &[&str], want: &str| assert_eq!(t.formula(names), want);
    check(
        ap(Op::Mul, vec![a(0), ap(Op::Sub, vec![a(1), c(1.0)])]),
        &["E", "R"],
        "E * (R - 1)",
    );
    check(
        ap(
            Op::Sub,
            vec![ap(Op::Sub, vec![a(0), a(1)]), ap(Op::Sub, vec![a(1), a(0)])],
        ),
        &["x", "y"],
        "x - y - (y - x)",
    );
    check(
        ap(
            Op::Div,
            vec![ap(Op::Mul, vec![a(0), a(1)]), ap(Op::Mul, vec![a(1), a(0)])],
        ),
        &["x", "y"],
        "x * y / (y * x)",
    );
    check(ap(Op::Mul, vec![c(1.0 / 3.0), a(0)]), &["x"], "0.3333 * x");
    check(ap(Op::Mul, vec![c(-123456.0), a(0)]), &["x"], "-123500 * x");
    check(ap(Op::Add, vec![a(0), c(1.5e-7)]), &["x"], "x + 1.5e-7");
    check(
        ap(Op::Pow, vec![ap(Op::Neg, vec![a(0)]), c(2.0)]),
        &["x"],
        "(-x)^2",
    );
    check(
        ap(Op::Neg, vec![ap(Op::Square, vec![a(0)])]),
        &["x"],
        "-x^2",
    );
    check(ap(Op::Neg, vec![ap(Op::Neg, vec![a(0)])]), &["x"], "-(-x)");
    check(
        ap(Op::Exp, vec![ap(Op::Div, vec![a(0), c(2.0)])]),
        &["x"],
        "exp(x / 2)",
    );
    check(
        ap(
            Op::Max,
            vec![ap(Op::Log, vec![a(0)]), ap(Op::Sigmoid, vec![a(1)])],
        ),
        &["x", "y"],
        "max(log(x), sigmoid(y))",
    );
    let t = ap(Op::Mul, vec![a(0), a(2)]);
    assert_eq!(t.to_string(), "a0 * a2");
}

#[test]
fn json_round_trip_is_exact() {
    let t = ap(Op::Mul, vec![a(0), ap(Op::Sub, vec![a(1), c(1.0)])]);
    assert_eq!(t.to_json().to_string(), r#"["*","a0",["-","a1",1.0]]"#);
    let ops = OpSet::parse(
        "+ - * / pow min max neg exp log tanh sigmoid sqrt abs square",
        true,
    )
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let odd = [
        0.1,
        1.0 / 3.0,
        -0.0,
        1e-310,
        f64::MAX,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ];
    for i in 0..500 {
        let t = Tree::random(&mut rng, &ops, 4, 6, 0.5);
        // Constants with every bit pattern kind: odd values and random bits.
        let consts: Vec<f64> = (0..t.consts().len())
            .map(|k| {
                if (i + k) % 2 == 0 {
                    odd[(i + k) % odd.len()]
                } else {
                    f64::from_bits(rand::Rng::gen::<u64>(&mut rng))
                }
            })
            .collect();
        let t = t.with_consts(&consts);
        let text = t.to_json().to_string();
        let back = Tree::from_json(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back.size(), t.size());
        for (x, y) in t.nodes.iter().zip(&back.nodes) {
            match (x, y) {
                (Node::Const(p), Node::Const(q)) => {
                    assert!(
                        p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()),
                        "{p} -> {q}"
                    )
                }
                _ => assert_eq!(x, y),
            }
        }
    }
    for bad in [
        r#"["+", "a0"]"#,
        r#"["foo", 1]"#,
        r#""b3""#,
        r#"{"x": 1}"#,
        "[]",
    ] {
        assert!(
            Tree::from_json(&serde_json::from_str(bad).unwrap()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn op_sets() {
    let s = OpSet::parse("+,-, * /  exp,+", false).unwrap();
    assert_eq!(s.ops, vec![Op::Add, Op::Sub, Op::Mul, Op::Div, Op::Exp]);
    assert!(!s.protected);
    let e = OpSet::parse("+,cosh", true).unwrap_err();
    assert!(
        e.contains("`cosh`") && e.contains("sigmoid") && e.contains("square"),
        "{e}"
    );
    assert!(OpSet::parse(" , ", true).is_err());
    assert_eq!(OpSet::default().ops, vec![Op::Add, Op::Sub, Op::Mul]);
    assert!(OpSet::default().protected);
}

#[test]
fn structure() {
    // (x0 + 2) * exp(x1)
    let t = ap(
        Op::Mul,
        vec![ap(Op::Add, vec![a(0), c(2.0)]), ap(Op::Exp, vec![a(1)])],
    );
    assert_eq!(t.size(), 6);
    assert_eq!(t.depth(), 3);
    assert_eq!(t.levels(), vec![1, 2, 3, 3, 2, 3]);
    assert_eq!(t.children(0), vec![1, 4]);
    assert_eq!(t.children(1), vec![2, 3]);
    assert!(t.children(2).is_empty());
    assert_eq!(t.subtree_end(0), 6);
    assert_eq!(t.subtree_end(1), 4);
    assert_eq!(t.subtree_end(4), 6);
    assert_eq!(t.consts(), vec![2.0]);
    assert_eq!(t.with_consts(&[5.0]).eval(&[1.0, 0.0], true), 6.0);
    assert!(t.uses_arg(1) && !t.uses_arg(2));
    assert_eq!(t.n_args(), 2);
    assert!(t.is_valid());
    assert!(!Tree {
        nodes: vec![Node::Op(Op::Add), Node::Arg(0)]
    }
    .is_valid());
    assert_eq!(Tree::arg(3).depth(), 1);
}

#[test]
fn random_trees_respect_depth_and_are_seeded() {
    let ops = OpSet::parse("+ - * / exp neg", true).unwrap();
    let draw = |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..200)
            .map(|_| Tree::random(&mut rng, &ops, 2, 4, 0.3))
            .collect::<Vec<_>>()
    };
    let trees = draw(11);
    assert_eq!(trees, draw(11));
    assert_ne!(trees, draw(12));
    let mut consts = 0;
    for t in &trees {
        assert!(t.is_valid() && t.depth() <= 4 && t.depth() >= 2, "{t}");
        assert!(t.nodes.iter().all(|n| match n {
            Node::Arg(i) => *i < 2,
            Node::Const(c) => search::expr::RANDOM_CONSTS.contains(c),
            Node::Op(op) => ops.ops.contains(op),
        }));
        consts += t.consts().len();
    }
    assert!(consts > 0);
}

#[test]
fn formulas_parse_back_to_the_same_function() {
    use search::expr::Tree;
    let names = ["R", "E"];
    let t = Tree::parse("E * (R - 1)", &names).unwrap();
    assert_eq!(t.formula(&names), "E * (R - 1)");
    for text in [
        "-R * 2.5e-3 + max(R, E) / pow(E, 2)",
        "exp(-(R ^ 2)) - tanh(E) * sqrt(abs(R))",
        "square(R) - neg(E)",
    ] {
        let t = Tree::parse(text, &names).unwrap();
        let back = Tree::parse(&t.formula(&names), &names).unwrap();
        for (a, b) in [(0.3, 1.7), (-1.2, 0.4)] {
            let (x, y) = (t.eval(&[a, b], true), back.eval(&[a, b], true));
            assert!(
                (x - y).abs() <= 1e-3 * x.abs().max(1.0),
                "{text}: {x} vs {y}"
            );
        }
    }
    for (bad, what) in [
        ("E *", "unexpected end"),
        ("Q + 1", "unknown name `Q`"),
        ("min(R)", "takes 2"),
        ("(R", "expected `)`"),
        ("R R", "expected an operator"),
    ] {
        let e = Tree::parse(bad, &names).unwrap_err();
        assert!(e.contains(what), "{bad}: {e}");
    }
}
