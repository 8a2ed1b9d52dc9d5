#!/usr/bin/env bash
# smoke_test.sh BINARY ALLOCATOR: a quick run writes valid JSON naming ALLOCATOR, and a bad
# workload name is refused with an error.
set -euo pipefail
bin=$1
want=$2
json=$(mktemp /tmp/alloc-bench.XXXXXX.json)
trap 'rm -f "$json"' EXIT
"$bin" --workload churn-small --quick --reps 1 --json "$json"
/usr/bin/python3 - "$json" "$want" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["allocator"] == sys.argv[2], d["allocator"]
assert d["ns_per_op"]["median"] > 0 and d["peak_rss_kib"] > 0
assert d["platform"]["id"]
PY
if "$bin" --workload nope 2>/dev/null; then
  echo "an unknown workload was accepted" >&2
  exit 1
fi
