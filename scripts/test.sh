#!/usr/bin/env bash
# The whole test suite: format, lints, every workspace test, and a short smoke run of every fuzz
# target. Installs what it needs (cargo-fuzz) on a fresh machine. `.ci/run` calls exactly this.
#
#   FUZZ_SECONDS=N   seconds per fuzz target (default 10; 0 skips the fuzz smoke)
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-10}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test --workspace"
cargo test --workspace --locked

if [ "$FUZZ_SECONDS" != "0" ]; then
    step "fuzz smoke (${FUZZ_SECONDS}s per target)"
    scripts/fuzz.sh "$FUZZ_SECONDS"
fi
step "all tests passed"
