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

# Independent HTTP/2 peers for engine/proxy/tests/peers_nghttp.rs: h2load and nghttp from
# Debian's nghttp2-client. Installed when missing and we are root. Otherwise that test skips,
# except under CI (CI set), where a missing tool is an error here and in the test.
install_nghttp2_client() {
    if command -v h2load >/dev/null 2>&1 && command -v nghttp >/dev/null 2>&1; then
        return 0
    fi
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        step "installing nghttp2-client (h2load, nghttp)"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nghttp2-client
    elif [ -n "${CI:-}" ]; then
        echo "h2load/nghttp missing and not installable here (need root and apt-get):" \
            "install Debian's nghttp2-client" >&2
        exit 1
    fi
}
install_nghttp2_client

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
