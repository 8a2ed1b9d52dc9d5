#!/bin/sh
# dropin_test.sh CLIENT DROPIN_DIR
# CLIENT is linked against Debian's Boehm libgc.so.1. Run it on Boehm, then with dunegc-bdw's
# libgc.so.1 found first through LD_LIBRARY_PATH, then loaded through LD_PRELOAD: each run
# must pass the client's own checks, and the dunegc runs must show they ran on dunegc
# (its libgc.so.1 is the one mapped, and DUNEGC_STATS=1 prints its report at exit).
set -eu
client=$1
dir=$2
if ldd "$client" | grep -q 'libasan'; then
  echo "SKIPPED: sanitizer build: an instrumented libgc.so.1 cannot be preloaded into the uninstrumented client"
  exit 0
fi
fail() { echo "dropin_test: $*" >&2; exit 1; }

ldd "$client" | grep -Eq 'libgc.so.1 => /(usr/)?lib/' || fail "client is not linked against the system's libgc.so.1"
out=$(DUNEGC_STATS=1 "$client" 2>&1) || fail "client failed on Boehm: $out"
echo "on Boehm:"
echo "$out" | sed 's/^/  /'
echo "$out" | grep -Eq '^libgc: /(usr/)?lib/.*libgc.so.1' || fail "did not run on Boehm's libgc.so.1"
echo "$out" | grep -q 'dunegc:' && fail "dunegc output without dunegc"

for how in LD_LIBRARY_PATH LD_PRELOAD; do
  if [ "$how" = LD_LIBRARY_PATH ]; then
    out=$(LD_LIBRARY_PATH="$dir" DUNEGC_STATS=1 "$client" 2>&1) || fail "client failed with $how: $out"
  else
    out=$(LD_PRELOAD="$dir/libgc.so.1" DUNEGC_STATS=1 "$client" 2>&1) || fail "client failed with $how: $out"
  fi
  echo "with $how=$dir:"
  echo "$out" | sed 's/^/  /'
  echo "$out" | grep -q "^libgc: $dir/libgc.so.1" || fail "$how: dunegc-bdw's libgc.so.1 is not the one mapped"
  echo "$out" | grep -Eq '^dunegc: [0-9]+ collections' || fail "$how: no dunegc statistics at exit"
done
