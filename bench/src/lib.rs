//! ringedge-bench: micro-benchmarks, load generator and test origin.
