#!/usr/bin/env bash
# check_install.sh BUILD_DIR [MODULE=SOURCE ...]
# Installs BUILD_DIR into a fresh empty prefix, then for each MODULE=SOURCE builds SOURCE as an
# outside program would -- cc SOURCE $(pkg-config --cflags --libs MODULE) -- and runs it; last,
# configures a CMake project that uses find_package(dunegc) and links every exported target.
set -euo pipefail
build=$1
shift
prefix=$(mktemp -d /tmp/dunegc-install.XXXXXX)
work=$(mktemp -d /tmp/dunegc-consumer.XXXXXX)
trap 'rm -rf "$prefix" "$work"' EXIT

cmake --install "$build" --prefix "$prefix" >"$work/install.log" || {
  cat "$work/install.log"; echo "install into empty prefix $prefix failed" >&2; exit 1; }
echo "installed $(find "$prefix" -type f | wc -l) files into an empty prefix"

pcdir=$(dirname "$(find "$prefix" -name '*.pc' -print -quit 2>/dev/null || true)")
export PKG_CONFIG_PATH=${pcdir:-$prefix/lib/pkgconfig}
for pair in "$@"; do
  module=${pair%%=*}
  src=${pair#*=}
  flags=$(pkg-config --cflags --libs "$module") || { echo "pkg-config: no module $module" >&2; exit 1; }
  case "$src" in
    *.c) cc=cc ;;
    *) cc=c++ ;;
  esac
  echo "+ $cc $(basename "$src") $flags"
  # shellcheck disable=SC2086
  "$cc" -o "$work/$module-smoke" "$src" $flags
  "$work/$module-smoke" >"$work/$module.out" || { cat "$work/$module.out"; echo "$module smoke failed" >&2; exit 1; }
  echo "  ran: $(head -c 200 "$work/$module.out" | tr '\n' ' ')"
done

# find_package consumer: link every library the package exports.
mkdir -p "$work/cmake-consumer"
targets=$(sed -n 's/^add_library(\(dunegc::[A-Za-z0-9_-]*\) .*/\1/p' \
          "$(find "$prefix" -name dunegcTargets.cmake -print -quit)" | tr '\n' ' ')
cat >"$work/cmake-consumer/CMakeLists.txt" <<CML
cmake_minimum_required(VERSION 3.25)
project(consumer C)
find_package(dunegc REQUIRED)
add_executable(consumer main.c)
target_link_libraries(consumer PRIVATE $targets)
CML
echo 'int main(void) { return 0; }' >"$work/cmake-consumer/main.c"
cmake -S "$work/cmake-consumer" -B "$work/cmake-consumer/build" -DCMAKE_PREFIX_PATH="$prefix" \
  >"$work/consumer.log" 2>&1 && cmake --build "$work/cmake-consumer/build" >>"$work/consumer.log" 2>&1 \
  && "$work/cmake-consumer/build/consumer" || { cat "$work/consumer.log"; echo "find_package(dunegc) consumer failed" >&2; exit 1; }
echo "find_package(dunegc) consumer linked: $targets"
