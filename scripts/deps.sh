#!/usr/bin/env bash
# Install everything dunegc builds, tests and benchmarks with -- from Debian's packages only.
# Idempotent: when all is present it only says so (one dpkg-query, well under a second).
set -euo pipefail

PACKAGES=(
  # build tools
  build-essential cmake ninja-build pkg-config git
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # baselines: Boehm GC 8.2 and jemalloc
  libgc-dev libjemalloc-dev
  # kmod/ (kbuild against Debian's 6.1 headers) and the QEMU TCG test bed
  linux-headers-amd64 linux-image-amd64 qemu-system-x86 busybox-static cpio xz-utils
  # plots
  python3 python3-matplotlib
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [[ "$status" == installed ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "deps: all ${#PACKAGES[@]} Debian packages present"
  exit 0
fi

echo "deps: installing from Debian: ${missing[*]}"
SUDO=()
if ((EUID != 0)); then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "deps: error: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! "${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
  echo "deps: install failed; refreshing package lists and retrying"
  "${SUDO[@]}" apt-get update
  "${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi
echo "deps: done"
