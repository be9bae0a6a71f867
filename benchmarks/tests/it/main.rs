//! Integration tests of the tasks on the networks of `rules/` (one test binary).

mod rule_problem;
mod search_tasks;
