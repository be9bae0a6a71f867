//! The evolution loop on a problem whose answer is known (symbolic regression of a
//! formula of two arguments), where every property can be checked quickly: it finds the
//! formula, a seed gives one run at any thread count, a resumed run equals an
//! uninterrupted one, and failing candidates cost nothing but their fitness.

use search::evolve::{
    Evaluation, Evaluator, GenLog, Genome, HoleSpec, Search, SearchConfig, SearchResult, Stage,
    StopReason, Strategy,
};
use search::expr::{OpSet, Tree};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};

/// Regression of `target(a, b)` on a grid: fitness = -MSE (the hurdle uses 4 points).
struct Regression {
    target: fn(f64, f64) -> f64,
    /// Candidates whose value at (0.5, 0.5) exceeds this fail (as a network that
    /// diverges would).
    explode_above: f64,
    calls: AtomicU64,
}

impl Regression {
    fn new(target: fn(f64, f64) -> f64) -> Self {
        Regression {
            target,
            explode_above: f64::INFINITY,
            calls: AtomicU64::new(0),
        }
    }
}

impl Evaluator for Regression {
    fn evaluate(&self, g: &Genome, stage: Stage) -> Evaluation {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let t = &g.trees[0];
        if t.eval(&[0.5, 0.5], true) > self.explode_above {
            return Evaluation::failed("exploded");
        }
        let n = match stage {
            Stage::Hurdle => 2,
            Stage::Full => 6,
        };
        let mut se = 0.0;
        let mut count = 0.0;
        for i in 0..n {
            for j in 0..n {
                let (a, b) = (-1.5 + 3.0 * i as f64 / 5.0, -1.2 + 2.9 * j as f64 / 5.0);
                let d = t.eval(&[a, b], true) - (self.target)(a, b);
                se += d * d;
                count += 1.0;
            }
        }
        let mse = se / count;
        Evaluation {
            fitness: -mse,
            metric: mse,
            tuned: None,
            error: None,
        }
    }
    fn fingerprint(&self) -> Value {
        json!({"problem": "regression", "explode_above": self.explode_above.to_string()})
    }
}

fn holes() -> Vec<HoleSpec> {
    vec![HoleSpec {
        name: "f".into(),
        args: vec!["R".into(), "E".into()],
    }]
}

fn config(generations: usize) -> SearchConfig {
    SearchConfig {
        strategy: Strategy::Tournament {
            population: 24,
            lambda: 12,
            tournament: 3,
            aging: true,
        },
        islands: 2,
        migration_interval: 5,
        ops: OpSet::parse("+,-,*", true).unwrap(),
        crossover: 0.3,
        generations,
        seed: 7,
        ..SearchConfig::default()
    }
}

fn run(
    cfg: &SearchConfig,
    eval: &Regression,
    dir: Option<&std::path::Path>,
    resume: bool,
) -> SearchResult {
    Search::new(cfg.clone(), holes(), eval)
        .unwrap()
        .run(dir, resume, &mut |_: &GenLog| {})
        .unwrap()
}

/// What must be equal between two runs: everything but wall-clock times.
fn fingerprint(r: &SearchResult) -> Value {
    json!({
        "hall": r.hall_of_fame.iter().map(|i| json!([i.genome.to_json(), i.fitness, i.id, i.born, i.complexity])).collect::<Vec<_>>(),
        "pareto": r.pareto.iter().map(|i| json!([i.genome.to_json(), i.fitness])).collect::<Vec<_>>(),
        "log": r.log.iter().map(|g| json!([g.generation, g.best_fitness, g.best_formulas, g.mean_fitness,
            g.evaluations, g.cache_hits, g.hurdle_rejections, g.failures])).collect::<Vec<_>>(),
        "evaluations": r.evaluations,
    })
}

#[test]
fn finds_the_formula_and_reports_it_readably() {
    let eval = Regression::new(|r, e| e * (r - 1.0));
    let r = run(&config(60), &eval, None, false);
    let best = &r.hall_of_fame[0];
    assert!(
        best.fitness > -1e-12,
        "best {} = {:?}",
        best.fitness,
        best.formulas(&holes())
    );
    // The canonical form of E * (R - 1): the same function, no larger than 5 nodes.
    assert!(best.complexity <= 5, "{:?}", best.formulas(&holes()));
    for (a, b) in [(0.3, -2.0), (1.7, 0.4)] {
        let v = best.genome.trees[0].eval(&[a, b], true);
        assert!((v - b * (a - 1.0)).abs() < 1e-9);
    }
    // Pareto front: simplest first, fitness increasing with complexity.
    for w in r.pareto.windows(2) {
        assert!(w[0].complexity < w[1].complexity && w[0].fitness < w[1].fitness);
    }
    assert!(r.log.last().unwrap().cache_hits > 0, "no cache hits");
    assert!(
        r.log.last().unwrap().hurdle_rejections > 0,
        "nobody stopped at the hurdle"
    );
}

#[test]
fn a_seed_gives_the_same_run_at_one_and_two_threads() {
    let eval = Regression::new(|r, e| e * (r - 1.0) + r);
    let cfg = config(15);
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let a = one.install(|| run(&cfg, &eval, None, false));
    let b = two.install(|| run(&cfg, &eval, None, false));
    assert_eq!(fingerprint(&a), fingerprint(&b));
    // And another seed gives another run.
    let c = run(
        &SearchConfig {
            seed: 8,
            ..cfg.clone()
        },
        &eval,
        None,
        false,
    );
    assert_ne!(fingerprint(&a), fingerprint(&c));
}

#[test]
fn a_resumed_search_equals_an_uninterrupted_one() {
    let eval = Regression::new(|r, e| r * e - e);
    let tmp = std::env::temp_dir().join(format!("ruleopt-evolve-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let whole = run(&config(12), &eval, Some(&tmp.join("whole")), false);
    let part = run(&config(5), &eval, Some(&tmp.join("part")), false);
    assert_eq!(part.log.len(), 5);
    assert_eq!(part.stop, StopReason::Generations);
    // Starting over in a directory that holds a search is refused.
    let again = Search::new(config(12), holes(), &eval).unwrap().run(
        Some(&tmp.join("part")),
        false,
        &mut |_: &GenLog| {},
    );
    assert!(again.unwrap_err().to_string().contains("--resume"));
    let calls = eval.calls.load(Ordering::Relaxed);
    let resumed = run(&config(12), &eval, Some(&tmp.join("part")), true);
    assert_eq!(fingerprint(&whole), fingerprint(&resumed));
    // The resumed part evaluated only generations 5..12.
    let spent = eval.calls.load(Ordering::Relaxed) - calls;
    assert_eq!(spent, whole.evaluations - part.evaluations);
    // The log on disk has one line per generation.
    let log = std::fs::read_to_string(tmp.join("part/log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 12);
    // Another configuration cannot resume this run.
    let other = Search::new(
        SearchConfig {
            seed: 9,
            ..config(12)
        },
        holes(),
        &eval,
    )
    .unwrap()
    .run(Some(&tmp.join("part")), true, &mut |_: &GenLog| {});
    assert!(other.unwrap_err().to_string().contains("another search"));
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn failing_candidates_get_the_worst_fitness_and_the_search_goes_on() {
    let mut eval = Regression::new(|r, e| e * (r - 1.0));
    eval.explode_above = 0.3;
    let r = run(&config(20), &eval, None, false);
    let last = r.log.last().unwrap();
    assert!(last.failures > 0, "no candidate failed");
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].0, "exploded");
    assert!(r.errors[0].1 > 0 && r.errors[0].1 as u64 <= last.failures);
    assert!(r.hall_of_fame.iter().all(|i| i.fitness.is_finite()));
    assert!(r.hall_of_fame[0].fitness > -1.0);
}

#[test]
fn mu_plus_lambda_keeps_the_best_and_limits_stop_the_run() {
    let eval = Regression::new(|r, e| e * (r - 1.0));
    let cfg = SearchConfig {
        strategy: Strategy::MuPlusLambda {
            mu: 4,
            lambda: 4,
            tournament: 1,
        },
        islands: 1,
        ops: OpSet::parse("+,-,*", true).unwrap(),
        generations: 1000,
        max_evaluations: Some(60),
        seed: 3,
        ..SearchConfig::default()
    };
    let r = run(&cfg, &eval, None, false);
    assert_eq!(r.stop, StopReason::Evaluations);
    assert!(r.evaluations >= 60 && r.evaluations < 60 + 2 * 4);
    // Best-so-far never gets worse.
    for w in r.log.windows(2) {
        assert!(w[1].best_fitness >= w[0].best_fitness);
    }
    let r = run(
        &SearchConfig {
            max_evaluations: None,
            target: Some(-1e-12),
            ..cfg
        },
        &eval,
        None,
        false,
    );
    assert!(matches!(
        r.stop,
        StopReason::Target | StopReason::Generations
    ));
}

#[test]
fn bad_configuration_names_the_field() {
    let eval = Regression::new(|r, _| r);
    let bad = SearchConfig {
        islands: 0,
        ..SearchConfig::default()
    };
    let e = Search::new(bad, holes(), &eval).err().unwrap().to_string();
    assert!(e.contains("islands"), "{e}");
    let e = Search::new(SearchConfig::default(), vec![], &eval)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no holes"), "{e}");
}

#[test]
fn the_known_rule_is_recognised_up_to_a_positive_scale() {
    use search::evolve::same_up_to_scale;
    let names = ["R", "E"];
    let known = Tree::parse("E * (R - 1)", &names).unwrap();
    let probes: Vec<Vec<f64>> = (0..24)
        .map(|k| vec![-2.0 + 0.17 * k as f64, 1.9 - 0.31 * k as f64])
        .collect();
    for (text, same) in [
        ("E * (R - 1)", true),
        ("2 * E * R - E * 2", true),
        ("(R - 1) * E * 0.25", true),
        ("-(E * (R - 1))", false),
        ("E * (R - 1) + 0.001", false),
        ("E * R", false),
        ("0 * E", false),
    ] {
        let t = Tree::parse(text, &names).unwrap();
        assert_eq!(same_up_to_scale(&t, &known, &probes, true), same, "{text}");
    }
    // A search told the answer stops when it evaluates it, and says when.
    let eval = Regression::new(|r, e| e * (r - 1.0));
    let cfg = SearchConfig {
        known: Some(vec![known]),
        stop_on_hit: true,
        ..config(200)
    };
    let r = run(&cfg, &eval, None, false);
    assert_eq!(r.stop, StopReason::Found);
    let hit = r.first_hit.expect("a hit");
    assert_eq!(hit.generation + 1, r.log.len());
    assert!(hit.evaluations <= r.evaluations && hit.seconds > 0.0);
}

/// Two holes (say, potentiation and depression branches) evolve together.
struct TwoHoles;

impl Evaluator for TwoHoles {
    fn evaluate(&self, g: &Genome, _: Stage) -> Evaluation {
        let mut se = 0.0;
        for i in 0..6 {
            for j in 0..6 {
                let (a, b) = (-1.0 + 0.4 * i as f64, -1.3 + 0.5 * j as f64);
                let d1 = g.trees[0].eval(&[a, b], true) - a * b;
                let d2 = g.trees[1].eval(&[a], true) - (a - 1.0);
                se += d1 * d1 + d2 * d2;
            }
        }
        Evaluation {
            fitness: -se,
            metric: se,
            tuned: None,
            error: None,
        }
    }
    fn fingerprint(&self) -> Value {
        json!("two holes")
    }
}

#[test]
fn several_holes_evolve_together() {
    let holes = vec![
        HoleSpec {
            name: "plus".into(),
            args: vec!["x".into(), "y".into()],
        },
        HoleSpec {
            name: "minus".into(),
            args: vec!["x".into()],
        },
    ];
    let r = Search::new(config(60), holes.clone(), &TwoHoles)
        .unwrap()
        .run(None, false, &mut |_: &GenLog| {})
        .unwrap();
    let best = &r.hall_of_fame[0];
    assert!(best.fitness > -1e-12, "{:?}", best.formulas(&holes));
    let f = best.formulas(&holes);
    assert!(
        f[0].starts_with("plus(x, y) = ") && f[1].starts_with("minus(x) = "),
        "{f:?}"
    );
}
