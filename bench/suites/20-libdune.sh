#!/usr/bin/env bash
# libdune micro-benchmarks (the Dune paper's table): getpid, kernel page fault, user page
# fault (trap), syscall interception vs. ptrace, each in normal and in Dune mode.
# Writes results/libdune/<platform-id>.json and its plot (PNG and SVG).
set -euo pipefail
: "${DUNEGC_ROOT:?}" "${DUNEGC_BUILD:?}" "${DUNEGC_RESULTS:?}"
PYTHON=${PYTHON:-/usr/bin/python3}
out=$DUNEGC_RESULTS/libdune
mkdir -p "$out"
id=$("$DUNEGC_BUILD/libdune/dune-platform" --id)
args=(--json "$out/$id.json")
[[ "${DUNEGC_QUICK:-0}" == 1 ]] && args+=(--quick)
echo "libdune: micro-benchmarks on $id -> $out/$id.json"
"$DUNEGC_BUILD/libdune/dune-bench" "${args[@]}"
"$PYTHON" "$DUNEGC_ROOT/libdune/bench/plot_dune_bench.py" "$out/$id.json" "$out/$id"
echo "libdune: plot $out/$id.png (and .svg)"
