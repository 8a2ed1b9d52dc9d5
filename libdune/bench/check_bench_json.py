#!/usr/bin/env python3
"""Checks a dune-bench result file: platform object, four benchmarks, each with Linux
figures and either Dune figures with their ratio or the reason Dune mode was skipped."""
import json
import sys

d = json.load(open(sys.argv[1]))
assert d["platform"]["id"] and d["platform"]["virt"], d["platform"]
names = [b["name"] for b in d["benchmarks"]]
assert names == ["getpid", "page_fault", "trap", "syscall_trap"], names
skipped = "skipped" in d["dune_mode"]
for b in d["benchmarks"]:
    assert b["linux"]["median"] > 0 and b["linux"]["reps"] > 0, b
    if skipped:
        assert b["dune"] is None and b["dune_over_linux"] is None, b
    else:
        assert b["dune"]["median"] > 0, b
        assert abs(b["dune_over_linux"] - b["dune"]["median"] / b["linux"]["median"]) < 1e-6, b
if skipped:  # valid, but Dune mode was not measured: ctest reports the test as skipped
    print("SKIPPED:", d["dune_mode"]["skipped"])
    sys.exit(0)
print("ok:", ", ".join(f"{b['name']} {b['dune_over_linux'] or '-'}" for b in d["benchmarks"]))
