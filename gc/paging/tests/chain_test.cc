// Faults that are not a backend's to handle reach whatever handler was there before it.
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>

#include "backend_fixture.h"

namespace dunegc::paging::test {
namespace {

sigjmp_buf jump_back;
volatile sig_atomic_t previous_calls = 0;
void *volatile previous_addr = nullptr;

void previous_handler(int, siginfo_t *info, void *) {
  previous_calls = previous_calls + 1;
  previous_addr = info->si_addr;
  siglongjmp(jump_back, 1);
}

// Installs previous_handler for SIGSEGV and SIGBUS before the backend opens over it.
class Chaining : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    struct sigaction sa {};
    sa.sa_sigaction = previous_handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, &saved_segv_);
    sigaction(SIGBUS, &sa, &saved_bus_);
    std::string why;
    backend = open(GetParam(), &why);
    if (!backend) GTEST_SKIP() << "backend " << GetParam() << " is unsupported here: " << why;
    if (!backend->supports(Feature::trap).ok)
      GTEST_SKIP() << GetParam() << " lacks trap: " << backend->supports(Feature::trap).why;
  }
  void TearDown() override {
    backend.reset();
    sigaction(SIGSEGV, &saved_segv_, nullptr);
    sigaction(SIGBUS, &saved_bus_, nullptr);
  }

  // Touch `p` for writing; true if previous_handler took the fault.
  static bool write_reaches_previous(void *p) {
    previous_calls = 0;
    if (sigsetjmp(jump_back, 1) == 0) {
      write_byte(p, 1);
      return false;
    }
    return previous_calls == 1 && previous_addr == p;
  }

  std::unique_ptr<Backend> backend;
  struct sigaction saved_segv_ {
  }, saved_bus_{};
};

TEST_P(Chaining, FaultOutsideEveryRegionReachesThePreviousHandler) {
  void *foreign = mmap(nullptr, kPageSize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(foreign, MAP_FAILED);
  EXPECT_TRUE(write_reaches_previous(foreign));
  munmap(foreign, kPageSize);
}

TEST_P(Chaining, UnhandledFaultInARegion) {
  void *m = nullptr;
  ASSERT_EQ(backend->map(kPageSize, Backing::anonymous, &m), 0);
  ASSERT_EQ(backend->protect(m, kPageSize, Prot::read), 0);
  backend->set_fault_handler(nullptr, nullptr);  // every fault unhandled
  if (GetParam() == "uffd") {
    // The writer sleeps in the kernel; no other handler can be asked: a loud abort.
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(write_byte(m, 1), "unhandled write fault");
  } else {
    EXPECT_TRUE(write_reaches_previous(m));
  }
}

TEST_P(Chaining, ClosingTheBackendRestoresThePreviousHandler) {
  backend.reset();
  struct sigaction cur {};
  sigaction(GetParam() == "uffd-sigbus" ? SIGBUS : SIGSEGV, nullptr, &cur);
  EXPECT_EQ(cur.sa_sigaction, previous_handler);
}

INSTANTIATE_FOR_ALL_BACKENDS(Chaining);

}  // namespace
}  // namespace dunegc::paging::test
