//! Integration tests of the tasks on the networks of `rules/` (one test binary).

mod search_tasks;
