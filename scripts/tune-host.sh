#!/usr/bin/env bash
# Host tuning for latency-sensitive ringedge deployments and for benchmarks.
#
#   scripts/tune-host.sh show            # print the current values (no root needed)
#   scripts/tune-host.sh apply [POLL_US] # save the current values, then tune (root)
#   scripts/tune-host.sh revert          # restore the values saved by `apply` (root)
#
# What it changes, and why:
# - CPU idle wake-up latency. An idle CPU that halts takes tens of microseconds to wake when a
#   packet arrives for a process on it (on a VM every halt and every wake-up IPI is a VM exit).
#   At one request in flight every hop of client -> proxy -> origin -> proxy -> client pays it.
#   * VM guests with the cpuidle-haltpoll driver: the guest polls for POLL_US (default 200)
#     before halting (/sys/module/haltpoll/parameters/guest_halt_poll_ns, adaptive: it grows
#     while polling pays off and shrinks when it does not).
#   * Bare metal (cpuidle states with an exit latency): states deeper than POLL_US are disabled
#     (/sys/devices/system/cpu/cpu*/cpuidle/stateN/disable), like tuned's latency-performance.
#   Cost: idle CPUs burn up to POLL_US of polling per wake-up instead of sleeping.
# - Listen backlog: net.core.somaxconn and net.ipv4.tcp_max_syn_backlog to at least 4096 (the
#   proxy's `server.backlog` default), so bursts of new connections are not dropped.
# Nothing here is needed for correctness; the test suite never calls it. Benchmarks that use it
# must say so beside their figures, and it applies to every peer in a side-by-side run alike.
set -euo pipefail
STATE=${RINGEDGE_TUNE_STATE:-/var/tmp/ringedge-tune-host.saved}
HALTPOLL=/sys/module/haltpoll/parameters/guest_halt_poll_ns

show() {
    echo "cpuidle driver: $(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo none)"
    [ -e "$HALTPOLL" ] && echo "haltpoll guest_halt_poll_ns: $(cat "$HALTPOLL")"
    for d in /sys/devices/system/cpu/cpu0/cpuidle/state*; do
        [ -e "$d/name" ] || continue
        echo "cpu0 idle $(basename "$d"): $(cat "$d/name") latency $(cat "$d/latency") us disable $(cat "$d/disable")"
    done
    echo "net.core.somaxconn: $(cat /proc/sys/net/core/somaxconn)"
    echo "net.ipv4.tcp_max_syn_backlog: $(cat /proc/sys/net/ipv4/tcp_max_syn_backlog)"
    echo "RLIMIT_MEMLOCK (this shell): $(ulimit -l) KiB; RLIMIT_NOFILE: $(ulimit -n)"
}

need_root() {
    if [ "$(id -u)" != 0 ]; then echo "tune-host.sh $1: needs root" >&2; exit 1; fi
}

# save FILE: appends "path value" unless the path is already saved (apply twice keeps the
# original values).
save() {
    grep -q "^$1 " "$STATE" 2>/dev/null || echo "$1 $(cat "$1")" >>"$STATE"
}

apply() {
    need_root apply
    local poll_us=${1:-200}
    case "$poll_us" in ''|*[!0-9]*) echo "POLL_US must be a whole number of microseconds" >&2; exit 2 ;; esac
    touch "$STATE"
    if [ -w "$HALTPOLL" ]; then
        save "$HALTPOLL"
        echo $(( poll_us * 1000 )) >"$HALTPOLL"
        echo "haltpoll: guests poll ${poll_us} us before halting"
    else
        for d in /sys/devices/system/cpu/cpu*/cpuidle/state*; do
            [ -w "$d/disable" ] || continue
            if [ "$(cat "$d/latency")" -gt "$poll_us" ]; then
                save "$d/disable"
                echo 1 >"$d/disable"
                echo "disabled $(basename "$(dirname "$(dirname "$d")")") $(cat "$d/name") (exit latency $(cat "$d/latency") us)"
            fi
        done
    fi
    for f in /proc/sys/net/core/somaxconn /proc/sys/net/ipv4/tcp_max_syn_backlog; do
        if [ "$(cat "$f")" -lt 4096 ]; then
            save "$f"
            echo 4096 >"$f"
        fi
    done
    echo "saved previous values in $STATE (scripts/tune-host.sh revert restores them)"
}

revert() {
    need_root revert
    [ -s "$STATE" ] || { echo "nothing saved in $STATE"; return 0; }
    while read -r path value; do
        echo "$value" >"$path" && echo "restored $path = $value"
    done <"$STATE"
    rm -f "$STATE"
}

case "${1:-show}" in
    show) show ;;
    apply) apply "${2:-}" ;;
    revert) revert ;;
    *) echo "usage: scripts/tune-host.sh show | apply [POLL_US] | revert" >&2; exit 2 ;;
esac
