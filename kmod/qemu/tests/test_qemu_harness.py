#!/usr/bin/env python3
"""Tests of qemu_harness.py's verdict on captured guest logs (no QEMU needed).

logs/clean.* and logs/panic.* are real captures (boot messages trimmed); each *.snippet is
a kernel report in the kernel's own format, spliced into the clean run to prove that a run
whose commands all passed still fails when the guest kernel complains.
"""

import base64
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
LOGS = os.path.join(HERE, "logs")
sys.path.insert(0, os.path.dirname(HERE))
import qemu_harness as h  # noqa: E402

CLEAN_MODULES, CLEAN_COMMANDS = 4, 2


def read(name):
    with open(os.path.join(LOGS, name)) as f:
        return f.read()


def splice(snippet):
    """The clean console with a kernel report printed while command 1 ran."""
    out = []
    for line in read("clean.console").splitlines(keepends=True):
        out.append(line)
        if line.strip() == "DUNEQEMU BEGIN 1":
            out.append(read(snippet))
    return "".join(out)


def clean_analyze(console=None, markers=None, qemu_rc=0, timed_out=False):
    return h.analyze(console if console is not None else read("clean.console"),
                     markers if markers is not None else read("clean.markers"),
                     CLEAN_MODULES, CLEAN_COMMANDS, qemu_rc, timed_out)


class Verdicts(unittest.TestCase):
    def test_clean_run_passes(self):
        v = clean_analyze()
        self.assertTrue(v.ok, v.failures)
        self.assertEqual(v.results, {1: 0, 2: 0})
        self.assertAlmostEqual(v.boot_s, 3.01)

    def test_kernel_reports_fail_a_passing_run(self):
        for snippet, what in [("warn.snippet", "WARNING"), ("soft_lockup.snippet", "soft lockup"),
                              ("rcu_stall.snippet", "RCU stall"),
                              ("hung_task.snippet", "hung task")]:
            with self.subTest(snippet=snippet):
                v = clean_analyze(console=splice(snippet))
                self.assertEqual(v.kinds(), {"kernel"})
                self.assertIn(what, {w for w, _ in v.kernel_lines})

    def test_user_space_crashes_are_not_kernel_failures(self):
        v = clean_analyze(console=splice("user_crash.snippet"))
        self.assertTrue(v.ok, v.failures)

    def test_real_panic_capture(self):
        v = h.analyze(read("panic.console"), read("panic.markers"), 0, 3, 0, False)
        self.assertIn("kernel", v.kinds())
        self.assertIn("panic", {w for w, _ in v.kernel_lines})
        self.assertEqual(v.running, 2)
        self.assertIn("exit", v.kinds())  # powered off without the DONE marker

    def test_nonzero_status_fails(self):
        markers = read("clean.markers").replace("END 2 rc=0", "END 2 rc=3")
        v = clean_analyze(markers=markers)
        self.assertEqual(v.kinds(), {"command"})
        self.assertIn("command 2 exited with status 3", [m for _, m in v.failures])

    def test_hang_is_a_timeout_naming_the_command(self):
        markers = "".join(l for l in read("clean.markers").splitlines(keepends=True)
                          if not l.startswith(("DUNEQEMU END 2", "DUNEQEMU DONE")))
        v = clean_analyze(markers=markers, qemu_rc=None, timed_out=True)
        self.assertEqual(v.kinds(), {"timeout", "command"})
        self.assertEqual(v.running, 2)

    def test_module_load_failure(self):
        markers = ("DUNEQEMU BOOTED 2.5\nDUNEQEMU MODULE ccp.ko rc=0\n"
                   "DUNEQEMU MODULE dune.ko rc=1\nDUNEQEMU DONE\n")
        v = clean_analyze(markers=markers)
        self.assertEqual(v.kinds(), {"module"})

    def test_no_boot(self):
        v = clean_analyze(console="SeaBIOS\n", markers="", qemu_rc=1)
        self.assertIn("boot", v.kinds())

    def test_garbled_markers_are_ignored(self):
        markers = read("clean.markers") + "DUNEQEMU END x rc=zz\nnoise DUNEQEMU BEGIN 9\n"
        v = clean_analyze(markers=markers)
        self.assertTrue(v.ok, v.failures)


def file_markers(name, data, size=None, end=True):
    """The lines guest_init.sh sends for one $DUNEGC_OUT file (base64 wrapped at 76)."""
    b64 = base64.b64encode(data).decode()
    lines = [f"DUNEQEMU FILE {name} {len(data) if size is None else size}"]
    lines += [b64[i:i + 76] for i in range(0, len(b64), 76)]
    if end:
        lines.append(f"DUNEQEMU FILEEND {name}")
    return "\n".join(lines) + "\n"


class OutputFiles(unittest.TestCase):
    def test_files_come_back_byte_for_byte(self):
        blob = bytes(range(256)) * 9  # several base64 lines, every byte value
        markers = (read("clean.markers").replace("DUNEQEMU DONE\n", "")
                   + file_markers("a.json", b'{"x": 1}\n') + file_markers("b.bin", blob)
                   + file_markers("empty", b"") + "DUNEQEMU DONE\n")
        files, problems = h.extract_files(markers)
        self.assertEqual(problems, [])
        self.assertEqual(files, {"a.json": b'{"x": 1}\n', "b.bin": blob, "empty": b""})
        self.assertTrue(clean_analyze(markers=markers).ok)  # file lines are not markers

    def test_incomplete_files_are_refused(self):
        cut = file_markers("cut.json", b"0123456789" * 20, end=False)
        short = file_markers("short.json", b"abc", size=4)
        bad = "DUNEQEMU FILE bad.json 3\n!!!!\nDUNEQEMU FILEEND bad.json\n"
        files, problems = h.extract_files(cut + short + bad)
        self.assertEqual(files, {})
        self.assertEqual(len(problems), 3, problems)
        self.assertIn("cut.json has no end marker", problems[0])
        self.assertIn("3 of 4 bytes", problems[1])
        self.assertIn("bad base64", problems[2])

    def test_write_files_fails_the_verdict_on_a_damaged_file(self):
        with tempfile.TemporaryDirectory() as d:
            v = clean_analyze()
            files, problems = h.extract_files(file_markers("ok.json", b"{}")
                                              + file_markers("cut.json", b"{}", end=False))
            h.write_files(files, problems, d, v)
            self.assertEqual(os.listdir(d), ["ok.json"])
            self.assertEqual(v.kinds(), {"output"})


class CommandLine(unittest.TestCase):
    def run_check(self, console, markers, *extra):
        return subprocess.run([sys.executable, h.__file__, "check-log", console, markers,
                               "--modules", str(CLEAN_MODULES), "--commands",
                               str(CLEAN_COMMANDS), *extra], capture_output=True, text=True)

    def test_gtest_cases_are_counted_per_command(self):
        esc = "\x1b[0;32m"
        console = "\n".join([
            "DUNEQEMU BEGIN 1",
            f"{esc}[ RUN      ] \x1b[mA.one", f"{esc}[       OK ] \x1b[mA.one (3 ms)",
            "[  SKIPPED ] A.two (0 ms)", "[  FAILED  ] P/B.three/0, where GetParam() = 1 (12 ms)",
            "[  FAILED  ] 1 test, listed below:",  # gtest's footer: not a case
            "DUNEQEMU END 1 rc=1", "DUNEQEMU BEGIN 2", "plain output", "DUNEQEMU END 2 rc=0"])
        lines = console.splitlines()
        self.assertEqual(h.gtest_summary(lines, 1),
                         {"OK": ["A.one"], "SKIPPED": ["A.two"], "FAILED": ["P/B.three/0"]})
        self.assertEqual(h.gtest_summary(lines, 2), {})

    def test_check_log_exit_status(self):
        ok = self.run_check(os.path.join(LOGS, "clean.console"), os.path.join(LOGS, "clean.markers"))
        self.assertEqual(ok.returncode, 0, ok.stdout)
        bad = self.run_check(os.path.join(LOGS, "panic.console"), os.path.join(LOGS, "panic.markers"))
        self.assertEqual(bad.returncode, 1)
        self.assertIn("Kernel panic", bad.stdout)  # the relevant console lines are shown
        expected = self.run_check(os.path.join(LOGS, "panic.console"),
                                  os.path.join(LOGS, "panic.markers"), "--expect-failure", "kernel")
        self.assertEqual(expected.returncode, 0, expected.stdout)

    def test_missing_prerequisite_skips(self):
        r = subprocess.run([sys.executable, h.__file__, "run", "--name", "t", "--workdir",
                            "/nonexistent", "--qemu", "no-such-qemu-binary", "--command", "true"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("SKIPPED: no-such-qemu-binary not found"), r.stdout)

    def test_tcg_threads_choose_the_accelerator(self):
        import argparse
        base = dict(cpu="qemu64,+svm,+npt", smp=2, memory=1024, kernel="vmlinuz", append="")
        multi = h.qemu_command(argparse.Namespace(tcg_threads="multi", **base), "qemu",
                               "initrd", "m.log")
        single = h.qemu_command(argparse.Namespace(tcg_threads="single", **base), "qemu",
                                "initrd", "m.log")
        self.assertEqual(multi[multi.index("-accel") + 1], "tcg")
        self.assertEqual(single[single.index("-accel") + 1], "tcg,thread=single")
        self.assertEqual(single[single.index("-smp") + 1], "2")  # still two vCPUs
        r = subprocess.run([sys.executable, h.__file__, "run", "--name", "t", "--workdir",
                            "/nonexistent", "--tcg-threads", "many", "--command", "true"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)  # argparse: not a choice
        self.assertIn("--tcg-threads", r.stderr)

    def test_dynamic_binary_is_refused(self):
        self.assertTrue(h.is_static_elf("/bin/busybox"))
        self.assertFalse(h.is_static_elf(sys.executable if os.path.exists(sys.executable)
                                         else "/bin/sh"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
