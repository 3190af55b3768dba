#!/usr/bin/env bash
# Reproduces the "Broker hot path" section of docs/benchmarks.md: two broker builds (BEFORE and
# AFTER, e.g. the previous release and this one) measured side by side with the same bench
# client, runs interleaved (every case with BEFORE, then with AFTER, REPEATS times), a fresh
# broker and data directory per run, and the disk's own costs measured in the same session:
#   - raw fsync: 200 × (4 KB write + fdatasync) in the data directory (the bench's
#     --fsync-baseline), the floor of what durability can cost per acknowledgement;
#   - a plain loop of 1 MB write + fdatasync (python, 200 MB): CPU per MB the kernel alone
#     spends to write and sync data, the floor of broker CPU per produced MB.
# Cases: e2e latency 1 KB at 500 msg/s with --fsync always and --fsync interval (their p50
# difference is the cost of durability), e2e 100 KB at 100 msg/s; throughput 1 KB acks=all
# linger 5 ms with one consumer reading everything back from the page cache (broker user and
# system CPU per MB for each phase); consuming from 1 vs 1,000 partitions.
#
#   BEFORE=/path/to/old/sluice AFTER=$CARGO_TARGET_DIR/release/sluice scripts/bench-hotpath.sh
#   (optional: DATA=/var/tmp/bench-hot OUT=bench-hot-results PORT=19692 REPEATS=3)
# Prints a Markdown summary of medians (per-run values in brackets).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

BEFORE=${BEFORE:?set BEFORE to the baseline sluice binary}
AFTER=${AFTER:?set AFTER to the sluice binary under test}
DATA=${DATA:-/var/tmp/bench-hot-$$}
OUT=${OUT:-bench-hot-results}
PORT=${PORT:-19692}
REPEATS=${REPEATS:-3}
B=127.0.0.1:$PORT
BENCH_DATA=$DATA

mkdir -p "$OUT" "$DATA"

# CPU ms per MB of a plain 1 MB write + fdatasync loop in the data directory.
write_sync_floor() {
    python3 - "$DATA/.write-sync-probe" <<'PY'
import os, resource, sys, time
path, mb = sys.argv[1], 200
chunk = os.urandom(1 << 20)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
before, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
for _ in range(mb):
    os.write(fd, chunk)
    os.fdatasync(fd)
after, t1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
os.close(fd)
os.unlink(path)
per_mb = lambda a, b: (b - a) * 1e3 / (mb * 1.048576)
print('{"user_ms_per_mb": %.4f, "system_ms_per_mb": %.4f, "mb_per_sec": %.1f}' % (
    per_mb(before.ru_utime, after.ru_utime), per_mb(before.ru_stime, after.ru_stime),
    mb * 1.048576 / (t1 - t0)))
PY
}

trap bench_stop_broker EXIT

# run BUILD CASE REP FSYNC bench-args... : one bench run on a fresh broker of BUILD.
run() {
    local build=$1 name=$2 rep=$3 fsync=$4 bin
    shift 4
    bin=$BEFORE
    [ "$build" = after ] && bin=$AFTER
    bench_start_broker "$bin" "$PORT" "$OUT/broker-$build-$name-$rep.log" --fsync "$fsync" \
        --segment-bytes 268435456
    log "$build $name run $rep"
    # The client is always AFTER's bench, so only the broker differs.
    "$AFTER" bench "$@" -b "$B" --quiet --fsync-baseline "$DATA" \
        --json "$OUT/$build-$name-$rep.json" >"$OUT/$build-$name-$rep.md"
    bench_stop_broker
}

for rep in $(seq "$REPEATS"); do
    write_sync_floor >"$OUT/floor-$rep.json"
    for build in before after; do
        run "$build" e2e-1k-always "$rep" always e2e --sizes 1KB --rate 500 --duration 15s --warmup 2s
        run "$build" e2e-1k-interval "$rep" interval e2e --sizes 1KB --rate 500 --duration 15s --warmup 2s
        run "$build" e2e-100k "$rep" always e2e --sizes 100KB --rate 100 --duration 15s --warmup 2s
        run "$build" tput "$rep" always throughput --size 1KB --consumers 1 --duration 10s \
            --warmup 2s --linger-ms 5 --acks all
        run "$build" parts "$rep" always throughput --size 1KB --consumers 1 --duration 6s \
            --warmup 1s --linger-ms 5 --acks all --partitions-sweep 1,1000
    done
done

python3 - "$OUT" "$REPEATS" <<'PY'
import json, statistics, sys
out, reps = sys.argv[1], int(sys.argv[2])
load = lambda name: [json.load(open(f"{out}/{name}-{i}.json")) for i in range(1, reps + 1)]
med = lambda xs: statistics.median(xs) if xs else float("nan")
fmt = lambda xs, d=3: ", ".join(f"{x:.{d}f}" for x in xs)
cell = lambda xs, d=3: f"{med(xs):.{d}f} [{fmt(xs, d)}]"

floors = load("floor")
print(f"## Broker hot path: before vs after (medians of {reps} runs; per-run values in brackets)\n")
print("Disk floors measured in the same session: plain 1 MB write+fdatasync loop "
      f"user {cell([f['user_ms_per_mb'] for f in floors])} ms/MB, "
      f"system {cell([f['system_ms_per_mb'] for f in floors])} ms/MB, "
      f"{cell([f['mb_per_sec'] for f in floors], 0)} MB/s.\n")

print("| case | build | e2e p50 ms | e2e p99 ms | ack p50 ms | raw 4 KB fsync p50 ms |")
print("|---|---|---:|---:|---:|---:|")
e2e = {}
for case in ["e2e-1k-always", "e2e-1k-interval", "e2e-100k"]:
    for build in ["before", "after"]:
        runs = load(f"{build}-{case}")
        rows = [r["rows"][0] for r in runs]
        p50 = [x["e2e"]["p50_ms"] for x in rows]
        e2e[(case, build)] = (p50, [r["fsync_baseline"]["p50_ms"] for r in runs])
        print(f"| {case} | {build} | {cell(p50)} | {cell([x['e2e']['p99_ms'] for x in rows])} "
              f"| {cell([x['ack']['p50_ms'] for x in rows])} "
              f"| {cell([r['fsync_baseline']['p50_ms'] for r in runs])} |")
print("\n| build | cost of durability (p50 always − p50 interval, per run) ms | ÷ raw fsync p50 |")
print("|---|---:|---:|")
for build in ["before", "after"]:
    (a, fs), (i, _) = e2e[("e2e-1k-always", build)], e2e[("e2e-1k-interval", build)]
    cost = [x - y for x, y in zip(a, i)]
    print(f"| {build} | {cell(cost)} | {cell([c / f for c, f in zip(cost, fs)], 2)} |")

print("\n| build | produce MB/s | broker user ms/MB produced | system ms/MB | total ms/MB "
      "| ÷ write+sync floor | consume MB/s | broker ms/MB consumed (user / system) |")
print("|---|---:|---:|---:|---:|---:|---:|---|")
floor_total = med([f["user_ms_per_mb"] + f["system_ms_per_mb"] for f in floors])
for build in ["before", "after"]:
    runs = [r["runs"][0] for r in load(f"{build}-tput")]
    per = lambda r, phase, key, bytes_key: r[phase][key] * 1e3 / (r[bytes_key]["bytes"] / 1e6)
    u = [per(r, "broker_produce", "user_cpu_secs", "produce") for r in runs]
    s = [per(r, "broker_produce", "system_cpu_secs", "produce") for r in runs]
    t = [a + b for a, b in zip(u, s)]
    cu = [per(r, "broker_consume", "user_cpu_secs", "consume") for r in runs]
    cs = [per(r, "broker_consume", "system_cpu_secs", "consume") for r in runs]
    print(f"| {build} | {cell([r['produce']['mb_per_sec'] for r in runs], 0)} | {cell(u)} | "
          f"{cell(s)} | {cell(t)} | {med(t) / floor_total:.2f} | "
          f"{cell([r['consume']['mb_per_sec'] for r in runs], 0)} | "
          f"{med([a + b for a, b in zip(cu, cs)]):.3f} ({med(cu):.3f} / {med(cs):.3f}) |")

print("\n| build | consume MB/s, 1 partition | 1,000 partitions | ratio |")
print("|---|---:|---:|---:|")
for build in ["before", "after"]:
    runs = load(f"{build}-parts")
    one = [r["runs"][0]["consume"]["mb_per_sec"] for r in runs]
    many = [r["runs"][1]["consume"]["mb_per_sec"] for r in runs]
    print(f"| {build} | {cell(one, 0)} | {cell(many, 0)} | {med(many) / med(one):.0%} |")
PY
