#!/usr/bin/env bash
# Runs every fuzz target in tests/fuzz for SECONDS each (default 10), or a named target:
#   scripts/fuzz.sh [SECONDS] [TARGET]
# cargo-fuzz needs nightly flags; on stable Rust we set RUSTC_BOOTSTRAP=1. Installs cargo-fuzz
# when it is missing. Prints the executions each target ran.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER="${1:-10}"
ONLY="${2:-}"
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi
cd tests/fuzz
targets=$(cargo fuzz list --fuzz-dir .)
[ -n "$ONLY" ] && targets="$ONLY"
for t in $targets; do
    mkdir -p "corpus/$t"
    log=$(mktemp)
    if ! cargo fuzz run --fuzz-dir . "$t" --release -- -max_total_time="$SECONDS_PER" -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz target $t FAILED"
        rm -f "$log"
        exit 1
    fi
    runs=$(grep -E 'stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -1)
    echo "fuzz $t: ${runs:-?} executions in ${SECONDS_PER}s, no crash"
    rm -f "$log"
done
