//! ringedge-e2e: shared helpers for the end-to-end tests in `tests/`.
