#!/usr/bin/env python3
"""Boot Debian's kernel under QEMU TCG (AMD SVM + nested paging emulated) and run commands.

    qemu_harness.py run --name N --workdir DIR [--binary FILE]... [--module NAME]...
                        [--module-file FILE]... [--command CMD]... [--timeout S] ...
                        [--output-dir DIR]
    qemu_harness.py check-log CONSOLE_LOG MARKERS_LOG --modules N --commands N [...]

`run` builds an initramfs (busybox-static, guest_init.sh as /init, the kernel modules with
their modules.dep dependencies, the static test binaries, the command list) with cpio, boots
it with a wall-clock limit and turns the guest's markers and console into a verdict: exit 0
when every module loaded, every command exited 0, the guest powered off by itself and the
console shows no oops, BUG, WARNING, lockup, RCU stall, hung task or panic. A missing qemu,
kernel image, module tree or busybox prints "SKIPPED: <reason>" and exits 0 (ctest shows it
as skipped). Files the commands leave in $DUNEGC_OUT (/dunegc/out in the guest) come back
base64 on the markers port; --output-dir DIR writes them there (a file that arrives
incomplete fails the run and is not written). `check-log` applies the same verdict to captured logs (the parser's own tests).
Standard library only: no package beyond Debian's python3 is needed.
"""

import argparse
import base64
import binascii
import lzma
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GUEST_INIT = os.path.join(HERE, "guest_init.sh")
MARK = "DUNEQEMU"
MARKER = re.compile(MARK + r" (BOOTED|MODULE|BEGIN|END|DONE)(?: ([\w.+-]+))?(?: rc=(-?\d+))?")

# Console lines that fail a run whatever the commands returned. Each is a kernel report
# that something went wrong in the guest kernel (user-space crashes print other lines).
BAD_KERNEL_LINES = [  # the first match names a line, so the specific ones come first
    ("soft lockup", re.compile(r"soft lockup")),
    ("hard lockup", re.compile(r"hard LOCKUP|NMI watchdog: Watchdog detected")),
    ("RCU stall", re.compile(r"rcu.*detected (expedited )?stalls?|rcu_\w+ self-detected stall")),
    ("hung task", re.compile(r"INFO: task \S+ blocked for more than")),
    ("panic", re.compile(r"Kernel panic")),
    ("oops", re.compile(r"\bOops\b|general protection fault.*\[#\d+\]|unable to handle")),
    ("BUG", re.compile(r"\bBUG: |kernel BUG at|list_(add|del) corruption")),
    ("WARNING", re.compile(r"\bWARNING: ")),
    ("double fault", re.compile(r"double fault")),
    ("sanitizer", re.compile(r"UBSAN:|KASAN:|KFENCE:")),
    ("call trace", re.compile(r"Call Trace:")),
]
FILE_BEGIN = re.compile(MARK + r" FILE ([\w.+-]+) (\d+)")
FILE_END = re.compile(MARK + r" FILEEND ([\w.+-]+)")
CONTEXT_LINES = 30  # shown after each bad line: enough for a register dump and call trace


def skip(reason):
    print(f"SKIPPED: {reason}")
    sys.exit(0)


def die(msg):
    print(f"qemu_harness: error: {msg}", file=sys.stderr)
    sys.exit(2)


# --- preflight and inputs ----------------------------------------------------------------

def is_static_elf(path):
    """True for an ELF executable without a PT_INTERP header (needs no dynamic loader)."""
    with open(path, "rb") as f:
        hdr = f.read(64)
        if len(hdr) < 64 or hdr[:4] != b"\x7fELF" or hdr[4] != 2:
            return False
        phoff = int.from_bytes(hdr[32:40], "little")
        phentsize = int.from_bytes(hdr[54:56], "little")
        phnum = int.from_bytes(hdr[56:58], "little")
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        if int.from_bytes(table[i * phentsize:i * phentsize + 4], "little") == 3:  # PT_INTERP
            return False
    return True


def kernel_release(kernel):
    base = os.path.basename(kernel)
    return base[len("vmlinuz-"):] if base.startswith("vmlinuz-") else None


def preflight(args):
    """Returns the qemu binary, or skips with the first missing prerequisite."""
    if args.skip_reason:
        skip(args.skip_reason)
    qemu = shutil.which(args.qemu)
    if not qemu:
        skip(f"{args.qemu} not found (install qemu-system-x86)")
    if not os.access(args.kernel, os.R_OK):
        skip(f"kernel image {args.kernel} missing or unreadable (install linux-image-amd64)")
    if args.module and not os.path.isfile(os.path.join(args.modules_dir, "modules.dep")):
        skip(f"{args.modules_dir}/modules.dep missing (install the kernel's modules)")
    if not os.path.isfile(args.busybox) or not is_static_elf(args.busybox):
        skip(f"{args.busybox} missing or not static (install busybox-static)")
    if not shutil.which("cpio"):
        skip("cpio not found (install cpio)")
    for b in args.binary:
        if not os.path.isfile(b):
            die(f"binary {b} does not exist (build it first)")
        if not is_static_elf(b):
            die(f"binary {b} is not statically linked; the guest has no libc")
    for m in args.module_file:
        if not os.path.isfile(m):
            die(f"module {m} does not exist (build it first)")
    for c in args.command:
        if "\n" in c:
            die(f"command {c!r} contains a newline; pass one --command per line")
    return qemu


def read_modules_dep(modules_dir):
    deps = {}
    with open(os.path.join(modules_dir, "modules.dep")) as f:
        for line in f:
            key, _, rest = line.partition(":")
            deps[key.strip()] = rest.split()
    return deps


def module_key(name):
    """kvm-amd and kvm_amd name the same module file (kvm-amd.ko)."""
    return name.replace("_", "-")


def resolve_modules(names, modules_dir):
    """Module names -> their .ko files under modules_dir, dependencies first, no repeats."""
    deps = read_modules_dep(modules_dir)
    by_name = {}
    for path in deps:
        base = os.path.basename(path)
        base = re.sub(r"\.ko(\.xz|\.zst|\.gz)?$", "", base)
        by_name[module_key(base)] = path
    order = []

    def visit(path, chain):
        if path in order:
            return
        if path in chain:
            die(f"module dependency cycle through {path}")
        for dep in deps.get(path, []):
            visit(dep, chain + [path])
        order.append(path)

    for name in names:
        path = by_name.get(module_key(name))
        if path is None:
            die(f"module {name} not found in {modules_dir}/modules.dep")
        visit(path, [])
    return [os.path.join(modules_dir, p) for p in order]


# --- initramfs ---------------------------------------------------------------------------

def copy_module(src, dst_dir):
    """Copies a .ko into the image; compressed ones are unpacked (busybox insmod takes raw)."""
    base = os.path.basename(src)
    if base.endswith(".xz"):
        dst = os.path.join(dst_dir, base[:-3])
        with lzma.open(src) as fi, open(dst, "wb") as fo:
            shutil.copyfileobj(fi, fo)
    elif base.endswith(".ko"):
        dst = os.path.join(dst_dir, base)
        shutil.copyfile(src, dst)
    else:
        die(f"cannot load {src}: only .ko and .ko.xz modules are supported")
    return os.path.basename(dst)


def build_initramfs(args, workdir):
    root = os.path.join(workdir, "root")
    shutil.rmtree(root, ignore_errors=True)
    for d in ("bin", "dev", "proc", "sys", "tmp", "dunegc/bin", "dunegc/modules"):
        os.makedirs(os.path.join(root, d))
    shutil.copyfile(args.busybox, os.path.join(root, "bin/busybox"))
    os.chmod(os.path.join(root, "bin/busybox"), 0o755)
    shutil.copyfile(GUEST_INIT, os.path.join(root, "init"))
    os.chmod(os.path.join(root, "init"), 0o755)

    for b in args.binary:
        dst = os.path.join(root, "dunegc/bin", os.path.basename(b))
        shutil.copyfile(b, dst)
        os.chmod(dst, 0o755)

    modules = resolve_modules(args.module, args.modules_dir) if args.module else []
    loaded = []
    for m in modules + args.module_file:
        name = copy_module(m, os.path.join(root, "dunegc/modules"))
        if name not in loaded:
            loaded.append(name)
    with open(os.path.join(root, "dunegc/modules.list"), "w") as f:
        f.write("".join(f"{m}\n" for m in loaded))
    with open(os.path.join(root, "dunegc/commands"), "w") as f:
        f.write("".join(f"{c}\n" for c in args.command))
    with open(os.path.join(root, "dunegc/command_timeout"), "w") as f:
        f.write(f"{int(args.command_timeout or max(10, args.timeout * 3 // 4))}\n")

    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        files.append(rel)
        files.extend(os.path.normpath(os.path.join(rel, n)) for n in sorted(filenames))
    image = os.path.join(workdir, "initramfs.cpio")
    with open(image, "wb") as out:
        subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"], cwd=root,
                       input="\n".join(files).encode() + b"\n", stdout=out, check=True)
    return image, loaded


# --- boot --------------------------------------------------------------------------------

def qemu_command(args, qemu, image, markers_path):
    """The QEMU command line: serial 0 is the console, serial 1 the marker channel."""
    accel = "tcg" if args.tcg_threads == "multi" else "tcg,thread=single"
    return [qemu, "-accel", accel, "-cpu", args.cpu, "-smp", str(args.smp),
            "-m", str(args.memory), "-kernel", args.kernel, "-initrd", image,
            "-append", "console=ttyS0 loglevel=7 panic=-1 oops=panic " + args.append,
            "-nographic", "-nodefaults", "-monitor", "none", "-no-reboot",
            "-serial", "stdio", "-serial", f"file:{markers_path}"]


def boot(args, qemu, image, workdir):
    console_path = os.path.join(workdir, "console.log")
    markers_path = os.path.join(workdir, "markers.log")
    for p in (console_path, markers_path):
        if os.path.exists(p):
            os.unlink(p)
    cmd = qemu_command(args, qemu, image, markers_path)
    with open(os.path.join(workdir, "qemu.cmd"), "w") as f:
        f.write(" ".join(cmd) + "\n")
    start = time.monotonic()
    with open(console_path, "wb") as console:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=console,
                                stderr=subprocess.STDOUT)
        try:
            rc = proc.wait(timeout=args.timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc, timed_out = None, True
    wall = time.monotonic() - start
    return read_text(console_path), read_text(markers_path), rc, timed_out, wall


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").replace("\r", "")
    except FileNotFoundError:
        return ""


# --- verdict -----------------------------------------------------------------------------

class Verdict:
    def __init__(self):
        self.failures = []   # (kind, message)
        self.kernel_lines = []  # (what, index into console lines)
        self.results = {}    # command index -> rc
        self.modules = {}    # module file -> rc
        self.boot_s = None
        self.running = None  # command index that began but never ended

    @property
    def ok(self):
        return not self.failures

    def kinds(self):
        return {k for k, _ in self.failures}


def analyze(console, markers, n_modules, n_commands, qemu_rc, timed_out):
    v = Verdict()
    done = False
    for line in markers.splitlines():
        m = MARKER.fullmatch(line.strip())
        if not m:
            continue  # a marker garbled in transit is ignored, never misread
        what, a, b = m.group(1), m.group(2), m.group(3)
        if what == "BOOTED" and a:
            v.boot_s = float(a)
        elif what == "MODULE" and a and b:
            v.modules[a] = int(b)
        elif what == "BEGIN" and a and a.isdigit():
            v.running = int(a)
        elif what == "END" and a and a.isdigit() and b:
            v.results[int(a)] = int(b)
            v.running = None
        elif what == "DONE":
            done = True

    lines = console.splitlines()
    for i, line in enumerate(lines):
        for what, rx in BAD_KERNEL_LINES:
            if rx.search(line):
                v.kernel_lines.append((what, i))
                break
    if v.kernel_lines:
        whats = sorted({w for w, _ in v.kernel_lines})
        v.failures.append(("kernel", "guest kernel reported: " + ", ".join(whats)))

    if v.boot_s is None:
        v.failures.append(("boot", "guest never reached /init"))
    for name, rc in v.modules.items():
        if rc != 0:
            v.failures.append(("module", f"insmod {name} failed (rc={rc})"))
    if v.boot_s is not None and not any(rc != 0 for rc in v.modules.values()):
        if len(v.modules) < n_modules:
            v.failures.append(("module", f"only {len(v.modules)} of {n_modules} modules loaded"))
        for i in range(1, n_commands + 1):
            rc = v.results.get(i)
            if rc is not None and rc != 0:
                v.failures.append(("command", f"command {i} exited with status {rc}"))
            elif rc is None and i != v.running:
                v.failures.append(("command", f"command {i} never ran"))
        if v.running is not None:
            v.failures.append(("command", f"command {v.running} never finished"))
    if timed_out:
        v.failures.append(("timeout", "wall-clock limit reached; guest killed"))
    elif not done:
        v.failures.append(("exit", f"guest stopped without finishing (qemu exit status {qemu_rc})"))
    elif qemu_rc not in (0, None):
        v.failures.append(("exit", f"qemu exited with status {qemu_rc}"))
    return v


def extract_files(markers):
    """The guest's $DUNEGC_OUT files from the markers log: ({name: bytes}, [problems]).

    A file counts only with its FILEEND marker, valid base64 and the byte count the guest
    announced, so a run cut short can never leave a truncated result behind."""
    files, problems = {}, []
    name = size = None
    chunks = []
    for line in markers.splitlines():
        s = line.strip()
        m = FILE_BEGIN.fullmatch(s)
        if m:
            if name is not None:
                problems.append(f"output file {name} has no end marker")
            name, size, chunks = m.group(1), int(m.group(2)), []
            continue
        if name is None:
            continue
        m = FILE_END.fullmatch(s)
        if m and m.group(1) == name:
            try:
                data = base64.b64decode("".join(chunks), validate=True)
            except (binascii.Error, ValueError) as e:
                problems.append(f"output file {name}: bad base64 ({e})")
            else:
                if len(data) == size:
                    files[name] = data
                else:
                    problems.append(f"output file {name}: {len(data)} of {size} bytes arrived")
            name = None
        else:
            chunks.append(s)
    if name is not None:
        problems.append(f"output file {name} has no end marker")
    return files, problems


def write_files(files, problems, output_dir, v):
    """Writes the complete files to output_dir; a damaged one fails the verdict."""
    for p in problems:
        v.failures.append(("output", p))
    os.makedirs(output_dir, exist_ok=True)
    for name, data in sorted(files.items()):
        with open(os.path.join(output_dir, name), "wb") as f:
            f.write(data)
        print(f"output: {os.path.join(output_dir, name)} ({len(data)} bytes)")


def command_output(lines, index):
    """Indices of the console lines between a command's BEGIN and END markers."""
    out, inside = [], False
    for i, line in enumerate(lines):
        s = line.strip()
        if s == f"{MARK} BEGIN {index}":
            inside = True
        elif s.startswith(f"{MARK} END {index} "):
            break
        elif inside:
            out.append(i)
    return out


ANSI = re.compile(r"\x1b\[[0-9;]*m")
GTEST_RESULT = re.compile(r"^\[\s*(OK|FAILED|SKIPPED)\s*\] ([^\s,]+),?(?: where .*)? \(\d+ ms\)$")


def gtest_summary(lines, index):
    """GoogleTest cases a command ran, by outcome (empty when it ran none)."""
    cases = {"OK": [], "FAILED": [], "SKIPPED": []}
    for j in command_output(lines, index):
        m = GTEST_RESULT.match(ANSI.sub("", lines[j]).strip())
        if m:
            cases[m.group(1)].append(m.group(2))
    return cases if any(cases.values()) else {}


def report(v, console, commands, title):
    lines = console.splitlines()
    boot = f"{v.boot_s:.1f} s" if v.boot_s is not None else "never"
    print(f"{title}: boot to /init {boot}, {len(v.results)}/{len(commands)} commands finished")
    for i, c in enumerate(commands, start=1):
        rc = v.results.get(i)
        state = "running at the end" if i == v.running else (
            "not run" if rc is None else f"rc={rc}")
        print(f"  [{i}] {state:>18}  {c}")
        cases = gtest_summary(lines, i)
        if cases:
            print(f"      gtest: {len(cases['OK'])} passed, {len(cases['SKIPPED'])} skipped, "
                  f"{len(cases['FAILED'])} failed")
            for outcome in ("SKIPPED", "FAILED"):
                for name in cases[outcome]:
                    print(f"        {outcome.lower()}: {name}")
    if v.ok:
        return
    print("FAILED:")
    for _, msg in v.failures:
        print(f"  - {msg}")
    shown = set()
    for what, i in v.kernel_lines:
        if i in shown:
            continue
        print(f"--- guest kernel: {what} (console line {i + 1}) ---")
        for j in range(i, min(len(lines), i + CONTEXT_LINES)):
            shown.add(j)
            print(lines[j])
    for i in range(1, len(commands) + 1):
        if v.results.get(i, 0) != 0 or i == v.running:
            out = [j for j in command_output(lines, i) if j not in shown][-150:]
            print(f"--- output of command {i} (last {len(out)} lines not shown above) ---")
            print("\n".join(lines[j] for j in out))
    if not v.kernel_lines and ("timeout" in v.kinds() or "exit" in v.kinds()):
        print("--- last 40 console lines ---")
        print("\n".join(lines[-40:]))


def finish(v, expect, console, commands, title):
    report(v, console, commands, title)
    if expect:
        if expect in v.kinds():
            print(f"PASSED: the expected '{expect}' failure was detected")
            return 0
        print(f"FAILED: expected a '{expect}' failure, got: {sorted(v.kinds()) or 'none'}")
        return 1
    print("PASSED" if v.ok else "see above; full logs in the work directory")
    return 0 if v.ok else 1


# --- command line ------------------------------------------------------------------------

FAILURE_KINDS = ["kernel", "boot", "module", "command", "timeout", "exit", "output"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="build the initramfs, boot, judge")
    r.add_argument("--name", required=True)
    r.add_argument("--workdir", required=True)
    r.add_argument("--binary", action="append", default=[], help="static program -> /dunegc/bin")
    r.add_argument("--module", action="append", default=[],
                   help="module of the guest kernel by name (dependencies follow modules.dep)")
    r.add_argument("--module-file", action="append", default=[], help="a .ko built here")
    r.add_argument("--command", action="append", default=[], help="guest shell command")
    r.add_argument("--timeout", type=float, default=120, help="wall-clock limit (s)")
    r.add_argument("--command-timeout", type=float, default=0,
                   help="per-command limit in the guest, after which the command's tasks "
                        "and kernel stacks are printed and it is killed (default 3/4 of "
                        "--timeout)")
    r.add_argument("--memory", type=int, default=1024, help="guest memory (MiB)")
    r.add_argument("--smp", type=int, default=2)
    r.add_argument("--cpu", default="qemu64,+svm,+npt")
    r.add_argument("--tcg-threads", choices=("multi", "single"), default="multi",
                   help="QEMU's TCG: one host thread per vCPU (default) or one for all "
                        "(see docs/kmod.md: multi-threaded TCG's nested-paging defects)")
    r.add_argument("--append", default="", help="extra kernel command line")
    r.add_argument("--kernel", default="/boot/vmlinuz-6.1.0-56-amd64")
    r.add_argument("--modules-dir", default=None, help="default /lib/modules/<release>")
    r.add_argument("--busybox", default="/bin/busybox")
    r.add_argument("--qemu", default="qemu-system-x86_64")
    r.add_argument("--output-dir", help="write the guest's $DUNEGC_OUT files here")
    r.add_argument("--skip-reason", default="", help="report SKIPPED with this reason")
    r.add_argument("--expect-failure", choices=FAILURE_KINDS,
                   help="pass only if this kind of failure is detected (harness self-tests)")

    c = sub.add_parser("check-log", help="judge captured logs (the parser's tests)")
    c.add_argument("console")
    c.add_argument("markers")
    c.add_argument("--modules", type=int, default=0)
    c.add_argument("--commands", type=int, default=0)
    c.add_argument("--qemu-rc", type=int, default=0)
    c.add_argument("--timed-out", action="store_true")
    c.add_argument("--expect-failure", choices=FAILURE_KINDS)
    args = ap.parse_args()

    if args.cmd == "check-log":
        console, markers = read_text(args.console), read_text(args.markers)
        v = analyze(console, markers, args.modules, args.commands,
                    None if args.timed_out else args.qemu_rc, args.timed_out)
        cmds = [f"(command {i})" for i in range(1, args.commands + 1)]
        return finish(v, args.expect_failure, console, cmds, os.path.basename(args.console))

    if args.modules_dir is None:
        rel = kernel_release(args.kernel)
        args.modules_dir = f"/lib/modules/{rel}" if rel else ""
    qemu = preflight(args)
    os.makedirs(args.workdir, exist_ok=True)
    image, modules = build_initramfs(args, args.workdir)
    print(f"{args.name}: booting {os.path.basename(args.kernel)} under TCG "
          f"({args.cpu}, {args.smp} vCPUs, {args.memory} MiB), modules: "
          f"{' '.join(modules) or 'none'}, limit {args.timeout:.0f} s", flush=True)
    console, markers, rc, timed_out, wall = boot(args, qemu, image, args.workdir)
    v = analyze(console, markers, len(modules), len(args.command), rc, timed_out)
    if args.output_dir:
        write_files(*extract_files(markers), args.output_dir, v)
    status = finish(v, args.expect_failure, console, args.command,
                    f"{args.name} ({wall:.1f} s wall)")
    print(f"logs: {args.workdir}/console.log, {args.workdir}/markers.log")
    return status


if __name__ == "__main__":
    sys.exit(main())
