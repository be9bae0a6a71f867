//! Tasks (online-learning environments) and benchmarks. Filled by the task and JIT issues.
