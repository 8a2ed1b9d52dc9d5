#!/usr/bin/env bash
# The main job on a fresh machine: install Debian dependencies, configure and build the
# release preset, run every benchmark suite (bench/suites/*.sh, in order), which write
# results/ and regenerate the plots.
#   scripts/bench.sh            full suites
#   scripts/bench.sh --quick    every suite in its short form (minutes), for a smoke run
#   scripts/bench.sh NAME...    only the suites whose file name contains NAME
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

QUICK=0
filters=()
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    -*) echo "bench: unknown option $a" >&2; exit 2 ;;
    *) filters+=("$a") ;;
  esac
done

scripts/deps.sh
cmake --preset release
cmake --build --preset release -j "$(nproc)"

export DUNEGC_ROOT=$ROOT
export DUNEGC_BUILD=$ROOT/build/release
export DUNEGC_RESULTS=$ROOT/results
export DUNEGC_QUICK=$QUICK
export PYTHON=/usr/bin/python3 # Debian's, with python3-matplotlib (not a pyenv shim)

shopt -s nullglob
suites=(bench/suites/*.sh)
ran=0
for s in "${suites[@]}"; do
  name=$(basename "$s" .sh)
  if ((${#filters[@]})); then
    match=0
    for f in "${filters[@]}"; do [[ "$name" == *"$f"* ]] && match=1; done
    ((match)) || continue
  fi
  echo "=== bench: $name $( ((QUICK)) && echo '(quick)')"
  start=$SECONDS
  bash "$s"
  echo "=== bench: $name done in $((SECONDS - start)) s"
  ran=$((ran + 1))
done
if ((ran == 0)); then
  echo "bench: no suite matched (suites: ${suites[*]:-none yet})"
fi
