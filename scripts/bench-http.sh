#!/usr/bin/env bash
# Reproduces the "HTTP ingestion" section of docs/benchmarks.md with a release build of sluice:
# one broker (fsync per produce, as by default) and one `sluice http` on loopback, a 6-partition
# topic, then `wrk` POSTing 100 events of ~1 KB JSON per request (REST Proxy v2, json format)
# with 1, 4, 16 and 32 connections, REPEATS times. Beside it, in the same run, the floors: the
# disk's fsync time and librdkafka itself (confluent-kafka, same producer settings) producing the
# same 100-record batch and waiting for every acknowledgement.
#
#   SLUICE=$CARGO_TARGET_DIR/release/sluice scripts/bench-http.sh
#   (optional: DATA=/var/tmp/bench-http OUT=bench-http-results REPEATS=3 DURATION=15s)
set -euo pipefail

S=${SLUICE:?set SLUICE to a release build of the sluice binary}
DATA=${DATA:-/var/tmp/bench-http-$$}
OUT=${OUT:-bench-http-results}
REPEATS=${REPEATS:-3}
DURATION=${DURATION:-15s}
BROKER_PORT=${BROKER_PORT:-19792}
HTTP_PORT=${HTTP_PORT:-18782}
PYTHON=${PYTHON:-$(dirname "${BASH_SOURCE[0]}")/../.venv/bin/python}
PIDS=()

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
ensure_debian_packages wrk curl
mkdir -p "$OUT" "$DATA"

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$DATA"
}
trap cleanup EXIT

"$S" broker --listen "127.0.0.1:$BROKER_PORT" --data-dir "$DATA/broker" >"$OUT/broker.log" 2>&1 &
PIDS+=($!)
wait_for_port "$BROKER_PORT" "$OUT/broker.log"
"$S" http --listen "127.0.0.1:$HTTP_PORT" -b "127.0.0.1:$BROKER_PORT" \
    --registry-url http://127.0.0.1:9 >"$OUT/http.log" 2>&1 &
PIDS+=($!)
wait_for_port "$HTTP_PORT" "$OUT/http.log"
"$S" topic create clicks -b "127.0.0.1:$BROKER_PORT" --partitions 6 >/dev/null

# 100 events of ~970 bytes each, keyed by user.
python3 - "$OUT/body.json" <<'PY'
import json, sys
pad = "x" * 900
records = [{"key": f"user-{i}", "value": {"page": "/checkout", "user": f"user-{i}", "ts": 1764547200000 + i,
                                          "pad": pad}} for i in range(100)]
open(sys.argv[1], "w").write(json.dumps({"records": records}))
PY
cat >"$OUT/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/vnd.kafka.json.v2+json"
local f = io.open("$OUT/body.json", "r")
wrk.body = f:read("*a")
f:close()
LUA
# Warm up: the proxy's producer and metadata exist before the measured runs.
curl -sf -XPOST -H 'Content-Type: application/vnd.kafka.json.v2+json' --data @"$OUT/body.json" \
    "http://127.0.0.1:$HTTP_PORT/topics/clicks" >/dev/null

for r in $(seq 1 "$REPEATS"); do
    for c in 1 4 16 32; do
        echo "== repeat $r, $c connections (x100 events per request)"
        wrk -t1 -c"$c" -d"$DURATION" --latency -s "$OUT/post.lua" "http://127.0.0.1:$HTTP_PORT/topics/clicks" |
            grep -E "50%|99%|Requests/sec|Non-2xx"
    done
done | tee "$OUT/wrk.txt"

if [ -x "$PYTHON" ]; then
    "$PYTHON" - "127.0.0.1:$BROKER_PORT" "$OUT/body.json" "$DATA/fsync.probe" <<'PY' | tee "$OUT/floors.txt"
import json, os, statistics, sys, time
from confluent_kafka import Producer
bootstrap, body, probe = sys.argv[1:4]
fd = os.open(probe, os.O_WRONLY | os.O_CREAT, 0o644)
ts = []
for _ in range(200):
    os.write(fd, b"x" * 4096)
    t = time.perf_counter(); os.fsync(fd); ts.append(time.perf_counter() - t)
os.close(fd)
print(f"fsync of 4 KiB: p50 {statistics.median(ts) * 1e3:.2f} ms")
p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 1,
              "compression.type": "lz4", "partitioner": "murmur2_random"})
recs = [(r["key"].encode(), json.dumps(r["value"], separators=(",", ":")).encode())
        for r in json.load(open(body))["records"]]
lat = []
for _ in range(300):
    t = time.perf_counter()
    for k, v in recs:
        p.produce("clicks", v, k)
    p.flush(10)
    lat.append(time.perf_counter() - t)
lat = sorted(lat[20:])
print(f"librdkafka alone, the same 100 records, acks=all, one batch at a time: p50 {statistics.median(lat) * 1e3:.2f} ms,"
      f" p99 {lat[int(len(lat) * 0.99)] * 1e3:.2f} ms")
PY
fi

