#!/usr/bin/env python3
"""Plot dune-bench results: cycles per operation, normal mode vs. Dune mode (log scale).

usage: plot_dune_bench.py RESULT.json OUT_PREFIX   (writes OUT_PREFIX.png and .svg)
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        d = json.load(f)
    benches = d["benchmarks"]
    names = [b["name"] for b in benches]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.38
    for i, (mode, color) in enumerate((("linux", "#4c72b0"), ("dune", "#dd8452"))):
        xs, ys, lo, hi = [], [], [], []
        for j, b in enumerate(benches):
            s = b.get(mode)
            if not s:
                continue
            xs.append(j + (i - 0.5) * width)
            ys.append(s["median"])
            lo.append(s["median"] - s["p10"])
            hi.append(s["p90"] - s["median"])
        if xs:
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, color=color,
                   label="Linux (normal mode)" if mode == "linux" else "Dune mode")
    for j, b in enumerate(benches):
        r = b.get("dune_over_linux")
        if r:
            ax.annotate(f"{r:.0f}x" if r >= 10 else f"{r:.1f}x",
                        (j + width / 2, b["dune"]["p90"] * 1.15), ha="center", va="bottom",
                        fontsize=8)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names)
    ax.set_yscale("log")
    ax.set_ylabel("TSC cycles per operation (median, p10-p90)")
    p = d["platform"]
    mode = d.get("dune_mode", {})
    note = (f"Dune at guest CPL {mode['guest_cpl']}" if "guest_cpl" in mode
            else mode.get("skipped", ""))
    ax.set_title(f"libdune micro-benchmarks on {p['id']} ({note})", fontsize=10)
    ax.set_ylim(top=ax.get_ylim()[1] * 4)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(f"{sys.argv[2]}.{ext}", dpi=120)


if __name__ == "__main__":
    main()
