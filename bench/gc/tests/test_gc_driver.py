#!/usr/bin/env python3
"""gc_driver on tiny runs: the files it writes and what they must hold, failures recorded
rather than lost, bad arguments refused.  usage: test_gc_driver.py --build BUILD_DIR"""
import argparse
import csv
import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
DRIVER = HERE.parent / "gc_driver.py"
PLOT = HERE.parent / "gc_plot.py"
BUILD = None
WORKLOADS = ["gcbench", "mt-trees"]
COLLECTORS = ("boehm", "dunegc")  # garbage collectors: they enforce the limit and pause


def drive(out, *extra):
    cmd = [sys.executable, str(DRIVER), "--build", BUILD, "--out", str(out), "--quick", "--reps", "2",
           "--workloads", ",".join(WORKLOADS), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


class TinyRun(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="gc-driver-test-")
        cls.out = Path(cls.tmp.name)
        cls.p = drive(cls.out)
        print(cls.p.stdout, cls.p.stderr)
        cls.results = json.loads((cls.out / "runs.json").read_text())
        cls.configs = [c["name"] for c in cls.results["configs"]]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_exit_status_and_progress(self):
        self.assertEqual(self.p.returncode, 0, self.p.stderr)
        n = 2 * len(WORKLOADS) * len(self.configs)
        self.assertIn(f"[{n:3d}/{n}]", self.p.stdout)
        self.assertIn(f"{n}/{n} runs verified", self.p.stdout)

    def test_runs_json_has_platform_policy_and_every_run(self):
        r = self.results
        for key in ("id", "virt", "cpu_vendor", "cpu_model", "kernel", "ncpus"):
            self.assertIn(key, r["platform"])
        self.assertIn("boehm", self.configs)
        self.assertIn("boehm-incremental", self.configs)
        self.assertIn("dunegc", self.configs)
        self.assertEqual(r["reps"], 2)
        self.assertEqual(len(r["runs"]), 2 * len(WORKLOADS) * len(self.configs))
        self.assertEqual(r["failures"], 0)
        policy = r["heap_limit_policy"]
        for w in r["workloads"]:
            want = max(int(w["live_bytes"] * w["heap_factor"]), policy["floor_bytes"])
            self.assertGreaterEqual(w["heap_limit_bytes"], want)
            self.assertLess(w["heap_limit_bytes"] - want, policy["rounding_bytes"])

    def test_every_configuration_got_the_same_heap_limit(self):
        limits = {w["name"]: w["heap_limit_bytes"] for w in self.results["workloads"]}
        for run in self.results["runs"]:
            self.assertEqual(run["heap_limit_bytes"], limits[run["workload"]], run["config"])
            self.assertEqual(run["heap_limit_enforced"], run["collector"] in COLLECTORS, run["config"])

    def test_records_hold_times_rss_and_every_pause(self):
        for run in self.results["runs"]:
            self.assertTrue(run["ok"], run)
            self.assertGreater(run["wall_ns"], 0)
            self.assertGreater(run["cpu_user_ns"] + run["cpu_sys_ns"], 0)
            self.assertGreater(run["peak_rss_bytes"], 0)
            p = run["pauses"]
            self.assertEqual(p["dropped"], 0)
            self.assertEqual(p["protocol_errors"], 0)
            for col in ("start_ns", "duration_ns", "stop_ns", "reclaim_ns", "completed"):
                self.assertEqual(len(p[col]), p["count"], col)
            if run["collector"] in COLLECTORS:
                self.assertGreater(p["count"], 0, f"{run['config']} collected but no pause was recorded")
                self.assertEqual(max(p["duration_ns"]), p["max_ns"])
                self.assertEqual(sum(p["duration_ns"]), p["total_ns"])
                self.assertEqual(sum(p["completed"]), run["collector_info"]["collections"])
            else:
                self.assertEqual(p["count"], 0)
                self.assertTrue(run["collector_info"]["allocator_verified"], run["collector_info"])

    def test_incremental_mode_is_identified(self):
        probe = self.results["boehm_dirty_bits_probe"]
        self.assertIn(probe["observed"], ("mprotect", "soft-dirty"))
        self.assertTrue(probe["agrees"], probe)
        for run in self.results["runs"]:
            inc = run["collector_info"].get("incremental")
            if run["config"] == "boehm-incremental":
                self.assertTrue(inc["enabled"])
                self.assertEqual(inc["dirty_bits"], probe["observed"])
            elif run["config"] == "boehm":
                self.assertEqual(inc["dirty_bits"], "none")

    def test_csv_files(self):
        runs = read_csv(self.out / "runs.csv")
        self.assertEqual(len(runs), len(self.results["runs"]))
        pauses = read_csv(self.out / "pauses.csv")
        self.assertEqual(len(pauses), sum(r["pauses"]["count"] for r in self.results["runs"]))
        self.assertGreater(float(pauses[0]["duration_ms"]), 0)
        summary = read_csv(self.out / "summary.csv")
        self.assertEqual(len(summary), len(WORKLOADS) * len(self.configs))
        for row in summary:
            self.assertEqual(row["runs_ok"], "2")
            if row["config"] == "boehm":
                self.assertEqual(float(row["throughput_vs_boehm"]), 1.0)
                self.assertEqual(float(row["max_pause_vs_boehm"]), 1.0)
            self.assertGreater(float(row["throughput_vs_boehm"]), 0)
        self.assertIn("| workload | config |", (self.out / "summary.md").read_text())

    def test_plots_in_png_and_svg(self):
        for name in ("pause_cdf", "throughput", "max_pause"):
            self.assertEqual((self.out / f"{name}.png").read_bytes()[:8], b"\x89PNG\r\n\x1a\n", name)
            self.assertIn(b"<svg", (self.out / f"{name}.svg").read_bytes()[:2000], name)

    def test_plots_regenerate_from_results(self):
        (self.out / "throughput.png").unlink()
        p = subprocess.run([sys.executable, str(PLOT), str(self.out)], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue((self.out / "throughput.png").is_file())


class Failures(unittest.TestCase):
    def test_a_run_out_of_memory_is_recorded_and_fails_the_suite(self):
        with tempfile.TemporaryDirectory() as tmp:
            # A 1 MiB heap cannot hold gcbench's stretch tree: Boehm must stop at the limit.
            p = drive(tmp, "--configs", "boehm,malloc", "--reps", "1", "--heap-factor", "0.1",
                      "--heap-floor-mib", "1")
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn("FAILED: out of memory at the heap limit", p.stdout)
            r = json.loads((Path(tmp) / "runs.json").read_text())
            boehm = [x for x in r["runs"] if x["config"] == "boehm"]
            self.assertTrue(boehm and not any(x["ok"] for x in boehm))
            self.assertEqual(r["failures"], len(boehm))
            summary = read_csv(Path(tmp) / "summary.csv")
            self.assertTrue(all(row["runs_ok"] == "0" for row in summary if row["config"] == "boehm"))
            for name in ("pause_cdf", "throughput", "max_pause"):  # plotted all the same
                self.assertTrue((Path(tmp) / f"{name}.png").is_file(), name)

    def test_unknown_workload_is_refused(self):
        with tempfile.TemporaryDirectory() as tmp:
            p = subprocess.run([sys.executable, str(DRIVER), "--build", BUILD, "--out", tmp,
                                "--workloads", "gcbench,nosuch"], capture_output=True, text=True)
            self.assertEqual(p.returncode, 2)
            self.assertIn("unknown workload: nosuch", p.stderr)

    def test_missing_build_is_refused(self):
        with tempfile.TemporaryDirectory() as tmp:
            p = subprocess.run([sys.executable, str(DRIVER), "--build", tmp, "--out", tmp],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 2)
            self.assertIn("no workload manifest", p.stderr)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    a, rest = ap.parse_known_args()
    BUILD = a.build
    unittest.main(argv=[sys.argv[0], "-v", *rest])
