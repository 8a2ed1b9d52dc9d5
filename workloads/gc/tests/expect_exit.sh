#!/usr/bin/env bash
# expect_exit.sh STATUS PATTERN COMMAND...
# Passes when COMMAND exits with STATUS and its output (stdout + stderr) contains PATTERN:
# for tests of failures that must happen, and happen for the stated reason.
set -uo pipefail
if (($# < 3)); then
  echo "usage: expect_exit.sh STATUS PATTERN COMMAND..." >&2
  exit 2
fi
want=$1 pattern=$2
shift 2
out=$("$@" 2>&1)
got=$?
printf '%s\n' "$out"
if ((got != want)); then
  echo "expect_exit: '$*' exited with $got, expected $want" >&2
  exit 1
fi
if [[ "$out" != *"$pattern"* ]]; then
  echo "expect_exit: output of '$*' lacks '$pattern'" >&2
  exit 1
fi
echo "expect_exit: exit status $got and '$pattern' as expected"
