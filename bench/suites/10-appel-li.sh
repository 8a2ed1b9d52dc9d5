#!/usr/bin/env bash
# Suite 10: the Appel & Li virtual-memory primitives for every paging backend.
# Writes results/appel_li/<platform-id>.json and its bar chart (.png, .svg).
# Environment (from scripts/bench.sh): DUNEGC_ROOT, DUNEGC_BUILD, DUNEGC_RESULTS,
# DUNEGC_QUICK (1 = short run), PYTHON (a python3 with matplotlib).
set -euo pipefail
bin=$DUNEGC_BUILD/workloads/appel_li/appel-li
out=$DUNEGC_RESULTS/appel_li
mkdir -p "$out"
args=()
if [[ "${DUNEGC_QUICK:-0}" == 1 ]]; then args+=(--quick); fi

# Measure into a temporary file first, so a failed run never replaces a good result.
tmp=$(mktemp "$out/.run.XXXXXX.json")
trap 'rm -f "$tmp"' EXIT
echo "appel-li: measuring every available backend${args:+ (quick)}; progress:"
"$bin" "${args[@]}" --json "$tmp"
id=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["platform"]["id"])' "$tmp")
chmod 644 "$tmp"
mv "$tmp" "$out/$id.json"
echo "appel-li: wrote $out/$id.json"
"$PYTHON" "$DUNEGC_ROOT/bench/appel_li/plot.py" "$out/$id.json" "$out/$id"
