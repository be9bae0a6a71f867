//! `search::rules::RuleProblem` on a real rule and task (`rules/search/oja_pca.rule`,
//! `oja-pca`): the path every candidate of `ruleopt search` takes (filled into the
//! text, checked, compiled, optionally tuned by gradient, scored on held-out episodes).

use benchmarks::tasks::{by_name, env::EnvTask};
use search::evolve::{Evaluator, Genome, Stage};
use search::expr::Tree;
use search::rules::{EvalConfig, RuleProblem};
use search::train::TrainConfig;
use std::path::Path;

fn problem(task: &EnvTask, tune_iterations: usize) -> RuleProblem<'_, EnvTask> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/search/oja_pca.rule");
    let mut sources = lang::Sources::new();
    let id = sources.add(
        root.to_string_lossy(),
        std::fs::read_to_string(&root).unwrap(),
    );
    let files = lang::load(&mut sources, id, &mut |importer, import| {
        let p = Path::new(importer).parent().unwrap().join(import);
        let p = p.canonicalize().map_err(|e| e.to_string())?;
        let text = std::fs::read_to_string(&p).map_err(|e| e.to_string())?;
        Ok((p.to_string_lossy().to_string(), text))
    })
    .unwrap();
    RuleProblem::new(
        sources,
        files,
        None,
        task,
        EvalConfig {
            tune_iterations,
            train: TrainConfig {
                batch: 2,
                lr: 0.05,
                seed: 3,
                ..TrainConfig::default()
            },
            episodes: 4,
            hurdle_episodes: 1,
            eval_seed: u64::MAX - 1,
            protected: true,
        },
    )
    .unwrap()
}

fn genome(p: &RuleProblem<'_, EnvTask>, formula: &str) -> Genome {
    let holes = p.hole_specs();
    let names: Vec<&str> = holes[0].args.iter().map(String::as_str).collect();
    Genome {
        trees: vec![Tree::parse(formula, &names).unwrap()],
    }
}

#[test]
fn the_known_rule_scores_best_and_broken_candidates_fail_cleanly() {
    let task = by_name("oja-pca", &serde_json::Value::Null).unwrap();
    let p = problem(&task, 0);
    assert_eq!(p.hole_specs()[0].args, ["pre.out", "post.out", "w"]);
    let fit = |f: &str| p.evaluate(&genome(&p, f), Stage::Full);
    let known = fit("post.out * (pre.out - post.out * w)");
    let zero = fit("0 * w");
    let flipped = fit("-(post.out * (pre.out - post.out * w))");
    assert!(known.error.is_none(), "{:?}", known.error);
    assert!(known.fitness > 0.9, "known {}", known.fitness);
    assert!(known.fitness > zero.fitness + 0.5 && known.fitness > flipped.fitness + 0.5);
    // The same genome, the same evaluation (determinism), and the hurdle is cheaper.
    assert_eq!(fit("post.out * (pre.out - post.out * w)"), known);
    assert!(p
        .evaluate(&genome(&p, "post.out * pre.out"), Stage::Hurdle)
        .fitness
        .is_finite());
    // A rule whose weights blow up is a failed candidate with a reason, not a panic.
    let blowup = fit("pow(2 + abs(w), 1000)");
    assert!(blowup.fitness == f64::NEG_INFINITY, "{blowup:?}");
    assert!(blowup.error.is_some());
}

#[test]
fn tuning_moves_the_constants_and_the_realised_rule_loads() {
    let task = by_name("oja-pca", &serde_json::Value::Null).unwrap();
    let p = problem(&task, 3);
    let g = genome(&p, "0.5 * post.out * (pre.out - post.out * w)");
    let e = p.evaluate(&g, Stage::Full);
    assert!(e.error.is_none(), "{:?}", e.error);
    let tuned = e.tuned.clone().expect("tuned trees");
    assert_ne!(
        tuned[0].consts(),
        g.trees[0].consts(),
        "tuning changed nothing"
    );
    // Realising the genome tunes it the same way and writes a rule without holes.
    let r = p
        .realise(&g, 4, u64::MAX - 1, "v.json", &["header".into()])
        .unwrap();
    assert_eq!(r.trees, tuned);
    assert!(!r.text.contains("?f("), "{}", r.text);
    assert!(r.text.starts_with("// header"), "{}", r.text);
    assert!(
        (r.test.metric - e.metric).abs() < 1e-12,
        "{} vs {}",
        r.test.metric,
        e.metric
    );
    let mut sources = lang::Sources::new();
    let id = sources.add("found.rule", r.text.clone());
    let files = lang::load(&mut sources, id, &mut |_, _| Err("no imports".into())).unwrap();
    let prog = lang::check::check(&sources, &files).unwrap();
    lang::lower::lower(&prog, None).unwrap();
}
