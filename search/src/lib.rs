//! The outer loops over rules: [`train`] tunes a network's `learn` parameters by
//! gradient descent through whole episodes (learning to learn); evolution of rule
//! structure (`ruleopt search`) builds on it: [`expr`] is the genome (one expression
//! tree per hole), [`simplify`] its canonical form and complexity, [`variation`] its
//! mutation and crossover.
#![warn(missing_docs)]

pub mod expr;
pub mod simplify;
pub mod train;
pub mod variation;
