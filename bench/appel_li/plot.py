#!/usr/bin/env python3
"""Bar chart of an appel-li result file: primitives x backends, log-scale cycles.

usage: plot.py RESULT.json OUT_PREFIX      writes OUT_PREFIX.png and OUT_PREFIX.svg

Bars are medians; whiskers span p10..p90. DIRTY appears once per region size. Backends the
platform could not run are named under the chart with the reason.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ORDER = ["trap", "prot1", "unprot", "protN", "protN_batch", "appel1", "appel2", "map2",
         "dirty", "dirty_write", "accessed"]


def label(r):
    if r["primitive"] in ("dirty", "dirty_write", "accessed"):
        n = r["pages"]
        size = "%dKi" % (n // 1024) if n % 1024 == 0 else str(n)
        return "%s\n%s pages" % (r["primitive"], size)
    return r["primitive"]


def series(r):
    return r["backend"] + (" (%s)" % r["variant"] if r.get("variant") else "")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot.py RESULT.json OUT_PREFIX")
    with open(sys.argv[1]) as f:
        data = json.load(f)
    results = data["results"]
    if not results:
        sys.exit("plot.py: %s has no results" % sys.argv[1])
    cats = []
    for prim in ORDER:
        for r in sorted((r for r in results if r["primitive"] == prim), key=lambda r: r["pages"]):
            if label(r) not in cats:
                cats.append(label(r))
    names = []
    for r in results:
        if series(r) not in names:
            names.append(series(r))

    fig, ax = plt.subplots(figsize=(max(10, 1.1 * len(cats)), 6.5))
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        xs, ys, lo, hi = [], [], [], []
        for i, c in enumerate(cats):
            for r in results:
                if series(r) == name and label(r) == c:
                    xs.append(i - 0.4 + width * (k + 0.5))
                    ys.append(max(r["median_cycles"], 1))
                    lo.append(max(r["median_cycles"] - r["p10_cycles"], 0))
                    hi.append(max(r["p90_cycles"] - r["median_cycles"], 0))
        ax.bar(xs, ys, width, label=name, yerr=[lo, hi], capsize=2, error_kw={"linewidth": 0.8})
    ax.set_yscale("log")
    ax.set_xticks(range(len(cats)))
    ax.set_xticklabels(cats, fontsize=8)
    ax.set_ylabel("cycles per operation (median; whiskers p10-p90)")
    p = data["platform"]
    ax.set_title("Appel & Li VM primitives -- %s, Linux %s, virt=%s%s"
                 % (p.get("cpu_model", "?"), p.get("kernel", "?").split()[0], p.get("virt", "?"),
                    " (quick)" if data.get("quick") else ""), fontsize=10)
    ax.grid(axis="y", which="major", alpha=0.3)
    ax.legend(fontsize=8)
    missing = ["%s: %s" % (b["name"], b["why"]) for b in p.get("backends", []) if not b["available"]]
    if missing:
        fig.text(0.01, 0.01, "not measured here -- " + "; ".join(missing), fontsize=7, wrap=True)
    fig.tight_layout(rect=(0, 0.05 if missing else 0, 1, 1))
    for ext in ("png", "svg"):
        fig.savefig("%s.%s" % (sys.argv[2], ext), dpi=120)
    print("plot: %s.png, %s.svg" % (sys.argv[2], sys.argv[2]))


if __name__ == "__main__":
    main()
