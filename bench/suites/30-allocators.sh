#!/usr/bin/env bash
# Allocator suite: dunegc's explicit-free heap (allocators/) against jemalloc and glibc
# malloc on manual-memory workloads (bench/allocators/alloc_bench.cc). Writes
# $DUNEGC_RESULTS/allocators/<platform-id>.json and <platform-id>.png/.svg.
# Environment (set by scripts/bench.sh): DUNEGC_ROOT DUNEGC_BUILD DUNEGC_RESULTS
# DUNEGC_QUICK (1: short runs) PYTHON (an interpreter with matplotlib).
set -euo pipefail
: "${DUNEGC_ROOT:?}" "${DUNEGC_BUILD:?}" "${DUNEGC_RESULTS:?}"
PYTHON=${PYTHON:-/usr/bin/python3}
QUICK=${DUNEGC_QUICK:-0}

out=$DUNEGC_RESULTS/allocators
mkdir -p "$out"
id=$("$DUNEGC_BUILD/libdune/dune-platform" --id)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

workloads=(churn-small churn-mixed churn-large trees threads-4 producer-consumer)
allocators=(dunegc jemalloc glibc)
flags=(--reps 7)
((QUICK)) && flags=(--quick --reps 3)

total=$((${#workloads[@]} * ${#allocators[@]}))
n=0
for w in "${workloads[@]}"; do
  for a in "${allocators[@]}"; do
    n=$((n + 1))
    printf '  [%2d/%d] ' "$n" "$total"
    "$DUNEGC_BUILD/bench/allocators/alloc-bench-$a" --workload "$w" "${flags[@]}" --json "$tmp/$w-$a.json"
  done
done
"$PYTHON" "$DUNEGC_ROOT/bench/allocators/report.py" --out "$out/$id.json" --plot "$out/$id" "$tmp"/*.json
