#!/usr/bin/env python3
"""Merge alloc-bench JSON records into one result file and plot them.

usage: report.py --out results/allocators/<id>.json --plot results/allocators/<id> RECORD.json...
Writes the merged JSON (platform once, then one entry per allocator x workload) and
<plot>.png / <plot>.svg: ns per operation by workload (median, p10-p90 whiskers), one bar
per allocator, and peak RSS.
"""
import argparse
import json
import sys

ALLOCATORS = ["dunegc", "jemalloc", "glibc"]
# The suite's order; workloads not listed here follow in the order they appear.
WORKLOADS = ["churn-small", "churn-mixed", "churn-large", "trees", "threads-4", "producer-consumer"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--plot", required=True, help="path without extension")
    ap.add_argument("records", nargs="+")
    a = ap.parse_args()

    runs = []
    for path in a.records:
        try:
            with open(path) as f:
                runs.append(json.load(f))
        except (OSError, ValueError) as e:
            sys.exit(f"report.py: cannot read {path}: {e}")
    platform = runs[0]["platform"]
    seen = [r["workload"] for r in runs]
    workloads = [w for w in WORKLOADS if w in seen]
    for w in seen:
        if w not in workloads:
            workloads.append(w)
    merged = {
        "platform": platform,
        "suite": "allocators",
        "quick": any(r["quick"] for r in runs),
        "unit": "ns per operation (an operation: one malloc+free pair, or one tree node built and freed)",
        "runs": [{k: r[k] for k in r if k != "platform"} for r in runs],
    }
    with open(a.out, "w") as f:
        json.dump(merged, f, indent=1)
        f.write("\n")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = {(r["allocator"], r["workload"]): r for r in runs}
    allocs = [x for x in ALLOCATORS if any(k[0] == x for k in by)]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(10, 8), gridspec_kw={"height_ratios": [3, 2]})
    width = 0.8 / max(1, len(allocs))
    for i, al in enumerate(allocs):
        xs, med, lo, hi, rss = [], [], [], [], []
        for j, w in enumerate(workloads):
            r = by.get((al, w))
            if not r:
                continue
            s = r["ns_per_op"]
            xs.append(j + (i - (len(allocs) - 1) / 2) * width)
            med.append(s["median"])
            lo.append(s["median"] - s["p10"])
            hi.append(s["p90"] - s["median"])
            rss.append(r["peak_rss_kib"] / 1024)
        ax.bar(xs, med, width, yerr=[lo, hi], capsize=2, label=al)
        ax2.bar(xs, rss, width, label=al)
    for axis in (ax, ax2):
        axis.set_xticks(range(len(workloads)))
        axis.set_xticklabels(workloads, rotation=15)
        axis.grid(axis="y", alpha=0.3)
    ax.set_yscale("log")
    ax.set_ylabel("ns per operation (median, p10-p90)")
    ax.legend()
    ax2.set_ylabel("peak RSS (MiB)")
    quick = " (quick run)" if merged["quick"] else ""
    ax.set_title(f"Manual-memory allocators on {platform['id']}: {platform['cpu_model']}{quick}")
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(f"{a.plot}.{ext}")
    print(f"wrote {a.out}, {a.plot}.png, {a.plot}.svg")


if __name__ == "__main__":
    main()
