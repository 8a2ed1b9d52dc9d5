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

// Every backend that traps, open at once (as appel-li keeps them): each fault reaches the
// handler of the backend that owns the page, and no other.
TEST(SeveralBackends, EachFaultReachesItsOwnBackend) {
  struct Open {
    std::unique_ptr<Backend> b;
    std::unique_ptr<TrapLog> log;
    char *page;
  };
  std::vector<Open> all;
  for (const std::string &name : backend_names()) {
    // Not dune: opening it puts this thread in Dune mode, where faults arrive through
    // libdune's IDT instead of as signals, so the signal backends could not trap for it.
    if (name == "dune") continue;
    auto b = open(name);
    if (!b || !b->supports(Feature::trap).ok) continue;
    Open o{std::move(b), std::make_unique<TrapLog>(), nullptr};
    void *p = nullptr;
    ASSERT_EQ(o.b->map(kPageSize, Backing::anonymous, &p), 0);
    o.page = static_cast<char *>(p);
    o.log->cover(p);
    o.b->set_fault_handler(log_and_grant, o.log.get());
    ASSERT_EQ(o.b->protect(p, kPageSize, Prot::read), 0);
    o.log->prot_of(p) = Prot::read;
    all.push_back(std::move(o));
  }
  if (all.size() < 2) GTEST_SKIP() << "fewer than two trapping backends work here";
  for (size_t k = 0; k < all.size(); k++) {
    write_byte(all[k].page, 1);
    for (size_t j = 0; j < all.size(); j++)
      EXPECT_EQ(all[j].log->n(), j <= k ? 1 : 0)
          << all[j].b->name() << " after a write to " << all[k].b->name() << "'s page";
  }
  // Destroy the backends before their logs (a uffd handler thread may still use its log).
  for (Open &o : all) o.b.reset();
}

}  // namespace
}  // namespace dunegc::paging::test
