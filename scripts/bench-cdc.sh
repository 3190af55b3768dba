#!/usr/bin/env bash
# Reproduces the "Change data capture" section of docs/benchmarks.md with a release build of
# sluice: one broker (fsync per produce, as by default), one `sluice connect` worker and a real
# PostgreSQL (Debian's package, wal_level=logical, synchronous_commit on so the WAL sender sees
# each commit at once, fsync off: the database's own disk time is not what is measured). scripts/lib/bench_cdc.py measures the snapshot rate, the streaming
# rate and the commit → consumer latency under pgbench single-row updates, REPEATS times.
#
#   SLUICE=$CARGO_TARGET_DIR/release/sluice scripts/bench-cdc.sh
#   (optional: ROWS=500000 RATE=1000 DURATION_S=20 REPEATS=3 OUT=bench-cdc-results,
#    CONNECT_ARGS="--connect-kafka linger.ms=0" for more arguments of the worker)
set -euo pipefail

S=${SLUICE:?set SLUICE to a release build of the sluice binary}
ROWS=${ROWS:-500000}
RATE=${RATE:-1000}
DURATION_S=${DURATION_S:-20}
REPEATS=${REPEATS:-3}
OUT=${OUT:-bench-cdc-results}
BROKER_PORT=${BROKER_PORT:-19892}
CONNECT_PORT=${CONNECT_PORT:-18883}
PYTHON=${PYTHON:-$(dirname "${BASH_SOURCE[0]}")/../.venv/bin/python}
BENCH_DATA=${DATA:-/var/tmp/bench-cdc-$$}
CONNECT_PID=

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
ensure_debian_packages postgresql
[ -x "$PYTHON" ] || die "no Python venv at $PYTHON: run scripts/test.sh once (it creates .venv)"
mkdir -p "$OUT" "$BENCH_DATA"

stop_all() {
    if [ -n "$CONNECT_PID" ]; then
        kill "$CONNECT_PID" 2>/dev/null || true
        wait "$CONNECT_PID" 2>/dev/null || true
    fi
    CONNECT_PID=
    bench_stop_broker
}
trap 'stop_all; rm -rf "$BENCH_DATA"' EXIT
# Everything printed also goes to the results file (the loop stays in this shell, so the trap
# sees the processes it started).
exec > >(tee "$OUT/cdc.txt")

for r in $(seq 1 "$REPEATS"); do
    echo "== repeat $r: $ROWS rows, latency at $RATE updates/s for $DURATION_S s"
    bench_start_broker "$S" "$BROKER_PORT" "$OUT/broker-$r.log"
    "$S" connect --listen "127.0.0.1:$CONNECT_PORT" -b "127.0.0.1:$BROKER_PORT" \
        --connect-group-id "bench-$r" ${CONNECT_ARGS:-} >"$OUT/connect-$r.log" 2>&1 &
    CONNECT_PID=$!
    wait_for_port "$CONNECT_PORT" "$OUT/connect-$r.log"
    "$PYTHON" "$(dirname "${BASH_SOURCE[0]}")/lib/bench_cdc.py" "127.0.0.1:$BROKER_PORT" \
        "http://127.0.0.1:$CONNECT_PORT" "$ROWS" "$RATE" "$DURATION_S" "$BENCH_DATA"
    stop_all
done
