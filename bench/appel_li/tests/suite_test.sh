#!/usr/bin/env bash
# appel_li.suite: bench/suites/10-appel-li.sh --quick writes <platform-id>.json and the
# chart as PNG and SVG, as scripts/bench.sh would run it (into a scratch results dir).
set -euo pipefail
root=$1
build=$2
python=/usr/bin/python3 # Debian's, with matplotlib (scripts/bench.sh uses the same)
if ! "$python" -c 'import matplotlib' 2>/dev/null; then
  echo "SKIPPED: $python has no matplotlib (install python3-matplotlib: scripts/deps.sh)"
  exit 0
fi
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
DUNEGC_ROOT=$root DUNEGC_BUILD=$build DUNEGC_RESULTS=$results DUNEGC_QUICK=1 PYTHON=$python \
  bash "$root/bench/suites/10-appel-li.sh" >"$results/log" 2>&1 || { cat "$results/log"; exit 1; }
id=$("$build/libdune/dune-platform" --id)
for f in "$id.json" "$id.png" "$id.svg"; do
  [[ -s "$results/appel_li/$f" ]] || { cat "$results/log"; echo "missing $f"; exit 1; }
done
ls "$results/appel_li"
[[ -z "$(ls -A "$results/appel_li" | grep -v "^$id\.")" ]] || { echo "stray files left"; exit 1; }
echo "appel_li.suite: ok ($id)"
