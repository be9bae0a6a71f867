//! Mutation and crossover: within limits, seeded, and actually varied.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use search::expr::{Node, OpSet, Tree};
use search::variation::{crossover, mutate, Limits};

fn ops() -> OpSet {
    OpSet::parse("+ - * / exp neg square", true).unwrap()
}

fn population(seed: u64, n: usize) -> Vec<Tree> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| Tree::random(&mut rng, &ops(), 3, 5, 0.3))
        .collect()
}

#[test]
fn mutate_stays_within_limits_and_is_seeded() {
    let ops = ops();
    for limits in [
        Limits {
            max_size: 25,
            max_depth: 6,
        },
        Limits {
            max_size: 7,
            max_depth: 3,
        },
        Limits {
            max_size: 1,
            max_depth: 1,
        },
    ] {
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            population(1, 300)
                .iter()
                .map(|t| mutate(t, &mut rng, &ops, 3, limits))
                .collect::<Vec<_>>()
        };
        let children = run(4);
        assert_eq!(children, run(4), "deterministic");
        assert_ne!(children, run(5), "seed matters");
        let mut changed = 0;
        for (parent, child) in population(1, 300).iter().zip(&children) {
            assert!(child.is_valid(), "{child:?}");
            assert!(limits.admits(child), "{child} over {limits:?}");
            assert!(child.nodes.iter().all(|n| match n {
                Node::Arg(i) => *i < 3,
                Node::Op(op) => ops.ops.contains(op),
                Node::Const(c) => c.is_finite(),
            }));
            changed += usize::from(child != parent);
        }
        if limits.max_size > 1 {
            assert!(
                changed > 200,
                "only {changed} of 300 changed under {limits:?}"
            );
        }
    }
}

#[test]
fn repeated_mutation_explores_and_stays_bounded() {
    let ops = ops();
    let limits = Limits {
        max_size: 15,
        max_depth: 5,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let mut t = Tree::arg(0);
    let mut sizes = std::collections::BTreeSet::new();
    for _ in 0..2000 {
        t = mutate(&t, &mut rng, &ops, 2, limits);
        assert!(limits.admits(&t) && t.is_valid(), "{t}");
        sizes.insert(t.size());
    }
    assert!(sizes.len() > 6, "sizes seen: {sizes:?}");
}

#[test]
fn crossover_stays_within_limits_and_is_seeded() {
    let pop = population(2, 200);
    for limits in [
        Limits {
            max_size: 30,
            max_depth: 7,
        },
        Limits {
            max_size: 5,
            max_depth: 3,
        },
    ] {
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            pop.windows(2)
                .map(|w| crossover(&w[0], &w[1], &mut rng, limits))
                .collect::<Vec<_>>()
        };
        let children = run(1);
        assert_eq!(children, run(1));
        assert_ne!(children, run(2));
        for child in &children {
            assert!(child.is_valid() && limits.admits(child), "{child}");
        }
    }
    // A child is made of its parents' nodes: with disjoint argument sets, a child of
    // x-trees and y-trees that differs from the first parent holds a piece of the second.
    let a = Tree::apply(
        search::expr::Op::Add,
        vec![
            Tree::arg(0),
            Tree::apply(search::expr::Op::Exp, vec![Tree::arg(0)]),
        ],
    );
    let b = Tree::apply(search::expr::Op::Mul, vec![Tree::arg(1), Tree::arg(1)]);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let limits = Limits {
        max_size: 20,
        max_depth: 6,
    };
    let mut mixed = 0;
    for _ in 0..100 {
        let child = crossover(&a, &b, &mut rng, limits);
        if child.uses_arg(1) {
            mixed += 1;
        } else {
            assert_eq!(child, a);
        }
    }
    assert!(mixed > 90);
}
