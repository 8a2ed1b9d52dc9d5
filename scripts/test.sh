#!/usr/bin/env bash
# The default test suite on a fresh machine: install Debian dependencies, configure, build,
# run every test except the opt-in `slow` label. Extra arguments go to ctest
# (e.g. scripts/test.sh -L unit, scripts/test.sh -R dune_vm).
# PRESET=debug runs the sanitizer build instead (its test preset also leaves out `qemu`).
set -euo pipefail
cd "$(dirname "$0")/.."
PRESET=${PRESET:-default}

scripts/deps.sh
cmake --preset "$PRESET"
cmake --build --preset "$PRESET" -j "$(nproc)"
exec ctest --preset "$PRESET" -j "$(nproc)" "$@"
