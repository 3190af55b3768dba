#!/usr/bin/env bash
# Reproduces the "Partition rebalancer" section of docs/benchmarks.md: proposal time and peak
# memory of `sluice balance` for generated clusters of 30 brokers / 10,000 partitions,
# 90 / 100,000 and 215 / 930,000 (≈ 2.8 M replicas, Cruise Control's 95-minute case from
# cruise-control#1592), all goals in Cruise Control's default order, with the greedy baseline's
# balance reported beside each. Each size runs REPEATS times (the generator is deterministic);
# the JSON of the last run is kept and the median time printed.
#
#   SLUICE=$CARGO_TARGET_DIR/release/sluice scripts/bench-balancer.sh
#   (optional: OUT=docs/benchmarks/balancer REPEATS=3)
set -euo pipefail

S=${SLUICE:?set SLUICE to a release build of the sluice binary}
OUT=${OUT:-bench-balancer-results}
REPEATS=${REPEATS:-3}
mkdir -p "$OUT"

run_size() { # name brokers partitions topics [extra args]
    local name=$1 brokers=$2 partitions=$3 topics=$4
    shift 4
    local times=()
    for _ in $(seq "$REPEATS"); do
        "$S" balance bench --brokers "$brokers" --partitions "$partitions" --topics "$topics" "$@" \
            >"$OUT/$name.json"
        times+=("$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["propose_ms"])' "$OUT/$name.json")")
    done
    printf '%s: proposal ms %s (median %s)\n' "$name" "${times[*]}" \
        "$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((REPEATS + 1) / 2))p")"
}

run_size 30-10k 30 10000 300
run_size 90-100k 90 100000 1000
# 930,000 × 3 / 215 ≈ 13,000 replicas per broker: above Cruise Control's default
# max.replicas.per.broker of 10,000, so the limit is raised as such a cluster's would be.
run_size 215-930k 215 930000 5000 --max-replicas-per-broker 20000
