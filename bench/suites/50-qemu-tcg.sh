#!/usr/bin/env bash
# Suite 50: dune-bench and appel-li inside QEMU TCG (emulated AMD SVM + nested paging), on
# libdune's kmod backend (dune.ko loaded) and on its kvm backend (kvm-amd loaded) -- two
# boots, since dune.ko refuses to load while KVM is in use (docs/kmod.md). A functional
# record (virt=tcg: the benchmarks ran on emulated hardware), not a speed claim.
# Writes results/libdune/tcg-<backend>-<vendor>-<n>cpu.json and
# results/appel_li/tcg-<backend>-<vendor>-<n>cpu.json, each with its plots (PNG and SVG).
# Environment (from scripts/bench.sh): DUNEGC_ROOT, DUNEGC_BUILD, DUNEGC_RESULTS,
# DUNEGC_QUICK (1 = short run), PYTHON (a python3 with matplotlib).
set -euo pipefail
: "${DUNEGC_ROOT:?}" "${DUNEGC_BUILD:?}" "${DUNEGC_RESULTS:?}"
PYTHON=${PYTHON:-/usr/bin/python3}

skip() {
  echo "qemu-tcg: SKIPPED: $*"
  exit 0
}
cache() { sed -n "s|^$1:[A-Z]*=||p" "$DUNEGC_BUILD/CMakeCache.txt" 2>/dev/null; }
kernel=$(cache DUNEGC_QEMU_KERNEL)
kernel=${kernel:-/boot/vmlinuz-6.1.0-56-amd64}
release=${kernel##*/vmlinuz-}
headers=$(cache DUNEGC_KERNEL_HEADERS)
headers=${headers:-/usr/src/linux-headers-$release}
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not found (install qemu-system-x86)"
[[ -r $kernel ]] || skip "kernel image $kernel missing (install linux-image-amd64)"
[[ -f /lib/modules/$release/modules.dep ]] || skip "/lib/modules/$release missing (the guest kernel's modules)"
[[ -f $headers/Makefile ]] || skip "kernel headers $headers missing (install linux-headers-amd64): no dune.ko"

ko=$DUNEGC_BUILD/kmod/kbuild/dune.ko
bins=("$DUNEGC_BUILD/libdune/dune-platform-static" "$DUNEGC_BUILD/libdune/dune-bench-static"
      "$DUNEGC_BUILD/workloads/appel_li/appel-li-static")
for f in "$ko" "${bins[@]}"; do
  [[ -f $f ]] || { echo "qemu-tcg: error: $f is not built (build the release preset)" >&2; exit 1; }
done

# TCG runs ~50-100x slower than the host: the benchmarks' --quick sizes keep a boot to a few
# minutes; the full suite only gives each boot more time.
# The benchmarks' cycle counter reads RDTSCP, which qemu64 leaves out: it is added (TCG
# emulates it).
cpu=qemu64,+svm,+npt,+rdtscp
quick=(--quick)
limit=200
if [[ "${DUNEGC_QUICK:-0}" == 1 ]]; then limit=85; fi
work=$DUNEGC_BUILD/qemu-tcg-bench
mkdir -p "$DUNEGC_RESULTS/libdune" "$DUNEGC_RESULTS/appel_li"

# run_boot BACKEND: one boot with that backend's module; its JSON files land in $work/BACKEND.
run_boot() {
  local backend=$1 mod
  if [[ $backend == kmod ]]; then mod=(--module-file "$ko"); else mod=(--module kvm-amd); fi
  local bargs=() b
  for b in "${bins[@]}"; do bargs+=(--binary "$b"); done
  rm -rf "$work/$backend"
  echo "qemu-tcg: boot with DUNE_BACKEND=$backend (limit ${limit} s)"
  "$PYTHON" "$DUNEGC_ROOT/kmod/qemu/qemu_harness.py" run --name "bench-tcg-$backend" \
    --workdir "$work/boot-$backend" --output-dir "$work/$backend" --kernel "$kernel" \
    --modules-dir "/lib/modules/$release" --cpu "$cpu" --memory 2048 --timeout "$limit" "${mod[@]}" "${bargs[@]}" \
    --command "dune-platform-static --id && dune-platform-static" \
    --command "DUNE_BACKEND=$backend dune-bench-static ${quick[*]} --json \$DUNEGC_OUT/libdune.json" \
    --command "DUNE_BACKEND=$backend appel-li-static ${quick[*]} --json \$DUNEGC_OUT/appel_li.json"
}

# store BACKEND KIND PLOT: checks the platform says tcg, names the file after it and the
# backend (tcg-amd-2cpu -> tcg-kmod-amd-2cpu), plots it.
store() {
  local backend=$1 kind=$2 plot=$3 src id
  src=$work/$backend/$kind.json
  id=$("$PYTHON" - "$src" "$backend" <<'EOF'
import json, sys
path, backend = sys.argv[1], sys.argv[2]
d = json.load(open(path))
p = d["platform"]
if p["virt"] != "tcg":
    sys.exit(f"qemu-tcg: error: {path} says virt={p['virt']} ({p['virt_why']}), not tcg")
# A record without Dune mode would record nothing of the backend: refuse it.
if "dune_mode" in d and d["dune_mode"].get("backend") != backend:
    sys.exit(f"qemu-tcg: error: {path}: Dune mode did not run on {backend}: {d['dune_mode']}")
dune = [b for b in p.get("backends", []) if b["name"] == "dune"]
if "backends" in p and not (dune and dune[0]["available"]):
    sys.exit(f"qemu-tcg: error: {path}: the dune paging backend did not run: {dune}")
print(p["id"])
EOF
)
  local name=${id/#tcg-/tcg-$backend-}
  install -m 644 "$src" "$DUNEGC_RESULTS/$kind/$name.json"
  "$PYTHON" "$DUNEGC_ROOT/$plot" "$DUNEGC_RESULTS/$kind/$name.json" "$DUNEGC_RESULTS/$kind/$name"
  echo "qemu-tcg: wrote $DUNEGC_RESULTS/$kind/$name.json (and .png, .svg)"
}

for backend in kmod kvm; do
  run_boot "$backend"
  store "$backend" libdune libdune/bench/plot_dune_bench.py
  store "$backend" appel_li bench/appel_li/plot.py
done
