// Traps: handled exceptions, unhandled ones (a trap-frame dump and death by the matching
// signal), and Dune ring 3 whose every system call is intercepted and passed through.
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "dune_test.h"

// Ring-3 code, copied to a user page: getpid, gettid, write, then a "return to kernel"
// syscall (number 0xd0e) carrying getpid's result.
extern "C" char user_blob_start[], user_blob_end[];
asm(R"(
  .text
  .globl user_blob_start, user_blob_end
user_blob_start:
  mov $39, %eax
  syscall
  mov %rax, %rbx
  mov $186, %eax
  syscall
  mov $1, %edi
  lea 1f(%rip), %rsi
  mov $18, %edx
  mov $1, %eax
  syscall
  mov $0xd0e, %eax
  mov %rbx, %rdi
  syscall
  ud2
1: .ascii "hello from ring 3\n"
user_blob_end:
)");

namespace {

std::atomic<int> user_syscalls{0};
uint64_t user_page;
long user_pid = -1;

void user_syscall_handler(struct dune_tf *tf) {
  user_syscalls++;
  if (tf->rip < user_page || tf->rip >= user_page + 4096) dune_ret_from_user(-100);
  if (tf->rax == 0xd0e) {
    user_pid = static_cast<long>(ARG0(tf));
    dune_ret_from_user(user_syscalls.load());
  }
  dune_passthrough_syscall(tf);
}

TEST(DuneTrap, RingThreeSyscallsAreInterceptedAndPassedThrough) {
  DUNE_ENTER_OR_SKIP();
  auto *code = static_cast<char *>(aligned_alloc(4096, 4096));
  auto *stack = static_cast<char *>(aligned_alloc(4096, 4 * 4096));
  size_t len = static_cast<size_t>(user_blob_end - user_blob_start);
  memcpy(code, user_blob_start, len);
  user_page = reinterpret_cast<uint64_t>(code);
  ASSERT_EQ(dune_vm_map_phys(pgroot, code, 4096, reinterpret_cast<void *>(dune_va_to_pa(code)),
                             PERM_R | PERM_X | PERM_U),
            0);
  ASSERT_EQ(dune_vm_map_phys(pgroot, stack, 4 * 4096,
                             reinterpret_cast<void *>(dune_va_to_pa(stack)),
                             PERM_R | PERM_W | PERM_U),
            0);
  dune_flush_tlb();
  dune_register_syscall_handler(user_syscall_handler);
  for (int round = 1; round <= 3; round++) {
    struct dune_tf tf;
    memset(&tf, 0, sizeof tf);
    tf.rip = user_page;
    tf.rsp = reinterpret_cast<uint64_t>(stack) + 4 * 4096 - 64;
    tf.rflags = 0x202;
    user_syscalls = 0;
    int r = dune_jump_to_user(&tf);
    EXPECT_EQ(r, 4) << "round " << round;  // getpid, gettid, write, return
    EXPECT_EQ(user_pid, getpid());
    EXPECT_TRUE(dune_in_dune_mode());
  }
  // Back in Dune ring 0, syscalls are forwarded directly again.
  EXPECT_EQ(syscall(SYS_getpid), getpid());
  dune_register_syscall_handler(nullptr);
}

std::atomic<int> breakpoints{0};
void on_breakpoint(struct dune_tf *tf) {
  breakpoints++;
  (void)tf;  // rip already points past int3
}

TEST(DuneTrap, HandledBreakpointContinues) {
  DUNE_ENTER_OR_SKIP();
  ASSERT_EQ(dune_register_intr_handler(T_BRKPT, on_breakpoint), 0);
  for (int i = 0; i < 20; i++) asm volatile("int3");
  EXPECT_EQ(breakpoints.load(), 20);
  EXPECT_EQ(dune_register_intr_handler(256, on_breakpoint), -EINVAL);
  dune_register_intr_handler(T_BRKPT, nullptr);
}

// A handler may change the frame to resume elsewhere: skip a faulting 2-byte ud2.
void skip_ud2(struct dune_tf *tf) { tf->rip += 2; }

TEST(DuneTrap, HandlerCanRedirectTheFrame) {
  DUNE_ENTER_OR_SKIP();
  ASSERT_EQ(dune_register_intr_handler(T_ILLOP, skip_ud2), 0);
  volatile int after = 0;
  asm volatile("ud2");
  after = 1;
  EXPECT_EQ(after, 1);
  dune_register_intr_handler(T_ILLOP, nullptr);
}

// Unhandled exceptions: dump, then death by the signal a native fault would bring.
struct Death {
  const char *name;
  void (*fault)();
  int sig;
  const char *says;
};

void general_protection() { asm volatile("movq (%0), %%rax" ::"r"(0x8000000000000000ULL) : "rax"); }
void wild_jump() {
  void *p = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  reinterpret_cast<void (*)()>(p)();
}
void invalid_opcode() { asm volatile("ud2"); }
void divide_by_zero() {  // in assembly: UBSan would report the C division first
  asm volatile("xor %%edx, %%edx\n\tmov $10, %%eax\n\tdiv %0" ::"r"(0) : "rax", "rdx");
}
void null_write() {
  volatile uintptr_t addr = 16;  // hidden from the compiler's bounds checks
  *reinterpret_cast<volatile int *>(addr) = 1;
}

void PrintTo(const Death &d, std::ostream *os) { *os << d.name; }

class DuneDeath : public ::testing::TestWithParam<Death> {};

TEST_P(DuneDeath, DumpsTrapFrameAndDiesBySignal) {
  std::string why;
  if (!dune_test_kvm_usable(&why)) GTEST_SKIP() << why;
  const Death d = GetParam();
  std::string out;
  int st = dune_test_run_child(
      [&] {
        if (dune_init_and_enter()) return 100;
        d.fault();
        return 101;  // never: the fault ends the process
      },
      &out);
  ASSERT_TRUE(WIFSIGNALED(st)) << "wait status " << st << "\n" << out;
  EXPECT_EQ(WTERMSIG(st), d.sig) << out;
  EXPECT_NE(out.find("--- Begin Trap Dump ---"), std::string::npos) << out;
  EXPECT_NE(out.find("RIP 0x"), std::string::npos) << out;
  EXPECT_NE(out.find(d.says), std::string::npos) << out;
}

INSTANTIATE_TEST_SUITE_P(
    Faults, DuneDeath,
    ::testing::Values(Death{"GeneralProtection", general_protection, SIGSEGV,
                            "general protection"},
                      Death{"WildJump", wild_jump, SIGSEGV, "unhandled page fault"},
                      Death{"InvalidOpcode", invalid_opcode, SIGILL, "invalid opcode"},
                      Death{"DivideByZero", divide_by_zero, SIGFPE, "divide error"},
                      Death{"NullWrite", null_write, SIGSEGV, "error code 0x2"}),
    [](const ::testing::TestParamInfo<Death> &i) { return std::string(i.param.name); });

}  // namespace
