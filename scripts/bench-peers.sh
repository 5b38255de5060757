#!/usr/bin/env bash
# Side-by-side benchmark: direct to origin, ringedge, nginx (grpc_pass + upstream keepalive) and
# HAProxy (proto h2), in interleaved rounds, medians reported.
#
#   scripts/bench-peers.sh [--rounds N] [--duration SECS] [--rate R] [--h2load-rate R]
#                          [--origin tonic|tonic-nagle|ringedge] [--quick]
#
# The origin is a stock tonic Greeter (tests/e2e's tonic-origin, the issue's setup; the default)
# or the same without TCP_NODELAY (--origin tonic-nagle: an origin whose small writes wait for
# ACKs), or `ringedge-bench origin` (--origin ringedge, cheaper per call, so the proxies work
# harder).
#
# Run kinds: closed loop 16x32, open loop at --rate, one connection / one stream (`single`), the
# same with low-latency settings (`lowlat`: for every peer the client polls 100 µs before it
# sleeps, at nice 19; ringedge is a second instance with `spin_before_park_us = 300`), and
# 1 MiB bidi streaming (ringedge origin only).
#
# Placement (DESIGN §6): the proxy under test is pinned to CPU 0, the load generator and the
# origin share CPU 1; every peer gets the same origin and the same offered load. Proxy CPU time
# per request comes from /proc/PID/stat (utime+stime) before and after each run.
# Installs nginx, haproxy and h2load (Debian: nginx-light, haproxy, nghttp2-client) when missing
# (needs root). Writes OUT/results.md, OUT/results.json and OUT/latency.svg with machine, kernel,
# commit and settings recorded beside the figures. Every process it starts is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

ROUNDS=3
DURATION=8
RATE=2000
H2LOAD_RATE=16000
CONNS=16
STREAMS=32
ORIGIN=tonic
while [ $# -gt 0 ]; do
    case "$1" in
        --origin) ORIGIN=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --rate) RATE=$2; shift 2 ;;
        --h2load-rate) H2LOAD_RATE=$2; shift 2 ;;
        --quick) ROUNDS=1; DURATION=3; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

OUT="$ROOT/out/bench-peers/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && wait "$p" 2>/dev/null || true
    done
}
trap cleanup EXIT INT TERM

need_install=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_install+=(nginx-light)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need_install+=(haproxy)
command -v h2load >/dev/null || need_install+=(nghttp2-client)
if [ ${#need_install[@]} -gt 0 ]; then
    echo "installing ${need_install[*]} (Debian packages)"
    if [ "$(id -u)" != 0 ]; then echo "need root to install ${need_install[*]}" >&2; exit 1; fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_install[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

case "$H2LOAD_RATE" in ''|*[!0-9]*) echo "--h2load-rate must be a number of calls/s" >&2; exit 2 ;; esac
[ "$H2LOAD_RATE" -ge "$CONNS" ] || { echo "--h2load-rate must be at least $CONNS (one call/s per connection)" >&2; exit 2; }
case "$ORIGIN" in tonic|tonic-nagle|ringedge) ;; *) echo "--origin must be tonic, tonic-nagle or ringedge" >&2; exit 2 ;; esac
# The bidi 1 MiB streaming run needs the test origin's echo (the tonic Greeter is unary only).
KINDS="closed open single lowlat"
[ "$ORIGIN" = ringedge ] && KINDS="$KINDS stream"
cargo build --release --locked -q -p ringedge -p ringedge-bench -p ringedge-e2e \
    --bin ringedge --bin ringedge-bench --bin tonic-origin
BIN="$ROOT/target/release"

NCPU=$(nproc)
PROXY_CPU=0
LOAD_CPU=$(( NCPU > 1 ? 1 : 0 ))

# Certificates (self-signed, made by our own tool).
"$BIN/ringedge-bench" cert --out "$OUT/pki" --names localhost,127.0.0.1 >/dev/null
cat "$OUT/pki/cert.pem" "$OUT/pki/key.pem" > "$OUT/pki/combined.pem"

# Below the kernel's ephemeral range (32768-60999), so no outgoing connection holds it.
ORIGIN_PORT=20051
RE_PORT=8443
RE_LOWLAT_PORT=8446
NGINX_PORT=8444
HAP_PORT=8445

if [ "$ORIGIN" != ringedge ]; then
    nagle=(); [ "$ORIGIN" = tonic-nagle ] && nagle=(--nagle)
    taskset -c "$LOAD_CPU" "$BIN/tonic-origin" --listen "127.0.0.1:$ORIGIN_PORT" --threads 1 \
        "${nagle[@]}" >"$OUT/origin.log" 2>&1 &
else
    taskset -c "$LOAD_CPU" "$BIN/ringedge-bench" origin --listen "127.0.0.1:$ORIGIN_PORT" --shards 1 \
        >"$OUT/origin.log" 2>&1 &
fi
PIDS+=($!)

taskset -c "$PROXY_CPU" "$BIN/ringedge" proxy --listen "127.0.0.1:$RE_PORT" \
    --cert "$OUT/pki/cert.pem" --key "$OUT/pki/key.pem" \
    --origin "h2c://127.0.0.1:$ORIGIN_PORT" --shards 1 >"$OUT/ringedge.log" 2>&1 &
RE_PID=$!
PIDS+=($RE_PID)

# The same proxy with the low-latency setting (`[server] spin_before_park_us = 300`: a shard
# that runs out of work polls for 300 µs before it sleeps), measured in the `lowlat` runs only.
"$BIN/ringedge" proxy --listen "127.0.0.1:$RE_LOWLAT_PORT" \
    --cert "$OUT/pki/cert.pem" --key "$OUT/pki/key.pem" \
    --origin "h2c://127.0.0.1:$ORIGIN_PORT" --shards 1 --print-config \
    | sed 's/^spin_before_park_us = .*/spin_before_park_us = 300/' >"$OUT/ringedge-lowlat.toml"
grep -q '^spin_before_park_us = 300$' "$OUT/ringedge-lowlat.toml" \
    || { echo "could not set spin_before_park_us in $OUT/ringedge-lowlat.toml" >&2; exit 1; }
taskset -c "$PROXY_CPU" "$BIN/ringedge" run --config "$OUT/ringedge-lowlat.toml" \
    >"$OUT/ringedge-lowlat.log" 2>&1 &
RE_LOWLAT_PID=$!
PIDS+=($RE_LOWLAT_PID)

mkdir -p "$OUT/nginx"
cat >"$OUT/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
error_log $OUT/nginx/error.log warn;
pid $OUT/nginx/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $OUT/nginx;
    upstream origin { server 127.0.0.1:$ORIGIN_PORT; keepalive 64; keepalive_requests 1000000; }
    server {
        listen 127.0.0.1:$NGINX_PORT ssl http2;
        ssl_certificate $OUT/pki/cert.pem;
        ssl_certificate_key $OUT/pki/key.pem;
        http2_max_concurrent_streams 256;
        keepalive_requests 1000000;
        client_max_body_size 0;          # 1 MiB streaming messages exceed nginx's 1m default
        location / { grpc_pass grpc://origin; }
    }
}
EOF
taskset -c "$PROXY_CPU" "$NGINX" -c "$OUT/nginx/nginx.conf" >"$OUT/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
PIDS+=($NGINX_PID)

cat >"$OUT/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4000
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend fe
    bind 127.0.0.1:$HAP_PORT ssl crt $OUT/pki/combined.pem alpn h2
    default_backend be
backend be
    http-reuse always
    server origin 127.0.0.1:$ORIGIN_PORT proto h2
EOF
taskset -c "$PROXY_CPU" "$HAPROXY" -f "$OUT/haproxy.cfg" >"$OUT/haproxy.log" 2>&1 &
HAP_PID=$!
PIDS+=($HAP_PID)

wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "port $1 did not open" >&2
    return 1
}
for p in $ORIGIN_PORT $RE_PORT $RE_LOWLAT_PORT $NGINX_PORT $HAP_PORT; do wait_port "$p"; done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run NAME URL PID KIND: one measured run; writes $OUT/NAME-KIND-rROUND.json
run_one() {
    local name=$1 url=$2 pid=$3 kind=$4 round=$5
    local json="$OUT/$name-$kind-r$round.json"
    local args=(--duration "${DURATION}s" --warmup 1s --shards 1 --no-progress --json "$json")
    case "$url" in https://*) args+=(--insecure) ;; esac
    case "$kind" in
        closed) args+=(--connections "$CONNS" --streams "$STREAMS") ;;
        open) args+=(--connections "$CONNS" --streams "$STREAMS" --rate "$RATE") ;;
        single) args+=(--connections 1 --streams 1) ;;
        # The client polls 100 µs before it sleeps (the same for every peer); ringedge is the
        # instance with spin_before_park_us = 300.
        lowlat) args+=(--connections 1 --streams 1 --spin-us 100) ;;
        stream) args+=(--connections 1 --streams 4 --call bidi --size 1048576) ;;
    esac
    # A polling client shares CPU 1 with the origin: at nice 19 it yields to the origin at once
    # instead of holding the CPU until the scheduler's tick (direct p99 126 -> ~30 µs).
    local nice=()
    [ "$kind" = lowlat ] && nice=(nice -n 19)
    local before=0 after=0
    [ "$pid" != 0 ] && before=$(cpu_ticks "$pid")
    "${nice[@]}" taskset -c "$LOAD_CPU" "$BIN/ringedge-bench" load "$url" "${args[@]}" >"$json.log" 2>&1 \
        || echo "warning: $name $kind run failed (see $json.log)" >&2
    [ "$pid" != 0 ] && after=$(cpu_ticks "$pid")
    echo "$name $kind $round $before $after" >>"$OUT/cpu.txt"
}

PATH_="/helloworld.Greeter/SayHello"
declare -A URL=(
    [direct]="h2c://127.0.0.1:$ORIGIN_PORT$PATH_"
    [ringedge]="https://127.0.0.1:$RE_PORT$PATH_"
    [nginx]="https://127.0.0.1:$NGINX_PORT$PATH_"
    [haproxy]="https://127.0.0.1:$HAP_PORT$PATH_"
)
declare -A PID=([direct]=0 [ringedge]=$RE_PID [nginx]=$NGINX_PID [haproxy]=$HAP_PID)
PEERS=(direct ringedge nginx haproxy)

: >"$OUT/cpu.txt"
for round in $(seq 1 "$ROUNDS"); do
    # Interleave: rotate the order every round.
    shift_by=$(( (round - 1) % ${#PEERS[@]} ))
    order=("${PEERS[@]:$shift_by}" "${PEERS[@]:0:$shift_by}")
    for kind in $KINDS; do
        for name in "${order[@]}"; do
            echo "round $round/$ROUNDS: $name $kind"
            url=${URL[$name]}; pid=${PID[$name]}
            if [ "$kind" = lowlat ] && [ "$name" = ringedge ]; then
                url="https://127.0.0.1:$RE_LOWLAT_PORT$PATH_"; pid=$RE_LOWLAT_PID
            fi
            run_one "$name" "$url" "$pid" "$kind" "$round"
        done
    done
done

# h2load reference (closed loop, same concurrency, one thread) straight at the origin.
python3 - "$OUT" <<'EOF'
import struct, sys
# A SayHello request: gRPC 5-byte prefix + protobuf field 1 (name) = "world".
msg = b"\x0a\x05world"
open(sys.argv[1] + "/grpc-body.bin", "wb").write(b"\x00" + struct.pack(">I", len(msg)) + msg)
EOF
taskset -c "$LOAD_CPU" h2load -n 200000 -c "$CONNS" -m "$STREAMS" -t 1 \
    -d "$OUT/grpc-body.bin" -H 'content-type: application/grpc' -H 'te: trailers' \
    "http://127.0.0.1:$ORIGIN_PORT$PATH_" >"$OUT/h2load-direct.txt" 2>&1 || true

# h2load_phase TAG CALLS [H2LOAD ARGS...]: h2load through each proxy (TLS, same concurrency, one
# thread), interleaved rounds like the runs above; the proxy's CPU ticks and the calls that
# succeeded go to $OUT/cpu-TAG.txt, h2load's output to $OUT/TAG-NAME-rROUND.txt.
h2load_phase() {
    local tag=$1 calls=$2; shift 2
    : >"$OUT/cpu-$tag.txt"
    for round in $(seq 1 "$ROUNDS"); do
        for name in ringedge nginx haproxy; do
            local port=${URL[$name]#https://127.0.0.1:}; port=${port%%/*}
            local log="$OUT/$tag-$name-r$round.txt" before after ok
            before=$(cpu_ticks "${PID[$name]}")
            taskset -c "$LOAD_CPU" h2load -n "$calls" -c "$CONNS" -m "$STREAMS" -t 1 "$@" \
                -d "$OUT/grpc-body.bin" -H 'content-type: application/grpc' -H 'te: trailers' \
                "https://127.0.0.1:$port$PATH_" >"$log" 2>&1 || true
            after=$(cpu_ticks "${PID[$name]}")
            ok=$(sed -n 's/.* \([0-9]*\) succeeded.*/\1/p' "$log")
            echo "$name $round $before $after ${ok:-0}" >>"$OUT/cpu-$tag.txt"
        done
    done
}

# Closed loop: the proxy's CPU per call under an independent load generator. CPU time comes in
# 10 ms ticks: 80,000 calls per second of --duration keeps one tick under 0.5% of a run.
h2load_phase h2load $(( DURATION * 80000 ))

# At a fixed offered rate (h2load --rps, per connection): closed loop, a faster proxy also gets
# more calls per wake-up (more batching, less CPU per call), so this is the comparison at the
# same offered load (DESIGN §6). h2load's rate timer ticks every 10 ms, so each connection sends
# its calls in bursts of rate/100 (the same for every proxy).
h2load_phase h2load-rate $(( DURATION * H2LOAD_RATE )) --rps $(( H2LOAD_RATE / CONNS ))

CLK_TCK=$(getconf CLK_TCK)
python3 "$ROOT/scripts/bench_report.py" "$OUT" "$CLK_TCK" \
    "origin=$ORIGIN rounds=$ROUNDS duration=${DURATION}s rate=$RATE h2load_rate=$H2LOAD_RATE conns=$CONNS streams=$STREAMS proxy_cpu=$PROXY_CPU load_cpu=$LOAD_CPU" \
    "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "results: $OUT/results.md (plot: $OUT/throughput.svg)"
cat "$OUT/results.md"
