// dune-bench: the Dune paper's micro-benchmarks, in normal (Linux) mode and in Dune mode.
//
//   getpid        one forwarded system call
//   page_fault    first touch of a fresh anonymous page (the kernel allocates it)
//   trap          protect a page, touch it, unprotect it in the fault handler: Linux with
//                 mprotect + SIGSEGV, Dune with dune_vm_mprotect + its page-fault handler
//   syscall_trap  intercepting system calls: a ptrace(PTRACE_SYSCALL) tracer on Linux,
//                 ring-3 code whose syscalls a Dune handler passes through
//
// Each figure is the median (p10, p90) over repetitions of a batch, in TSC cycles per
// operation. Linux runs first, then the process enters Dune mode for the rest.
//
// usage: dune-bench [--quick] [--json FILE]
#include <dune.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bench/cycles.h>
#include <bench/json.h>
#include <bench/stats.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace {

struct Config {
  bool quick = false;
  std::string json;
};

struct Result {
  std::string name, what;
  bench::Summary linux_, dune;
  bool has_linux = false, has_dune = false;
};

// Runs `batch` (which performs `ops` operations) `reps` times; cycles per operation.
bench::Summary measure(int reps, int ops, const std::function<void()> &batch) {
  std::vector<double> v;
  batch();  // warm up
  for (int r = 0; r < reps; r++) {
    uint64_t t0 = bench::cycles_begin();
    batch();
    uint64_t t1 = bench::cycles_end();
    v.push_back(double(bench::corrected(t0, t1)) / ops);
  }
  return bench::summarize(v);
}

// ---- getpid ----------------------------------------------------------------------

bench::Summary bench_getpid(int reps, int ops) {
  return measure(reps, ops, [ops] {
    for (int i = 0; i < ops; i++) syscall(SYS_getpid);
  });
}

// ---- kernel page fault -------------------------------------------------------------

bench::Summary bench_page_fault(int reps, int pages) {
  std::vector<double> v;
  for (int r = 0; r <= reps; r++) {
    auto *p = static_cast<volatile char *>(mmap(nullptr, size_t(pages) * 4096,
                                                PROT_READ | PROT_WRITE,
                                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (p == MAP_FAILED) {
      perror("dune-bench: mmap");
      exit(1);
    }
    uint64_t t0 = bench::cycles_begin();
    for (int i = 0; i < pages; i++) p[size_t(i) * 4096] = 1;
    uint64_t t1 = bench::cycles_end();
    munmap(const_cast<char *>(p), size_t(pages) * 4096);
    if (r) v.push_back(double(bench::corrected(t0, t1)) / pages);
  }
  return bench::summarize(v);
}

// ---- user page fault (trap) --------------------------------------------------------

char *trap_page;

void linux_segv(int, siginfo_t *si, void *) {
  mprotect(reinterpret_cast<void *>(reinterpret_cast<uintptr_t>(si->si_addr) & ~4095UL), 4096,
           PROT_READ | PROT_WRITE);
}

bench::Summary bench_trap_linux(int reps, int ops) {
  struct sigaction sa = {}, old = {};
  sa.sa_sigaction = linux_segv;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &sa, &old);
  auto s = measure(reps, ops, [ops] {
    for (int i = 0; i < ops; i++) {
      mprotect(trap_page, 4096, PROT_NONE);
      *reinterpret_cast<volatile char *>(trap_page) = 1;
    }
  });
  sigaction(SIGSEGV, &old, nullptr);
  return s;
}

void dune_pgflt(uintptr_t addr, uint64_t, struct dune_tf *) {
  dune_vm_mprotect(pgroot, reinterpret_cast<void *>(addr & ~4095UL), 4096, PERM_R | PERM_W);
}

bench::Summary bench_trap_dune(int reps, int ops) {
  dune_register_pgflt_handler(dune_pgflt);
  auto s = measure(reps, ops, [ops] {
    for (int i = 0; i < ops; i++) {
      dune_vm_mprotect(pgroot, trap_page, 4096, PERM_NONE);
      *reinterpret_cast<volatile char *>(trap_page) = 1;
    }
  });
  dune_register_pgflt_handler(nullptr);
  return s;
}

// ---- system call interception ----------------------------------------------------

// Traced child: times `ops` getpid calls, reports cycles per call through the pipe.
bench::Summary bench_syscall_trap_linux(int reps, int ops) {
  std::vector<double> v;
  for (int r = 0; r <= reps; r++) {
    int p[2];
    if (pipe(p) < 0) exit(1);
    pid_t child = fork();
    if (child == 0) {
      close(p[0]);
      ptrace(PTRACE_TRACEME, 0, nullptr, nullptr);
      raise(SIGSTOP);
      uint64_t t0 = bench::cycles_begin();
      for (int i = 0; i < ops; i++) syscall(SYS_getpid);
      uint64_t t1 = bench::cycles_end();
      double per = double(bench::corrected(t0, t1)) / ops;
      if (write(p[1], &per, sizeof per) != sizeof per) _exit(1);
      _exit(0);
    }
    close(p[1]);
    int st;
    waitpid(child, &st, 0);  // the SIGSTOP
    ptrace(PTRACE_SETOPTIONS, child, nullptr, reinterpret_cast<void *>(PTRACE_O_TRACESYSGOOD));
    for (;;) {  // stop at every syscall entry and exit, as a sandbox monitor would
      ptrace(PTRACE_SYSCALL, child, nullptr, nullptr);
      if (waitpid(child, &st, 0) < 0 || WIFEXITED(st) || WIFSIGNALED(st)) break;
    }
    double per = 0;
    if (read(p[0], &per, sizeof per) != sizeof per) per = 0;
    close(p[0]);
    if (r) v.push_back(per);
  }
  return bench::summarize(v);
}

// Ring-3 code: rdtsc, `rbx` getpid calls, rdtsc, then syscall 0xd0e with the elapsed ticks.
extern "C" char bench_user_start[], bench_user_end[];
asm(R"(
  .text
  .globl bench_user_start, bench_user_end
bench_user_start:
  rdtsc
  shl $32, %rdx
  or %rax, %rdx
  mov %rdx, %r12
1:
  mov $39, %eax
  syscall
  dec %rbx
  jnz 1b
  rdtsc
  shl $32, %rdx
  or %rax, %rdx
  sub %r12, %rdx
  mov %rdx, %rdi
  mov $0xd0e, %eax
  syscall
  ud2
bench_user_end:
)");

long user_ticks;
void user_handler(struct dune_tf *tf) {
  if (tf->rax == 0xd0e) {
    user_ticks = static_cast<long>(tf->rdi);
    dune_ret_from_user(0);
  }
  dune_passthrough_syscall(tf);
}

bench::Summary bench_syscall_trap_dune(int reps, int ops) {
  static char *code, *stack;
  if (!code) {
    code = static_cast<char *>(aligned_alloc(4096, 4096));
    stack = static_cast<char *>(aligned_alloc(4096, 4 * 4096));
    memcpy(code, bench_user_start, size_t(bench_user_end - bench_user_start));
    dune_vm_map_phys(pgroot, code, 4096, reinterpret_cast<void *>(dune_va_to_pa(code)),
                     PERM_R | PERM_X | PERM_U);
    dune_vm_map_phys(pgroot, stack, 4 * 4096, reinterpret_cast<void *>(dune_va_to_pa(stack)),
                     PERM_R | PERM_W | PERM_U);
    dune_flush_tlb();
  }
  dune_register_syscall_handler(user_handler);
  std::vector<double> v;
  for (int r = 0; r <= reps; r++) {
    struct dune_tf tf;
    memset(&tf, 0, sizeof tf);
    tf.rip = reinterpret_cast<uint64_t>(code);
    tf.rsp = reinterpret_cast<uint64_t>(stack) + 4 * 4096 - 64;
    tf.rflags = 0x202;
    tf.rbx = uint64_t(ops);
    if (dune_jump_to_user(&tf) != 0) {
      fprintf(stderr, "dune-bench: cannot run ring-3 code\n");
      exit(1);
    }
    if (r) v.push_back(double(user_ticks) / ops);
  }
  dune_register_syscall_handler(nullptr);
  return bench::summarize(v);
}

// ---- driver --------------------------------------------------------------------------

void usage() {
  fprintf(stderr, "usage: dune-bench [--quick] [--json FILE]\n");
  exit(2);
}

void write_summary(bench::JsonWriter &w, const char *key, const bench::Summary &s) {
  w.key(key).begin_object();
  w.kv("median", s.median).kv("p10", s.p10).kv("p90", s.p90).kv("min", s.min).kv("max", s.max);
  w.kv("reps", uint64_t(s.reps)).end_object();
}

}  // namespace

int main(int argc, char **argv) {
  Config cfg;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--quick") {
      cfg.quick = true;
    } else if (a == "--json" && i + 1 < argc) {
      cfg.json = argv[++i];
    } else {
      fprintf(stderr, "dune-bench: unknown argument %s\n", argv[i]);
      usage();
    }
  }
  const int reps = cfg.quick ? 5 : 25;
  // Dune-mode operations cost 10^4-10^5 cycles on software virtualization: smaller batches.
  struct Plan {
    const char *name, *what;
    int linux_ops, dune_ops;
  } plan[] = {
      {"getpid", "forwarded getpid system call", 2000, cfg.quick ? 20 : 100},
      {"page_fault", "first touch of a fresh anonymous page", 256, 256},
      {"trap", "protect, fault to a user handler, unprotect", 500, cfg.quick ? 10 : 50},
      {"syscall_trap", "system call intercepted (ptrace vs. Dune ring 3)", 500,
       cfg.quick ? 20 : 100},
  };
  std::vector<Result> res;
  trap_page = static_cast<char *>(aligned_alloc(4096, 4096));
  memset(trap_page, 0, 4096);

  // Linux (normal mode) first: ptrace needs a child that is not in Dune mode.
  for (auto &p : plan) {
    Result r;
    r.name = p.name;
    r.what = p.what;
    std::string n = p.name;
    fprintf(stderr, "dune-bench: linux %s...\n", p.name);
    if (n == "getpid") r.linux_ = bench_getpid(reps, p.linux_ops);
    if (n == "page_fault") r.linux_ = bench_page_fault(reps, p.linux_ops);
    if (n == "trap") r.linux_ = bench_trap_linux(reps, p.linux_ops);
    if (n == "syscall_trap") r.linux_ = bench_syscall_trap_linux(reps, p.linux_ops);
    r.has_linux = true;
    res.push_back(r);
  }

  // The device of the backend dune_init() will pick (DUNE_BACKEND; unset or "auto"
  // prefers /dev/dune where it is usable): without it Dune mode is skipped, not failed.
  const char *want = getenv("DUNE_BACKEND");
  bool kmod = want && !strcmp(want, "kmod");
  if (!want || !*want || !strcmp(want, "auto")) kmod = access("/dev/dune", R_OK | W_OK) == 0;
  const char *dev = kmod ? "/dev/dune" : "/dev/kvm";
  std::string dune_skip;
  int fd = open(dev, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    dune_skip = std::string("no usable ") + dev + ": " + strerror(errno);
  } else {
    close(fd);
    int r = dune_init_and_enter();
    if (r) {
      fprintf(stderr, "dune-bench: cannot enter Dune mode: %s\n", strerror(-r));
      return 1;
    }
    for (size_t i = 0; i < res.size(); i++) {
      const std::string &n = res[i].name;
      int ops = plan[i].dune_ops;
      fprintf(stderr, "dune-bench: dune %s...\n", n.c_str());
      if (n == "getpid") res[i].dune = bench_getpid(reps, ops);
      if (n == "page_fault") res[i].dune = bench_page_fault(reps, ops);
      if (n == "trap") res[i].dune = bench_trap_dune(reps, ops);
      if (n == "syscall_trap") res[i].dune = bench_syscall_trap_dune(reps, ops);
      res[i].has_dune = true;
    }
  }

  printf("%-14s %14s %14s %10s\n", "benchmark", "linux cycles", "dune cycles", "dune/linux");
  for (auto &r : res) {
    if (r.has_dune)
      printf("%-14s %14.0f %14.0f %10.2f\n", r.name.c_str(), r.linux_.median, r.dune.median,
             r.dune.median / r.linux_.median);
    else
      printf("%-14s %14.0f %14s %10s\n", r.name.c_str(), r.linux_.median, "-", "-");
  }

  if (!cfg.json.empty()) {
    char platform[1024];
    dune_platform_json(platform, sizeof platform);
    bench::JsonWriter w;
    w.begin_object();
    w.key("platform").raw(platform);
    w.kv("suite", "libdune").kv("unit", "TSC cycles per operation").kv("quick", cfg.quick);
    w.key("dune_mode");
    if (dune_skip.empty()) {
      w.begin_object()
          .kv("backend", dune_backend_name(dune_backend()))
          .kv("guest_cpl", dune_guest_cpl())
          .end_object();
    } else {
      w.begin_object().kv("skipped", dune_skip).end_object();
    }
    w.key("benchmarks").begin_array();
    for (auto &r : res) {
      w.begin_object().kv("name", r.name).kv("what", r.what);
      write_summary(w, "linux", r.linux_);
      if (r.has_dune) {
        write_summary(w, "dune", r.dune);
        w.kv("dune_over_linux", r.dune.median / r.linux_.median);
      } else {
        w.key("dune").null();
        w.key("dune_over_linux").null();
      }
      w.end_object();
    }
    w.end_array().end_object();
    if (!w.write_file(cfg.json)) {
      fprintf(stderr, "dune-bench: cannot write %s: %s\n", cfg.json.c_str(), strerror(errno));
      return 1;
    }
  }
  return 0;
}
