#!/usr/bin/env python3
"""Summarises a scripts/bench-peers.sh run: medians over rounds per peer and run kind.

usage: bench_report.py OUT_DIR CLK_TCK SETTINGS COMMIT

Reads OUT_DIR/<peer>-<kind>-r<round>.json (ringedge-bench/1 JSON reports) and OUT_DIR/cpu.txt
("peer kind round ticks_before ticks_after" of the proxy process), writes OUT_DIR/results.md,
OUT_DIR/results.json and OUT_DIR/throughput.svg. Proxy CPU per call counts warm-up calls too,
since the proxy's CPU ticks include them.
"""
import json
import os
import platform
import re
import statistics
import sys

out, clk_tck, settings, commit = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
PEERS = ["direct", "ringedge", "nginx", "haproxy"]
KINDS = ["closed", "open", "single", "lowlat", "stream"]

cpu = {}
with open(os.path.join(out, "cpu.txt")) as f:
    for line in f:
        parts = line.split()
        if len(parts) == 5:
            peer, kind, rnd, before, after = parts
            cpu[(peer, kind, rnd)] = (int(after) - int(before)) / clk_tck

runs = {}
pat = re.compile(r"^(\w+)-(\w+)-r(\d+)\.json$")
for name in os.listdir(out):
    m = pat.match(name)
    if not m:
        continue
    peer, kind, rnd = m.groups()
    try:
        with open(os.path.join(out, name)) as f:
            report = json.load(f)
    except (OSError, ValueError):
        continue
    req = report["requests"]
    calls = req["completed"] + req.get("warmup_excluded", 0)
    cpu_s = cpu.get((peer, kind, rnd))
    lat = report["latency_us"]["corrected"]
    runs.setdefault((peer, kind), []).append(
        {
            "rps": report["throughput_rps"],
            "ok": req["ok"],
            "errors": req["errors"],
            "cpu_us_per_call": (cpu_s * 1e6 / calls) if (cpu_s is not None and calls and peer != "direct") else None,
            "p50": lat["p50"],
            "p99": lat["p99"],
            "p99_9": lat["p99_9"],
        }
    )


def med(peer, kind, key):
    vals = [r[key] for r in runs.get((peer, kind), []) if r[key] is not None]
    return statistics.median(vals) if vals else None


def fmt(v, nd=1):
    return "—" if v is None else f"{v:,.{nd}f}"


rows = []
summary = {}
for peer in PEERS:
    s = {
        "rps_closed": med(peer, "closed", "rps"),
        "cpu_us_per_call": med(peer, "closed", "cpu_us_per_call"),
        "open_p50_us": med(peer, "open", "p50"),
        "open_p99_us": med(peer, "open", "p99"),
        "open_p99_9_us": med(peer, "open", "p99_9"),
        "single_p50_us": med(peer, "single", "p50"),
        "single_p99_us": med(peer, "single", "p99"),
        "lowlat_p50_us": med(peer, "lowlat", "p50"),
        "lowlat_p99_us": med(peer, "lowlat", "p99"),
        "stream_msgs_per_s": med(peer, "stream", "rps"),
        "errors": sum(r["errors"] for k in KINDS for r in runs.get((peer, k), [])),
    }
    s["stream_mb_per_s"] = None if s["stream_msgs_per_s"] is None else s["stream_msgs_per_s"] * 1048576 / 1e6
    summary[peer] = s
    rows.append(
        f"| {peer} | {fmt(s['rps_closed'], 0)} | {fmt(s['cpu_us_per_call'], 2)} | "
        f"{fmt(s['open_p50_us'], 0)} / {fmt(s['open_p99_us'], 0)} / {fmt(s['open_p99_9_us'], 0)} | "
        f"{fmt(s['single_p50_us'], 0)} / {fmt(s['single_p99_us'], 0)} | "
        f"{fmt(s['lowlat_p50_us'], 0)} / {fmt(s['lowlat_p99_us'], 0)} | {fmt(s['stream_mb_per_s'], 1)} | {s['errors']} |"
    )

ratios = []
re_cpu = summary["ringedge"]["cpu_us_per_call"]
for peer in ("haproxy", "nginx"):
    other = summary[peer]["cpu_us_per_call"]
    if re_cpu and other:
        ratios.append(f"- ringedge CPU per call = {re_cpu / other:.2f} x {peer}'s")
    o_rps, r_rps = summary[peer]["rps_closed"], summary["ringedge"]["rps_closed"]
    if o_rps and r_rps:
        ratios.append(f"- ringedge closed-loop calls/s = {r_rps / o_rps:.2f} x {peer}'s")

h2load = ""
try:
    with open(os.path.join(out, "h2load-direct.txt")) as f:
        m = re.search(r"finished in .*?, ([\d.]+) req/s", f.read())
        if m:
            h2load = m.group(1)
except OSError:
    pass
if h2load and summary["direct"]["rps_closed"]:
    ratios.append(
        f"- ringedge-bench load vs h2load -t1, direct to the origin, same concurrency: "
        f"{summary['direct']['rps_closed'] / float(h2load):.2f} x ({summary['direct']['rps_closed']:,.0f} vs {float(h2load):,.0f} req/s)"
    )

def h2load_cpu(name):
    """Median proxy CPU µs per call by peer, from a bench-peers h2load phase's cpu-NAME.txt."""
    per_peer = {}
    try:
        with open(os.path.join(out, f"cpu-{name}.txt")) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 5 and int(parts[4]) > 0:
                    peer, _, before, after, ok = parts
                    per_peer.setdefault(peer, []).append((int(after) - int(before)) / clk_tck * 1e6 / int(ok))
    except OSError:
        pass
    return {p: statistics.median(v) for p, v in per_peer.items()}


# h2load through each proxy, closed loop and at a fixed offered rate (h2load --rps): proxy CPU
# per call, medians over rounds.
h2l_med = h2load_cpu("h2load")
h2r_med = h2load_cpu("h2load-rate")
rate_setting = re.search(r"h2load_rate=(\d+)", settings)
conc = f"{os.environ.get('CONNS', '16')}x{os.environ.get('STREAMS', '32')}"
for label, med in (
    (f"under h2load (TLS, {conc})", h2l_med),
    (f"under h2load at a fixed {int(rate_setting.group(1)) if rate_setting else 0:,} calls/s offered (--rps)", h2r_med),
):
    for peer in ("haproxy", "nginx"):
        if med.get("ringedge") and med.get(peer):
            ratios.append(
                f"- {label}: ringedge CPU per call "
                f"{med['ringedge']:.2f} µs = {med['ringedge'] / med[peer]:.2f} x {peer}'s ({med[peer]:.2f} µs)"
            )

cpu_model = ""
try:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
except OSError:
    pass

md = [
    "# ringedge vs peers",
    "",
    f"- machine: {platform.node()} · {cpu_model} · {os.cpu_count()} CPUs · kernel {platform.release()}",
    f"- commit: {commit}",
    f"- settings: {settings}",
    "- medians over interleaved rounds; latency from intended send time (open loop), µs",
    "",
    "- 1 stream, low latency: the client polls 100 µs before sleeping (`--spin-us 100`, at nice 19 so the"
    " origin on its CPU preempts it at once; every peer);"
    " ringedge runs with `spin_before_park_us = 300`; nginx and HAProxy as configured above (HAProxy's"
    " `busy-polling` never stops spinning and would take the shared proxy CPU from the other peers)",
    "",
    "| peer | calls/s (closed loop) | proxy CPU µs/call | open-loop p50 / p99 / p99.9 | 1 stream p50 / p99 | 1 stream, low latency p50 / p99 | bidi 1 MiB MB/s | errors |",
    "|---|---|---|---|---|---|---|---|",
    *rows,
    "",
    *ratios,
    "",
]
with open(os.path.join(out, "results.md"), "w") as f:
    f.write("\n".join(md))
with open(os.path.join(out, "results.json"), "w") as f:
    json.dump({"commit": commit, "settings": settings, "cpu_model": cpu_model, "kernel": platform.release(), "peers": summary, "h2load_cpu_us_per_call": h2l_med, "h2load_rate_cpu_us_per_call": h2r_med}, f, indent=2)

# A small bar chart of proxy CPU per call and closed-loop throughput.
w, h, pad = 640, 300, 50
bars = [(p, summary[p]["cpu_us_per_call"]) for p in PEERS if summary[p]["cpu_us_per_call"]]
top = max([v for _, v in bars] + [1.0])
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
       f'<text x="{w/2}" y="20" text-anchor="middle" font-size="14">proxy CPU per unary call (µs, lower is better)</text>',
       f'<line x1="{pad}" y1="{h-pad}" x2="{w-pad}" y2="{h-pad}" stroke="black"/>']
bw = (w - 2 * pad) / max(len(bars), 1)
for i, (peer, v) in enumerate(bars):
    bh = (h - 2 * pad) * v / top
    x = pad + i * bw + bw * 0.15
    svg.append(f'<rect x="{x:.1f}" y="{h-pad-bh:.1f}" width="{bw*0.7:.1f}" height="{bh:.1f}" fill="#4a7ab5"/>')
    svg.append(f'<text x="{x+bw*0.35:.1f}" y="{h-pad-bh-4:.1f}" text-anchor="middle">{v:.2f}</text>')
    svg.append(f'<text x="{x+bw*0.35:.1f}" y="{h-pad+16:.1f}" text-anchor="middle">{peer}</text>')
svg.append("</svg>")
with open(os.path.join(out, "throughput.svg"), "w") as f:
    f.write("\n".join(svg))
