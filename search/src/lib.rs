//! The outer loops over rules: [`train`] tunes a network's `learn` parameters by
//! gradient descent through whole episodes (learning to learn); [`evolve`] evolves the
//! formulas of a rule's holes (`ruleopt search`): [`expr`] is the genome (one
//! expression tree per hole), [`simplify`] its canonical form and complexity,
//! [`variation`] its mutation and crossover, and [`rules`] makes a rule with holes and a
//! task the problem the evolution solves (each candidate filled into the rule's text,
//! compiled, tuned by gradient through whole episodes, and scored).
#![warn(missing_docs)]

pub mod evolve;
pub mod expr;
pub mod rules;
pub mod simplify;
pub mod train;
pub mod variation;
