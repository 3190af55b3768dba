#!/usr/bin/env bash
# Reproduces the "SASL and client quotas" section of docs/benchmarks.md with a release build:
#   1. produce throughput (1 KB records, acks=all, 10 s) and
#   2. e2e latency (1 KB at 1,000 msg/s, acks=all, 20 s)
# over the PLAINTEXT listener, over a SASL_PLAINTEXT listener with SCRAM-SHA-512, with 1,000
# client-quota entities configured that do not match the bench client, and with those plus a
# generous default quota that does match it (so every request is counted against a quota).
# Every run gets a fresh broker and data directory, runs are interleaved (all cases once, then
# again, REPEATS times), and each is bracketed by the dd fsync baseline. Prints medians.
#
#   SLUICE=$CARGO_TARGET_DIR/release/sluice scripts/bench-security.sh
#   (optional: DATA=/var/tmp/bench-sec OUT=bench-security-results PORT=19692 REPEATS=3)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

S=${SLUICE:?set SLUICE to a release build of the sluice binary}
DATA=${DATA:-/var/tmp/bench-sec-$$}
OUT=${OUT:-bench-security-results}
PORT=${PORT:-19692}
SASL_PORT=$((PORT + 1))
REPEATS=${REPEATS:-3}
B=127.0.0.1:$PORT
BENCH_DATA=$DATA

mkdir -p "$OUT" "$DATA"
trap bench_stop_broker EXIT

SASL_CLIENT=(-X security.protocol=sasl_plaintext -X sasl.mechanism=SCRAM-SHA-512
    -X sasl.username=bench -X sasl.password=bench-password)

# Case set-up, on a running broker.
setup_case() {
    case $1 in
    sasl)
        "$S" user add bench --password bench-password -b "$B" >/dev/null
        ;;
    quotas1000 | quotas1000-applied)
        # 1,000 entities like a multi-team cluster has: users, client ids, user+client pairs.
        for i in $(seq 0 333); do
            "$S" quota set --user "team-$i" --producer-byte-rate 10485760 -b "$B" >/dev/null
            "$S" quota set --client-id "svc-$i" --consumer-byte-rate 10485760 -b "$B" >/dev/null
            "$S" quota set --user "team-$i" --client-id "svc-$i" --request-percentage 50 -b "$B" >/dev/null
        done
        if [ "$1" = quotas1000-applied ]; then
            # Far above what the bench sends: counted on every request, never throttled.
            "$S" quota set --user-default --producer-byte-rate 10000000000 \
                --consumer-byte-rate 10000000000 -b "$B" >/dev/null
        fi
        ;;
    esac
}

# run CASE KIND REP bench-args...
run() {
    local case=$1 kind=$2 rep=$3 name bootstrap=$B extra=()
    shift 3
    name="$kind-$case"
    bench_start_broker "$S" "$PORT" "$OUT/broker-$name-$rep.log" --sasl-listen "127.0.0.1:$SASL_PORT"
    wait_for_port "$SASL_PORT" "$OUT/broker-$name-$rep.log"
    setup_case "$case"
    if [ "$case" = sasl ]; then
        bootstrap=127.0.0.1:$SASL_PORT
        extra=("${SASL_CLIENT[@]}")
    fi
    bench_measure "$OUT" "$name-$rep" "$S" "$bootstrap" "$@" "${extra[@]}"
    bench_stop_broker
}

TPUT=(throughput --size 1KB --consumers 0 --duration 10s --warmup 2s)
E2E=(e2e --sizes 1KB --rate 1000 --duration 20s --warmup 2s)
CASES=(plain sasl quotas1000 quotas1000-applied)

for rep in $(seq "$REPEATS"); do
    for c in "${CASES[@]}"; do
        run "$c" tput "$rep" "${TPUT[@]}"
        run "$c" e2e "$rep" "${E2E[@]}"
    done
done

python3 - "$OUT" "$REPEATS" "${CASES[@]}" <<'PY'
import json, statistics, sys
out, reps, cases = sys.argv[1], int(sys.argv[2]), sys.argv[3:]

def load(name):
    return [json.load(open(f"{out}/{name}-{i}.json")) for i in range(1, reps + 1)]

def med(xs):
    return statistics.median(xs)

def fmt(xs, d=3):
    return ", ".join(f"{x:.{d}f}" for x in xs)

print(f"| case | produce MB/s | vs plain | broker CPU ms/MB | e2e p50 ms | e2e p99 ms | vs plain p50 | raw fsync p50 ms |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
base = {}
for c in cases:
    t = load(f"tput-{c}")
    e = load(f"e2e-{c}")
    mbs = [r["runs"][0]["produce"]["mb_per_sec"] for r in t]
    cpu = [r["runs"][0].get("broker_cpu_ms_per_mb") or float("nan") for r in t]
    p50 = [r["rows"][0]["e2e"]["p50_ms"] for r in e]
    p99 = [r["rows"][0]["e2e"]["p99_ms"] for r in e]
    fs = [r["fsync_baseline"]["p50_ms"] for r in e]
    if not base:
        base = {"mbs": med(mbs), "p50": med(p50)}
    print(f"| {c} | {med(mbs):.1f} [{fmt(mbs, 1)}] | {med(mbs) / base['mbs']:.0%} | {med(cpu):.2f} "
          f"| {med(p50):.3f} [{fmt(p50)}] | {med(p99):.3f} [{fmt(p99)}] | {med(p50) / base['p50']:.2f}x "
          f"| {med(fs):.3f} |")
PY
