// Entering Dune mode: what the thread keeps (registers, stack, TLS, FS/GS, signal mask,
// FPU/AVX state), the queries, and the errors dune_init() reports.
#include <asm/prctl.h>
#include <cpuid.h>
#include <fcntl.h>
#include <immintrin.h>
#include <linux/kvm.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "dune_test.h"

namespace {

thread_local int tls_value = 17;

TEST(DuneEntry, EnterIsIdempotentAndKeepsLocalsAndTls) {
  volatile int local = 1234;
  tls_value = 99;
  DUNE_ENTER_OR_SKIP();
  EXPECT_EQ(local, 1234);
  EXPECT_EQ(tls_value, 99);
  EXPECT_EQ(dune_enter(), 0);  // already in Dune mode
  EXPECT_EQ(dune_enter(), 0);
  EXPECT_TRUE(dune_in_dune_mode());
  EXPECT_EQ(dune_vcpu_index(), 0);
  tls_value++;
  EXPECT_EQ(tls_value, 100);
}

TEST(DuneEntry, QueriesNameBackendAndVirt) {
  enum dune_virt before = dune_detect_virt(nullptr, 0);
  DUNE_ENTER_OR_SKIP();
  EXPECT_EQ(dune_backend(), DUNE_BACKEND_KVM);
  EXPECT_STREQ(dune_backend_name(dune_backend()), "kvm");
  EXPECT_EQ(dune_virt(), before);
  EXPECT_EQ(dune_detect_virt(nullptr, 0), before);  // the same answer in Dune mode
  EXPECT_NE(dune_virt(), DUNE_VIRT_NONE);
  // Guest ring 0 is interpreted by KVM's emulator on KVM-PVM: Dune code runs at CPL 3.
  EXPECT_EQ(dune_guest_cpl(), dune_virt() == DUNE_VIRT_PVM ? 3 : 0);
  unsigned short cs;
  asm volatile("mov %%cs, %0" : "=r"(cs));
  EXPECT_EQ(cs & 3, dune_guest_cpl());
}

TEST(DuneEntry, SignalMaskSurvivesEntry) {
  sigset_t set, old, now;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  sigaddset(&set, SIGWINCH);
  ASSERT_EQ(sigprocmask(SIG_BLOCK, &set, &old), 0);
  DUNE_ENTER_OR_SKIP();
  ASSERT_EQ(sigprocmask(SIG_BLOCK, nullptr, &now), 0);
  EXPECT_TRUE(sigismember(&now, SIGUSR2));
  EXPECT_TRUE(sigismember(&now, SIGWINCH));
  EXPECT_FALSE(sigismember(&now, SIGUSR1));
  ASSERT_EQ(sigprocmask(SIG_SETMASK, &old, nullptr), 0);  // for tests run after this one
}

TEST(DuneEntry, FsAndGsBasesSurvive) {
  unsigned long gs_in = 0x12345000, gs = 0, fs_before = 0, fs = 0;
  ASSERT_EQ(syscall(SYS_arch_prctl, ARCH_SET_GS, gs_in), 0);
  ASSERT_EQ(syscall(SYS_arch_prctl, ARCH_GET_FS, &fs_before), 0);
  DUNE_ENTER_OR_SKIP();
  EXPECT_EQ(syscall(SYS_arch_prctl, ARCH_GET_GS, &gs), 0);
  EXPECT_EQ(gs, gs_in);
  EXPECT_EQ(syscall(SYS_arch_prctl, ARCH_GET_FS, &fs), 0);
  EXPECT_EQ(fs, fs_before);
  // And they can be changed in Dune mode.
  EXPECT_EQ(syscall(SYS_arch_prctl, ARCH_SET_GS, 0x777000UL), 0);
  EXPECT_EQ(syscall(SYS_arch_prctl, ARCH_GET_GS, &gs), 0);
  EXPECT_EQ(gs, 0x777000UL);
}

TEST(DuneEntry, MxcsrAndX87ControlSurvive) {
  // Round toward zero, all exceptions masked; x87 precision to single.
  unsigned mx = 0x7f80, mx_after = 0;
  unsigned short cw = 0x007f, cw_after = 0;
  _mm_setcsr(mx);
  asm volatile("fldcw %0" ::"m"(cw));
  DUNE_ENTER_OR_SKIP();
  mx_after = _mm_getcsr();
  asm volatile("fnstcw %0" : "=m"(cw_after));
  EXPECT_EQ(mx_after & 0xffc0, mx & 0xffc0);
  EXPECT_EQ(cw_after, cw);
  _mm_setcsr(0x1f80);
}

static bool cpu_has_avx512f() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return (b >> 16) & 1;
}

// Holds values in zmm16..zmm18 (caller-saved, untouched by the compiler here) across a
// page fault whose handler itself uses AVX (memcpy, printf): the interrupted vector state
// must come back.
static char *avx_page;
static void avx_pgflt(uintptr_t addr, uint64_t fec, struct dune_tf *tf) {
  (void)fec;
  (void)tf;
  char buf[8192];
  memset(buf, 0x5a, sizeof buf);
  memcpy(buf + 4096, buf, 4000);
  dune_printf("handler touched vector registers (%d)\n", buf[4000]);
  dune_vm_mprotect(pgroot, reinterpret_cast<void *>(addr & ~4095UL), 4096, PERM_R | PERM_W);
}

__attribute__((target("avx512f"))) static void avx_round(const uint64_t *in, uint64_t *out,
                                                         char *page) {
  asm volatile(
      "vmovdqu64 (%[in]), %%zmm16\n\t"
      "vpaddq %%zmm16, %%zmm16, %%zmm17\n\t"
      "movq $1, (%[page])\n\t"  // faults: the handler runs AVX code
      "vpaddq %%zmm16, %%zmm17, %%zmm18\n\t"
      "vmovdqu64 %%zmm18, (%[out])\n\t"
      :
      : [in] "r"(in), [out] "r"(out), [page] "r"(page)
      : "memory", "xmm16", "xmm17", "xmm18");
}

TEST(DuneEntry, Avx512StateSurvivesTraps) {
  if (!cpu_has_avx512f()) GTEST_SKIP() << "this CPU has no AVX-512";
  DUNE_ENTER_OR_SKIP();
  avx_page = static_cast<char *>(aligned_alloc(4096, 4096));
  memset(avx_page, 0, 4096);
  dune_register_pgflt_handler(avx_pgflt);
  alignas(64) uint64_t in[8] = {1, 2, 3, 4, 5, 6, 7, 8}, out[8] = {};
  for (int round = 0; round < 20; round++) {
    ASSERT_EQ(dune_vm_mprotect(pgroot, avx_page, 4096, PERM_R), 0);
    avx_round(in, out, avx_page);
    for (int i = 0; i < 8; i++) ASSERT_EQ(out[i], 3 * in[i]) << "round " << round;
  }
  dune_register_pgflt_handler(nullptr);
}

// AMX tile state: KVM can only carry it when its guest XSAVE area includes XTILEDATA,
// which needs ARCH_REQ_XCOMP_GUEST_PERM and a KVM that supports it.
TEST(DuneEntry, AmxNeedsKvmGuestSupport) {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((d >> 24) & 1))
    GTEST_SKIP() << "this CPU has no AMX";
  std::string why;
  if (!dune_test_kvm_usable(&why)) GTEST_SKIP() << why;
  syscall(SYS_arch_prctl, 0x1025 /* ARCH_REQ_XCOMP_GUEST_PERM */, 18);
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  int size = ioctl(vm, KVM_CHECK_EXTENSION, 208 /* KVM_CAP_XSAVE2 */);
  close(vm);
  close(kvm);
  if (size <= 4096)
    GTEST_SKIP() << "platform limitation: this KVM's guest XSAVE area is " << size
                 << " bytes after ARCH_REQ_XCOMP_GUEST_PERM(XTILEDATA), so no guest "
                    "(and no Dune thread) can hold AMX tile state";
  DUNE_ENTER_OR_SKIP();
  // With guest AMX support, tile configuration set in Dune mode reads back.
  ASSERT_EQ(syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18), 0);
  alignas(64) unsigned char cfg[64] = {1}, back[64] = {};
  cfg[16] = 64;  // tile 0: 64 bytes per row
  cfg[48] = 16;  // 16 rows
  asm volatile("ldtilecfg %0" ::"m"(cfg));
  asm volatile("sttilecfg %0" : "=m"(back));
  EXPECT_EQ(memcmp(cfg, back, 64), 0);
  asm volatile("tilerelease");
}

TEST(DuneEntry, BackendSelectionErrorsAreClear) {
  DUNE_FRESH_PROCESS();
  std::string out;
  int st = dune_test_run_child(
      [] {
        setenv("DUNE_BACKEND", "bogus", 1);
        return dune_init(true) == -EINVAL ? 0 : 1;
      },
      &out);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out;
  EXPECT_NE(out.find("DUNE_BACKEND=bogus"), std::string::npos) << out;

  out.clear();
  st = dune_test_run_child(
      [] {
        setenv("DUNE_BACKEND", "kmod", 1);
        int r = dune_init(true);
        return r < 0 && dune_backend() == DUNE_BACKEND_NONE ? 0 : 1;
      },
      &out);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out;
  EXPECT_NE(out.find("/dev/dune"), std::string::npos) << out;
}

TEST(DuneEntry, PermissionDeniedIsNamed) {
  DUNE_FRESH_PROCESS();
  if (geteuid() != 0) GTEST_SKIP() << "needs root to drop to an unprivileged user";
  std::string why;
  if (!dune_test_kvm_usable(&why)) GTEST_SKIP() << why;
  std::string out;
  int st = dune_test_run_child(
      [] {
        if (setgid(65534) || setuid(65534)) return 3;  // nobody: no access to /dev/kvm
        return dune_init(true) == -EACCES ? 0 : 1;
      },
      &out);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out;
  EXPECT_NE(out.find("/dev/kvm: permission denied"), std::string::npos) << out;
}

TEST(DuneEntry, EnterBeforeInitFails) {
  DUNE_FRESH_PROCESS();
  std::string out;
  int st = dune_test_run_child([] { return dune_enter() == -EINVAL ? 0 : 1; }, &out);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out;
  EXPECT_NE(out.find("before a successful dune_init"), std::string::npos) << out;
}

TEST(DuneEntry, StatsPrintedAtExitWhenAsked) {
  DUNE_FRESH_PROCESS();
  std::string why;
  if (!dune_test_kvm_usable(&why)) GTEST_SKIP() << why;
  std::string out;
  int st = dune_test_run_child(
      [] {
        setenv("DUNE_STATS", "1", 1);
        if (dune_init_and_enter()) return 2;
        for (int i = 0; i < 100; i++) getppid();
        exit(5);  // exit_group in Dune mode: statistics, then the status
      },
      &out);
  ASSERT_TRUE(WIFEXITED(st)) << out;
  EXPECT_EQ(WEXITSTATUS(st), 5) << out;
  EXPECT_NE(out.find("dune-stats: vcpu 0: exits"), std::string::npos) << out;
  struct dune_vcpu_stats s;
  EXPECT_EQ(dune_stats_get(0, &s), -EINVAL);  // this process made no vCPU
}

}  // namespace
