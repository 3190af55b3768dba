#!/usr/bin/env bash
# Reproduces the "Schema registry" section of docs/benchmarks.md with a release build of sluice:
# one broker and one registry on loopback, one AVRO, one PROTOBUF and one JSON schema
# registered, then `wrk` (2 threads, 32 connections) against
#   1. GET /schemas/ids/{id}                       (served from a pre-rendered body),
#   2. POST /subjects/{s}            (lookup of a registered schema, parsed per request),
#   3. POST /subjects/{s}/versions   (re-registration of a known schema, answered without a write),
# for each format where it applies, REPEATS times interleaved; prints req/s and latency lines.
# wrk comes from Debian's `wrk` package (installed when missing).
#
#   SLUICE=$CARGO_TARGET_DIR/release/sluice scripts/bench-registry.sh
#   (optional: DATA=/var/tmp/bench-registry OUT=bench-registry-results REPEATS=3 DURATION=10s)
set -euo pipefail

S=${SLUICE:?set SLUICE to a release build of the sluice binary}
DATA=${DATA:-/var/tmp/bench-registry-$$}
OUT=${OUT:-bench-registry-results}
REPEATS=${REPEATS:-3}
DURATION=${DURATION:-10s}
BROKER_PORT=${BROKER_PORT:-19692}
REGISTRY_PORT=${REGISTRY_PORT:-18681}
R=http://127.0.0.1:$REGISTRY_PORT
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
"$S" registry --listen "127.0.0.1:$REGISTRY_PORT" -b "127.0.0.1:$BROKER_PORT" >"$OUT/registry.log" 2>&1 &
PIDS+=($!)
wait_for_port "$REGISTRY_PORT" "$OUT/registry.log"

# The request bodies, as JSON files wrk's script sends.
cat >"$OUT/avro.json" <<'EOF'
{"schema":"{\"type\":\"record\",\"name\":\"User\",\"namespace\":\"bench\",\"fields\":[{\"name\":\"id\",\"type\":\"string\"},{\"name\":\"age\",\"type\":\"int\"},{\"name\":\"email\",\"type\":[\"null\",\"string\"],\"default\":null}]}"}
EOF
cat >"$OUT/protobuf.json" <<'EOF'
{"schemaType":"PROTOBUF","schema":"syntax = \"proto3\";\npackage bench;\nimport \"google/protobuf/timestamp.proto\";\nmessage User {\n  string id = 1;\n  int32 age = 2;\n  optional string email = 3;\n  google.protobuf.Timestamp created = 4;\n}\n"}
EOF
cat >"$OUT/json.json" <<'EOF'
{"schemaType":"JSON","schema":"{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\",\"minimum\":0},\"email\":{\"type\":\"string\"}},\"required\":[\"id\"]}"}
EOF
cat >"$OUT/post.lua" <<'EOF'
local body_file = os.getenv("BODY")
local f = assert(io.open(body_file, "r"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/vnd.schemaregistry.v1+json"
EOF

declare -A ID
for fmt in avro protobuf json; do
    ID[$fmt]=$(curl -sf -X POST -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
        --data @"$OUT/$fmt.json" "$R/subjects/bench-$fmt/versions" | sed 's/.*"id":\([0-9]*\).*/\1/')
    echo "registered $fmt as id ${ID[$fmt]}" >&2
done

run() { # name, then wrk arguments
    local name=$1
    shift
    local text
    text=$(wrk -t2 -c32 -d"$DURATION" --latency "$@")
    printf '%s\n' "$text" >>"$OUT/$name.txt"
    printf '%-28s %12s req/s   p50 %-9s p99 %s\n' "$name" \
        "$(sed -n 's/^Requests\/sec: *//p' <<<"$text")" \
        "$(awk '$1 == "50%" { print $2 }' <<<"$text")" \
        "$(awk '$1 == "99%" { print $2 }' <<<"$text")"
}

for i in $(seq "$REPEATS"); do
    echo "--- round $i ($(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg))"
    for fmt in avro protobuf json; do
        run "get-id-$fmt" "$R/schemas/ids/${ID[$fmt]}"
    done
    for fmt in avro protobuf json; do
        BODY="$OUT/$fmt.json" run "lookup-$fmt" -s "$OUT/post.lua" "$R/subjects/bench-$fmt"
        BODY="$OUT/$fmt.json" run "reregister-$fmt" -s "$OUT/post.lua" "$R/subjects/bench-$fmt/versions"
    done
done
