//! Integration tests of the search crate: the expression genome, its canonical form,
//! and its variation operators.

mod evolve;
mod expr;
mod simplify;
mod variation;
