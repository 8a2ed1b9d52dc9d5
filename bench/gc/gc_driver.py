#!/usr/bin/env python3
"""gc_driver: every GC workload x collector configuration, at equal heap limits, repeated.

Runs the workload executables that workloads/gc/ built (listed in the build's
workloads/gc/gcwl-manifest.json), each run in a fresh process that writes its own JSON record
(wall and CPU time, peak RSS, every stop-the-world pause, collector facts). Writes into
<results>/gc/<platform-id>/:

  runs.json     everything: platform, heap-limit policy, the Boehm dirty-bit probe, all records
  runs.csv      one row per run          pauses.csv   one row per pause
  summary.csv   one row per workload x configuration: medians, throughput and max pause
                relative to Boehm        summary.md   the same as a Markdown table
  pause_cdf, throughput, max_pause (.png and .svg)  via gc_plot.py

Heap limits: per workload, HEAP_FACTORS[workload] x its peak live bytes (the workload computes
them: `--print-live`), at least HEAP_FLOOR, rounded up to a MiB -- the same number for every
configuration. Exit status: 0 all runs verified, 1 some run failed (all results are still
written), 2 bad arguments or a missing build.

Needs Debian's /usr/bin/python3 (python3-matplotlib) for the plots; see docs/workloads.md.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# The configurations, in plot order. A collector must have been built (manifest) to run.
# dunegc is the stop-the-world collector through its Boehm-compatible layer (gc/bdw).
@dataclass
class Config:
    name: str
    collector: str
    args: list = field(default_factory=list)


CONFIGS = [
    Config("dunegc", "dunegc"),
    Config("boehm", "boehm"),
    Config("boehm-incremental", "boehm", ["--incremental"]),
    Config("jemalloc", "jemalloc"),
    Config("malloc", "malloc"),
]
BASELINE = "boehm"  # throughput and pauses are shown relative to this configuration
# Heap limit = factor x live bytes: about 1.3x the heap Boehm 8.2 grows to by itself at full
# size (the larger of its two modes, measured: docs/workloads.md), so that the limit binds
# both collectors to a similar budget without starving Boehm into out-of-memory failures.
HEAP_FACTORS = {"gcbench": 4.0, "binary-trees": 7.0, "linked-list": 4.5, "hash-map": 3.5,
                "xml-tree": 4.0, "mt-trees": 4.0}
WORKLOADS = list(HEAP_FACTORS)
HEAP_FLOOR = 16 << 20
MIB = 1 << 20


class UsageError(Exception):
    pass


def percentile(sorted_values, q):
    """Linear interpolation between nearest ranks, q in [0, 1] (as bench/stats.h)."""
    if not sorted_values:
        return float("nan")
    pos = q * (len(sorted_values) - 1)
    lo, hi = int(pos), min(int(pos) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def read_manifest(build):
    path = Path(build) / "workloads" / "gc" / "gcwl-manifest.json"
    if not path.is_file():
        raise UsageError(f"no workload manifest at {path}: build the project first")
    binaries = {}
    for e in json.loads(path.read_text())["workloads"]:
        binaries[(e["workload"], e["collector"])] = e["path"]
    return binaries


def platform(build):
    tool = Path(build) / "libdune" / "dune-platform"
    if not os.access(tool, os.X_OK):
        raise UsageError(f"no dune-platform at {tool}: build the project first")
    info = json.loads(subprocess.run([tool], check=True, capture_output=True, text=True).stdout)
    return info, info["id"]


def select(names, known, what):
    if not names:
        return list(known)
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise UsageError(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    return chosen


def live_bytes(binary, size):
    out = subprocess.run([binary, "--size", size, "--print-live"], check=True,
                         capture_output=True, text=True).stdout
    return int(out.strip())


def heap_limit(live, factor, floor):
    limit = max(int(live * factor), floor)
    return (limit + MIB - 1) // MIB * MIB


def run_one(binary, size, limit, config, timeout, env=None):
    """One run in a fresh process. Returns (record, exit status, output)."""
    with tempfile.TemporaryDirectory(prefix="gcwl-") as tmp:
        out_json = Path(tmp) / "run.json"
        cmd = [binary, "--size", size, "--heap-limit", str(limit), "--config", config.name,
               "--json", str(out_json)] + config.args
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
            status, output = p.returncode, p.stdout + p.stderr
        except subprocess.TimeoutExpired as e:
            status = "timeout"
            output = f"timed out after {timeout} s\n" + (e.stderr or b"").decode(errors="replace")
        record = json.loads(out_json.read_text()) if out_json.is_file() else None
    return record, status, output


def failure_reason(status, output):
    if status == "timeout":
        return output.splitlines()[0]
    if status == 3:
        return "out of memory at the heap limit: " + output.strip().splitlines()[-1]
    lines = [l for l in output.strip().splitlines() if l.strip()]
    tail = lines[-1] if lines else "no output"
    if isinstance(status, int) and status < 0:
        return f"killed by signal {-status}: {tail}"
    return f"exit status {status}: {tail}"


def probe_boehm_dirty_bits(binaries, timeout):
    """Boehm's own log of which dirty-bit mechanism incremental mode chose, next to what
    the harness's probe concluded in the same run."""
    binary = binaries.get(("gcbench", "boehm"))
    if not binary:
        return None
    env = dict(os.environ, GC_PRINT_VERBOSE_STATS="1")
    cfg = Config("boehm-incremental", "boehm", ["--incremental"])
    record, status, output = run_one(binary, "quick", 0, cfg, timeout, env)
    keys = ("soft-dirty", "mprotect", "dirty bit", "vdb")
    log = [l.strip() for l in output.splitlines() if any(k in l.lower() for k in keys)
           and not l.startswith("Marked from")]
    observed = record["collector_info"]["incremental"]["dirty_bits"] if record else "unknown"
    says_mprotect = any("mprotect" in l.lower() for l in log)
    says_soft = any("using soft-dirty" in l.lower() for l in log)
    agrees = (observed == "mprotect" and says_mprotect) or (observed == "soft-dirty" and says_soft)
    return {"observed": observed, "boehm_log": log, "agrees": agrees}


def summarize(runs, workloads, configs):
    """Per workload x configuration: medians over the verified runs, and ratios to Boehm."""
    rows = []
    for w in workloads:
        base = None
        for c in configs:
            rs = [r for r in runs if r["workload"] == w and r["config"] == c.name]
            ok = [r for r in rs if r["ok"]]
            walls = sorted(r["wall_ns"] / 1e9 for r in ok)
            pauses = sorted(d / 1e6 for r in ok for d in r["pauses"]["duration_ns"])
            maxima = [r["pauses"]["max_ns"] / 1e6 for r in ok]
            row = {
                "workload": w, "config": c.name, "runs": len(rs), "runs_ok": len(ok),
                "wall_median_s": percentile(walls, 0.5), "wall_p10_s": percentile(walls, 0.1),
                "wall_p90_s": percentile(walls, 0.9),
                "cpu_median_s": percentile(sorted((r["cpu_user_ns"] + r["cpu_sys_ns"]) / 1e9 for r in ok), 0.5),
                "peak_rss_median_mib": percentile(sorted(r["peak_rss_bytes"] / MIB for r in ok), 0.5),
                "collections_median": percentile(sorted(r["collector_info"]["collections"] for r in ok), 0.5),
                "pauses": len(pauses),
                "pause_p50_ms": percentile(pauses, 0.5), "pause_p99_ms": percentile(pauses, 0.99),
                "pause_max_ms": max(maxima) if maxima and pauses else float("nan"),
                "heap_limit_mib": rs[0]["heap_limit_bytes"] / MIB if rs else float("nan"),
            }
            if c.name == BASELINE:
                base = row
            rows.append(row)
        for row in rows[-len(configs):]:
            ok_base = base and base["runs_ok"] and row["runs_ok"]
            row["throughput_vs_boehm"] = (base["wall_median_s"] / row["wall_median_s"]) if ok_base else float("nan")
            row["max_pause_vs_boehm"] = (row["pause_max_ms"] / base["pause_max_ms"]) if ok_base else float("nan")
    return rows


def fmt(v, digits=3):
    if isinstance(v, float):
        return "" if v != v else f"{v:.{digits}f}"
    return v


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            w.writerow([fmt(r.get(h, "")) for h in header])


def run_rows(runs):
    for r in runs:
        d = sorted(x / 1e6 for x in r["pauses"]["duration_ns"]) if r["ok"] else []
        yield {
            "workload": r["workload"], "config": r["config"], "collector": r["collector"], "rep": r["rep"],
            "ok": int(r["ok"]), "exit_status": r["exit_status"], "error": r.get("error", ""),
            "wall_s": r["wall_ns"] / 1e9 if r["ok"] else float("nan"),
            "cpu_user_s": r["cpu_user_ns"] / 1e9 if r["ok"] else float("nan"),
            "cpu_sys_s": r["cpu_sys_ns"] / 1e9 if r["ok"] else float("nan"),
            "peak_rss_mib": r["peak_rss_bytes"] / MIB if r["ok"] else float("nan"),
            "live_mib": r["live_bytes"] / MIB, "heap_limit_mib": r["heap_limit_bytes"] / MIB,
            "heap_limit_enforced": int(r.get("heap_limit_enforced", False)),
            "collections": r["collector_info"]["collections"] if r["ok"] else "",
            "pauses": len(d), "pause_total_ms": sum(d) if d else 0.0,
            "pause_p50_ms": percentile(d, 0.5), "pause_p99_ms": percentile(d, 0.99),
            "pause_max_ms": d[-1] if d else float("nan"),
            "dirty_bits": r["collector_info"].get("incremental", {}).get("dirty_bits", "") if r["ok"] else "",
        }


def pause_rows(runs):
    for r in runs:
        if not r["ok"]:
            continue
        p = r["pauses"]
        for i, (s, d, st, rc, c) in enumerate(zip(p["start_ns"], p["duration_ns"], p["stop_ns"],
                                                  p["reclaim_ns"], p["completed"])):
            yield {"workload": r["workload"], "config": r["config"], "rep": r["rep"], "index": i,
                   "start_ms": s / 1e6, "duration_ms": d / 1e6, "stop_ms": st / 1e6,
                   "reclaim_ms": rc / 1e6, "completed": int(c)}


def write_markdown(path, rows, meta):
    cols = ["workload", "config", "runs_ok", "wall_median_s", "throughput_vs_boehm", "pause_max_ms",
            "max_pause_vs_boehm", "pause_p99_ms", "peak_rss_median_mib", "heap_limit_mib"]
    with open(path, "w") as f:
        f.write(f"GC workloads on `{meta['platform']['id']}` ({meta['platform']['cpu_model']}, "
                f"{meta['platform']['ncpus']} CPUs), {'quick' if meta['quick'] else 'full'} size, "
                f"{meta['reps']} reps; medians; ratios relative to `{BASELINE}`.\n\n")
        f.write("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n")
        for r in rows:
            f.write("| " + " | ".join(str(fmt(r[c], 2)) for c in cols) + " |\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.environ.get("DUNEGC_BUILD", "build/release"))
    ap.add_argument("--results", default=os.environ.get("DUNEGC_RESULTS", "results"),
                    help="results root; output goes to RESULTS/gc/<platform-id>/")
    ap.add_argument("--out", help="output directory (instead of RESULTS/gc/<platform-id>)")
    ap.add_argument("--quick", action="store_true", default=os.environ.get("DUNEGC_QUICK") == "1")
    ap.add_argument("--reps", type=int, help="repetitions (default 5, quick 2)")
    ap.add_argument("--workloads", help="comma-separated subset of: " + ", ".join(WORKLOADS))
    ap.add_argument("--configs", help="comma-separated subset of: " + ", ".join(c.name for c in CONFIGS))
    ap.add_argument("--heap-factor", type=float, help="one factor for every workload (instead of HEAP_FACTORS)")
    ap.add_argument("--heap-floor-mib", type=float, default=HEAP_FLOOR / MIB)
    ap.add_argument("--timeout", type=float, default=600, help="seconds per run")
    ap.add_argument("--no-plots", action="store_true")
    a = ap.parse_args(argv)
    try:
        if a.reps is not None and a.reps < 1:
            raise UsageError("--reps must be at least 1")
        if (a.heap_factor is not None and a.heap_factor <= 0) or a.heap_floor_mib < 0:
            raise UsageError("--heap-factor must be positive and --heap-floor-mib not negative")
        binaries = read_manifest(a.build)
        info, pid = platform(a.build)
        workloads = select(a.workloads, WORKLOADS, "workload")
        names = select(a.configs, [c.name for c in CONFIGS], "configuration")
        configs = [c for c in CONFIGS if c.name in names]
    except (UsageError, subprocess.CalledProcessError) as e:
        print(f"gc_driver: {e}", file=sys.stderr)
        return 2
    missing = sorted({c.collector for c in configs} - {k[1] for k in binaries})
    if missing:
        print(f"gc_driver: not built, skipped: collector {', '.join(missing)}")
        configs = [c for c in configs if c.collector not in missing]
    if not configs:
        print("gc_driver: no configuration left to run", file=sys.stderr)
        return 2
    reps = a.reps or (2 if a.quick else 5)
    size = "quick" if a.quick else "full"
    out = Path(a.out) if a.out else Path(a.results) / "gc" / pid
    out.mkdir(parents=True, exist_ok=True)

    limits = {}
    for w in workloads:
        some = next(binaries[(w, c.collector)] for c in configs if (w, c.collector) in binaries)
        live = live_bytes(some, size)
        factor = a.heap_factor or HEAP_FACTORS[w]
        limits[w] = (live, heap_limit(live, factor, int(a.heap_floor_mib * MIB)), factor)
        print(f"gc_driver: {w}: live {live / MIB:.1f} MiB, heap limit {limits[w][1] / MIB:.0f} MiB "
              f"({factor:g}x live, at least {a.heap_floor_mib:g} MiB)")
    probe = probe_boehm_dirty_bits(binaries, a.timeout) if any(c.collector == "boehm" for c in configs) else None
    if probe:
        print(f"gc_driver: Boehm incremental mode uses {probe['observed']} dirty bits "
              f"(Boehm's log: {'; '.join(probe['boehm_log']) or 'nothing'})")

    plan = [(rep, w, c) for rep in range(1, reps + 1) for w in workloads for c in configs
            if (w, c.collector) in binaries]
    runs, failures, t_start = [], 0, time.monotonic()
    for i, (rep, w, c) in enumerate(plan, 1):
        live, limit, _ = limits[w]
        record, status, output = run_one(binaries[(w, c.collector)], size, limit, c, a.timeout)
        if record is None or status != 0:
            failures += 1
            record = {"workload": w, "config": c.name, "collector": c.collector, "ok": False,
                      "error": failure_reason(status, output), "live_bytes": live,
                      "heap_limit_bytes": limit, "collector_info": {}}
        record.pop("platform", None)  # once, at the top of runs.json
        record.update(rep=rep, exit_status=status)
        runs.append(record)
        elapsed = time.monotonic() - t_start
        eta = elapsed / i * (len(plan) - i)
        if record["ok"]:
            what = (f"{record['wall_ns'] / 1e9:7.3f} s  {record['pauses']['count']:4d} pauses, "
                    f"max {record['pauses']['max_ns'] / 1e6:7.2f} ms")
        else:
            what = "FAILED: " + record["error"]
        print(f"[{i:3d}/{len(plan)}] {w:<13} {c.name:<18} rep {rep}/{reps}  {what}  (eta {eta:4.0f} s)",
              flush=True)

    rows = summarize(runs, workloads, configs)
    meta = {"schema": "dunegc-gc-results/1", "platform": info, "quick": a.quick, "size": size, "reps": reps,
            "heap_limit_policy": {"floor_bytes": int(a.heap_floor_mib * MIB), "rounding_bytes": MIB},
            "workloads": [{"name": w, "live_bytes": limits[w][0], "heap_factor": limits[w][2],
                           "heap_limit_bytes": limits[w][1]} for w in workloads],
            "configs": [vars(c) for c in configs], "baseline": BASELINE,
            "boehm_dirty_bits_probe": probe, "failures": failures}
    (out / "runs.json").write_text(json.dumps(dict(meta, runs=runs), indent=1) + "\n")
    run_cols = ["workload", "config", "collector", "rep", "ok", "exit_status", "wall_s", "cpu_user_s",
                "cpu_sys_s", "peak_rss_mib", "live_mib", "heap_limit_mib", "heap_limit_enforced",
                "collections", "pauses", "pause_total_ms", "pause_p50_ms", "pause_p99_ms",
                "pause_max_ms", "dirty_bits", "error"]
    write_csv(out / "runs.csv", run_cols, run_rows(runs))
    write_csv(out / "pauses.csv", ["workload", "config", "rep", "index", "start_ms", "duration_ms",
                                   "stop_ms", "reclaim_ms", "completed"], pause_rows(runs))
    write_csv(out / "summary.csv", list(rows[0].keys()), rows)
    write_markdown(out / "summary.md", rows, meta)
    if not a.no_plots:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import gc_plot
        for p in gc_plot.plot_all(dict(meta, runs=runs), rows, out):
            print(f"gc_driver: wrote {p}")
    print(f"gc_driver: {len(runs) - failures}/{len(runs)} runs verified; results in {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
