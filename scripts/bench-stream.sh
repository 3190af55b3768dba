#!/usr/bin/env bash
# Reproduces the "Streaming SDK" section of docs/benchmarks.md with a release build of sluice:
# one broker and the moto AWS server (SQS, Kinesis), `sluice stream run` pipelines between them.
# scripts/lib/bench_stream.py measures, REPEATS times, the fan-out throughput of 1 KB events
# (Kafka alone, then Kafka + SQS + Kinesis), the time of one request per destination, the
# Kafka copy's end-to-end latency with and without the AWS destinations, and the pipeline's
# memory while SQS is down for OUTAGE_S seconds.
#
#   SLUICE=$CARGO_TARGET_DIR/release/sluice scripts/bench-stream.sh
#   (optional: EVENTS=20000 AWS_EVENTS=2000 OUTAGE_S=60 REPEATS=3 OUT=bench-stream-results,
#    OUTAGE_ONLY=1 for the outage measurement alone)
set -euo pipefail

S=${SLUICE:?set SLUICE to a release build of the sluice binary}
EVENTS=${EVENTS:-20000}
OUTAGE_S=${OUTAGE_S:-60}
REPEATS=${REPEATS:-3}
OUT=${OUT:-bench-stream-results}
BROKER_PORT=${BROKER_PORT:-19992}
PYTHON=${PYTHON:-$(dirname "${BASH_SOURCE[0]}")/../.venv/bin/python}
BENCH_DATA=${DATA:-/var/tmp/bench-stream-$$}

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
[ -x "$PYTHON" ] || die "no Python venv at $PYTHON: run scripts/test.sh once (it creates .venv)"
mkdir -p "$OUT" "$BENCH_DATA"
trap 'bench_stop_broker; rm -rf "$BENCH_DATA"' EXIT
exec > >(tee "$OUT/stream.txt")

for r in $(seq 1 "$REPEATS"); do
    echo "== repeat $r: $EVENTS events of 1 KB, outage $OUTAGE_S s"
    bench_start_broker "$S" "$BROKER_PORT" "$OUT/broker-$r.log"
    "$PYTHON" "$(dirname "${BASH_SOURCE[0]}")/lib/bench_stream.py" "$S" "127.0.0.1:$BROKER_PORT" \
        "$EVENTS" "$OUTAGE_S" "$OUT" "$r"
    bench_stop_broker
done
