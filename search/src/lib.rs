//! The outer loops over rules: [`train`] tunes a network's `learn` parameters by
//! gradient descent through whole episodes (learning to learn); evolution of rule
//! structure (`ruleopt search`) builds on it.
#![warn(missing_docs)]

pub mod evolve;
pub mod expr;
pub mod simplify;
pub mod variation;
pub mod rules;
pub mod train;
