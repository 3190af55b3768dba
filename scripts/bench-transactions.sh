#!/usr/bin/env bash
# Reproduces the "Transactions" section of docs/benchmarks.md with a release build of sluice:
#   1. produce throughput, 1 KB records, acks=all: plain vs idempotent (not transactional) vs
#      transactional producers committing every 10,000, 100 and 1 records (commit timings come
#      with the transactional runs);
#   2. e2e latency at 100 msg/s, 1 KB: transactions of 1 record read with read_committed and
#      with read_uncommitted, and a plain acks=all producer for reference.
# Every run gets a fresh broker and data directory (so no run inherits another's page cache or
# segments), runs are interleaved (all cases once, then again, REPEATS times), and each run is
# bracketed by the `dd oflag=dsync` fsync baseline of docs/benchmarks.md; the bench itself also
# times 200 raw 4 KB write+fdatasync pairs in the data directory before it starts
# (--fsync-baseline) and reports commit latency in those fsyncs. Prints a summary of medians.
#
#   SLUICE=$CARGO_TARGET_DIR/release/sluice scripts/bench-transactions.sh
#   (optional: DATA=/var/tmp/bench-txn OUT=bench-txn-results PORT=19592 REPEATS=3)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

S=${SLUICE:?set SLUICE to a release build of the sluice binary}
DATA=${DATA:-/var/tmp/bench-txn-$$}
OUT=${OUT:-bench-txn-results}
PORT=${PORT:-19592}
REPEATS=${REPEATS:-3}
B=127.0.0.1:$PORT
BENCH_DATA=$DATA

mkdir -p "$OUT" "$DATA"

trap bench_stop_broker EXIT

# run NAME REP bench-args... : one bench run on a fresh broker, JSON and table into $OUT.
run() {
    local name=$1 rep=$2
    shift 2
    bench_start_broker "$S" "$PORT" "$OUT/broker-$name-$rep.log"
    bench_measure "$OUT" "$name-$rep" "$S" "$B" "$@"
    bench_stop_broker
}

TPUT=(throughput --size 1KB --consumers 0 --duration 10s --warmup 2s)
E2E=(e2e --sizes 1KB --rate 100 --duration 20s --warmup 2s)

for rep in $(seq "$REPEATS"); do
    run tput-plain "$rep" "${TPUT[@]}"
    run tput-idempotent "$rep" "${TPUT[@]}" -X enable.idempotence=true
    run tput-txn10000 "$rep" "${TPUT[@]}" --transaction-size 10000
    run tput-txn100 "$rep" "${TPUT[@]}" --transaction-size 100
    run tput-txn1 "$rep" "${TPUT[@]}" --transaction-size 1
    run e2e-plain "$rep" "${E2E[@]}"
    run e2e-txn1-uncommitted "$rep" "${E2E[@]}" --transaction-size 1 --isolation read_uncommitted
    run e2e-txn1-committed "$rep" "${E2E[@]}" --transaction-size 1 --isolation read_committed
done

python3 - "$OUT" "$REPEATS" <<'EOF'
import json, statistics, sys
out, reps = sys.argv[1], int(sys.argv[2])

def load(name):
    runs = []
    for i in range(1, reps + 1):
        with open(f"{out}/{name}-{i}.json") as f:
            r = json.load(f)
        with open(f"{out}/{name}-{i}.dd.json") as f:
            r["dd"] = json.load(f)
        runs.append(r)
    return runs

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")

def fmt(xs, digits=3):
    return ", ".join(f"{x:.{digits}f}" if x is not None else "–" for x in xs)

print("## Throughput, 1 KB, acks=all (medians of", reps, "runs; per-run values in brackets)\n")
print("| producer | MB/s | vs plain | commit p50 ms | commit p99 ms | flush p50 ms | EndTxn p50 ms | txn p50 ms | commit p50 in fsyncs | EndTxn p50 in fsyncs | raw fsync p50 ms | dd fsync ms (before/after) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
plain = None
for name in ["tput-plain", "tput-idempotent", "tput-txn10000", "tput-txn100", "tput-txn1"]:
    runs = load(name)
    mbs = [r["runs"][0]["produce"]["mb_per_sec"] for r in runs]
    if plain is None:
        plain = med(mbs)
    txn = [r["runs"][0].get("txn") for r in runs]
    get = lambda key, p: [t[key][p] if t else None for t in txn]
    ratio = lambda key: [t[key] if t else None for t in txn]
    fs = [r["fsync_baseline"]["p50_ms"] for r in runs]
    dd = [f'{r["dd"]["before_ms"]}/{r["dd"]["after_ms"]}' for r in runs]
    print(f"| {name} | {med(mbs):.1f} [{fmt(mbs, 1)}] | {med(mbs) / plain:.0%} "
          f"| {med(get('commit', 'p50_ms')):.3f} [{fmt(get('commit', 'p50_ms'))}] "
          f"| {med(get('commit', 'p99_ms')):.3f} | {med(get('flush', 'p50_ms')):.3f} "
          f"| {med(get('end_txn', 'p50_ms')):.3f} [{fmt(get('end_txn', 'p50_ms'))}] "
          f"| {med(get('total', 'p50_ms')):.3f} "
          f"| {med(ratio('commit_p50_fsyncs')):.2f} [{fmt(ratio('commit_p50_fsyncs'), 2)}] "
          f"| {med(ratio('end_txn_p50_fsyncs')):.2f} [{fmt(ratio('end_txn_p50_fsyncs'), 2)}] "
          f"| {med(fs):.3f} [{fmt(fs)}] | {', '.join(dd)} |")

print("\n## e2e latency, 1 KB at 100 msg/s (medians of", reps, "runs; per-run values in brackets)\n")
print("| producer / consumer | e2e p50 ms | e2e p99 ms | ack p50 ms | commit p50 ms | EndTxn p50 ms | raw fsync p50 ms | received/sent |")
print("|---|---:|---:|---:|---:|---:|---:|---|")
for name in ["e2e-plain", "e2e-txn1-uncommitted", "e2e-txn1-committed"]:
    runs = load(name)
    rows = [r["rows"][0] for r in runs]
    p50 = [x["e2e"]["p50_ms"] for x in rows]
    p99 = [x["e2e"]["p99_ms"] for x in rows]
    ack = [x["ack"]["p50_ms"] for x in rows]
    commit = [x["txn"]["commit"]["p50_ms"] if x.get("txn") else None for x in rows]
    end_txn = [x["txn"]["end_txn"]["p50_ms"] if x.get("txn") else None for x in rows]
    fs = [r["fsync_baseline"]["p50_ms"] for r in runs]
    got = ", ".join(f'{x["received"]}/{x["sent"]}' for x in rows)
    print(f"| {name} | {med(p50):.3f} [{fmt(p50)}] | {med(p99):.3f} [{fmt(p99)}] "
          f"| {med(ack):.3f} [{fmt(ack)}] | {med(commit):.3f} [{fmt(commit)}] "
          f"| {med(end_txn):.3f} [{fmt(end_txn)}] "
          f"| {med(fs):.3f} [{fmt(fs)}] | {got} |")
EOF
