#!/bin/sh
# symbols_test.sh DROPIN_LIB BOEHM_LIB BOEHM_INCLUDE_DIR
# The drop-in exports every symbol of Boehm's libgc.so.1 that an installed Boehm header
# declares (so every program built against Boehm loads and links), data symbols with
# Boehm's sizes (programs hold copy relocations of them), and nothing but GC_* names.
set -eu
ours=$1
boehm=$2
incdir=$3
defined() { nm -D --defined-only "$1" | awk '{print $3}' | sort -u; }
missing=0
checked=0
for s in $(defined "$boehm" | grep '^GC_'); do  # not _end: the linker's, of Boehm's own image
  grep -qw "$s" "$incdir"/gc/*.h || continue      # Boehm-internal (GC_arrays, ...)
  checked=$((checked + 1))
  if ! defined "$ours" | grep -qx "$s"; then
    echo "missing: $s"
    missing=$((missing + 1))
  fi
done
[ "$missing" -eq 0 ] || { echo "symbols_test: $missing of $checked declared symbols missing" >&2; exit 1; }
extra=$(defined "$ours" | grep -v '^GC_' || true)
[ -z "$extra" ] || { echo "symbols_test: exports beyond GC_*: $extra" >&2; exit 1; }
# Data symbols: type and size as in Boehm's library.
nm -D -S --defined-only "$boehm" | awk 'NF == 4 && $3 ~ /[BDR]/ {print $4, $2}' | sort >/tmp/symbols_test.$$.boehm
nm -D -S --defined-only "$ours" | awk 'NF == 4 && $3 ~ /[BDR]/ {print $4, $2}' | sort >/tmp/symbols_test.$$.ours
bad=$(join /tmp/symbols_test.$$.boehm /tmp/symbols_test.$$.ours | awk '$2 != $3')
rm -f /tmp/symbols_test.$$.boehm /tmp/symbols_test.$$.ours
[ -z "$bad" ] || { echo "symbols_test: data symbol sizes differ (name boehm ours): $bad" >&2; exit 1; }
echo "all $checked declared symbols of $(basename "$boehm") exported by $ours; only GC_* exported; data sizes match"
