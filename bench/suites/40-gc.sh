#!/usr/bin/env bash
# GC workloads x collectors (dunegc through gc/bdw, Boehm stop-the-world and incremental,
# jemalloc, glibc malloc) at equal heap limits: results/gc/<platform-id>/ (runs.json, CSVs,
# summary, plots).
# Run by scripts/bench.sh; DUNEGC_QUICK=1 runs the quick sizes, 2 repetitions.
# See docs/workloads.md.
set -euo pipefail
: "${DUNEGC_ROOT:?run through scripts/bench.sh}" "${DUNEGC_BUILD:?}" "${DUNEGC_RESULTS:?}"
args=(--build "$DUNEGC_BUILD" --results "$DUNEGC_RESULTS")
if [[ "${DUNEGC_QUICK:-0}" == 1 ]]; then
  args+=(--quick)
fi
exec "${PYTHON:-/usr/bin/python3}" "$DUNEGC_ROOT/bench/gc/gc_driver.py" "${args[@]}"
