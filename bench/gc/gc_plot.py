#!/usr/bin/env python3
"""gc_plot: the GC suite's plots, from gc_driver.py's results (PNG and SVG each).

  pause_cdf    per workload, the distribution of stop-the-world pauses of each collector
               configuration, pooled over repetitions (x: pause, log scale)
  throughput   per workload, each configuration's throughput (1 / median wall time)
               relative to Boehm's, with p10..p90 whiskers; > 1 is faster than Boehm
  max_pause    per workload, each collector configuration's longest pause (over repetitions)

Regenerate from a results directory:  /usr/bin/python3 bench/gc/gc_plot.py RESULTS_DIR
"""
import json
import sys
from pathlib import Path

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:  # the pyenv python3 on PATH has no matplotlib; Debian's has
    sys.exit("gc_plot: matplotlib is missing: run with /usr/bin/python3 (Debian python3-matplotlib)")

COLORS = {"boehm": "#1f77b4", "boehm-incremental": "#6baed6", "dunegc": "#d62728",
          "jemalloc": "#2ca02c", "malloc": "#98df8a"}


def color(config):
    return COLORS.get(config, None)


def title(meta, what):
    p = meta["platform"]
    size = "quick size" if meta["quick"] else "full size"
    return f"{what} -- {p['id']} ({p['cpu_model']}), {size}, {meta['reps']} reps"


def save(fig, out, name):
    paths = []
    for ext in ("png", "svg"):
        path = Path(out) / f"{name}.{ext}"
        fig.savefig(path, dpi=120, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def grid(n):
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat


def plot_pause_cdf(meta, out):
    workloads = [w["name"] for w in meta["workloads"]]
    configs = [c["name"] for c in meta["configs"]]
    fig, axes = grid(len(workloads))
    for ax, w in zip(axes, workloads):
        drawn, failed = False, []
        for c in configs:
            rs = [r for r in meta["runs"] if r["workload"] == w and r["config"] == c]
            if rs and not any(r["ok"] for r in rs):
                failed.append(c)
            d = sorted(x / 1e6 for r in rs if r["ok"] for x in r["pauses"]["duration_ns"])
            if not d:
                continue
            y = [(i + 1) / len(d) for i in range(len(d))]
            ax.step(d, y, where="post", label=f"{c} ({len(d)})", color=color(c))
            drawn = True
        ax.set_title(w)
        if failed:
            ax.text(0.02, 0.97, "every run failed: " + ", ".join(failed), transform=ax.transAxes,
                    va="top", fontsize=7, color="red")
        ax.set_xlabel("stop-the-world pause (ms)")
        ax.set_ylabel("fraction of pauses <= x")
        ax.set_ylim(0, 1.02)
        ax.grid(True, which="both", alpha=0.3)
        if drawn:
            ax.set_xscale("log")
            ax.legend(fontsize=7, loc="lower right")
        else:
            ax.text(0.5, 0.5, "no pauses recorded", ha="center", transform=ax.transAxes)
    fig.suptitle(title(meta, "GC pause CDF"), fontsize=10)
    fig.tight_layout()
    return save(fig, out, "pause_cdf")


def grouped_bars(ax, workloads, configs, value, whiskers=None):
    """value(w, c) -> height or None (missing: marked 'n/a'); whiskers(w, c) -> (lo, hi)."""
    width = 0.8 / max(1, len(configs))
    for k, c in enumerate(configs):
        xs, hs, errs = [], [], [[], []]
        for i, w in enumerate(workloads):
            x = i - 0.4 + width * (k + 0.5)
            h = value(w, c)
            if h is None:  # failed or not run: say so at the axis (x in data, y in axes units)
                ax.text(x, 0.02, "n/a", rotation=90, ha="center", va="bottom", fontsize=6,
                        transform=ax.get_xaxis_transform())
                continue
            xs.append(x)
            hs.append(h)
            lo, hi = whiskers(w, c) if whiskers else (h, h)
            errs[0].append(max(0.0, h - lo))
            errs[1].append(max(0.0, hi - h))
        ax.bar(xs, hs, width, label=c, color=color(c), yerr=errs if whiskers else None, capsize=2)
    ax.set_xticks(range(len(workloads)))
    ax.set_xticklabels(workloads, rotation=15)
    ax.legend(fontsize=7)
    ax.grid(True, axis="y", alpha=0.3)


def finite(v):
    return v is not None and v == v


def plot_throughput(meta, rows, out):
    workloads = [w["name"] for w in meta["workloads"]]
    configs = [c["name"] for c in meta["configs"]]
    by = {(r["workload"], r["config"]): r for r in rows}
    base = {w: by.get((w, meta["baseline"])) for w in workloads}

    def value(w, c):
        v = by[(w, c)]["throughput_vs_boehm"]
        return v if finite(v) else None

    def whiskers(w, c):  # slower reps (p90 wall) give the lower throughput
        b, r = base[w]["wall_median_s"], by[(w, c)]
        return b / r["wall_p90_s"], b / r["wall_p10_s"]

    fig, ax = plt.subplots(figsize=(max(7, 1.6 * len(workloads)), 4))
    grouped_bars(ax, workloads, configs, value, whiskers)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_ylabel(f"throughput relative to {meta['baseline']} (higher is faster)")
    ax.set_title(title(meta, "GC workloads: throughput at equal heap limits"), fontsize=10)
    fig.tight_layout()
    return save(fig, out, "throughput")


def plot_max_pause(meta, rows, out):
    workloads = [w["name"] for w in meta["workloads"]]
    by = {(r["workload"], r["config"]): r for r in rows}
    configs = [c["name"] for c in meta["configs"]
               if any(finite(by[(w, c["name"])]["pause_max_ms"]) for w in workloads)]

    def value(w, c):
        v = by[(w, c)]["pause_max_ms"]
        return v if finite(v) else None

    def whiskers(w, c):  # the spread of per-run maxima
        m = [r["pauses"]["max_ns"] / 1e6 for r in meta["runs"]
             if r["workload"] == w and r["config"] == c and r["ok"] and r["pauses"]["count"]]
        return min(m), max(m)

    fig, ax = plt.subplots(figsize=(max(7, 1.6 * len(workloads)), 4))
    if configs:
        grouped_bars(ax, workloads, configs, value, whiskers)
        ax.set_yscale("log")
    ax.set_ylabel("longest stop-the-world pause (ms)")
    ax.set_title(title(meta, "GC workloads: maximum pause (bar: max over reps; whiskers: per-run max range)"),
                 fontsize=9)
    fig.tight_layout()
    return save(fig, out, "max_pause")


def plot_all(results, rows, out):
    return plot_pause_cdf(results, out) + plot_throughput(results, rows, out) + plot_max_pause(results, rows, out)


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: gc_plot.py RESULTS_DIR   (a directory gc_driver.py wrote)")
    out = Path(argv[1])
    try:
        results = json.loads((out / "runs.json").read_text())
    except (OSError, ValueError) as e:
        sys.exit(f"gc_plot: cannot read {out / 'runs.json'}: {e}")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import gc_driver

    workloads = [w["name"] for w in results["workloads"]]
    configs = [gc_driver.Config(**c) for c in results["configs"]]
    rows = gc_driver.summarize(results["runs"], workloads, configs)
    for p in plot_all(results, rows, out):
        print(f"gc_plot: wrote {p}")


if __name__ == "__main__":
    main(sys.argv)
