// What only the dune backend has: Dune mode per thread, libdune's fault path, MAP2 as two
// PTEs to one guest-physical page. (Every other property is checked by the parameterised
// cases, which paging_dune_test runs for dune.)
#include <dune.h>
#include <signal.h>

#include <thread>

#include "backend_fixture.h"

namespace dunegc::paging::test {
namespace {

class DuneBackend : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    backend = open("dune", &why);
    if (!backend) GTEST_SKIP() << "backend dune is unsupported here: " << why;
    log = std::make_unique<TrapLog>();
    backend->set_fault_handler(log_and_grant, log.get());
  }
  char *map(size_t pages, Backing b = Backing::anonymous) {
    void *p = nullptr;
    EXPECT_EQ(backend->map(pages * kPageSize, b, &p), 0);
    return static_cast<char *>(p);
  }
  std::unique_ptr<TrapLog> log;
  std::unique_ptr<Backend> backend;
};

// The probe runs Dune mode on a thread of its own; only open() changes the caller.
TEST(DuneProbe, LeavesTheCallerInNormalModeAndOpenEntersIt) {
  BackendInfo info = probe("dune");
  printf("backend dune: %s%s\n", info.supported ? "supported" : "unsupported: ", info.why.c_str());
  if (!info.supported) GTEST_SKIP() << "backend dune is unsupported here: " << info.why;
  EXPECT_FALSE(dune_in_dune_mode());
  auto b = open("dune");
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(dune_in_dune_mode());
}

// A thread outside Dune mode runs on the host's page tables: the backend refuses its
// calls, and its writes neither trap nor set dirty bits. prepare_thread() fixes both.
TEST_F(DuneBackend, ThreadsOutsideDuneModeAreRefusedAndBypassIt) {
  char *m = map(2);
  ASSERT_EQ(backend->dirty_start(m), 0);
  ASSERT_EQ(backend->protect(m, kPageSize, Prot::read), 0);
  log->cover(m);
  log->prot_of(m) = Prot::read;
  std::thread t([&] {
    EXPECT_FALSE(dune_in_dune_mode());
    void *p = nullptr;
    PageBitmap bm;
    EXPECT_EQ(backend->map(kPageSize, Backing::anonymous, &p), -EPERM);
    EXPECT_EQ(backend->protect(page_of(m, 1), kPageSize, Prot::read), -EPERM);
    EXPECT_EQ(backend->dirty_collect(m, 2 * kPageSize, bm), -EPERM);
    EXPECT_EQ(backend->accessed_collect(m, 2 * kPageSize, bm), -EPERM);
    EXPECT_EQ(backend->unmap(m), -EPERM);
    write_byte(m, 1);  // protected in the Dune page table only: no trap here
    write_byte(page_of(m, 1), 1);
    ASSERT_EQ(prepare_thread(), 0);
    EXPECT_TRUE(dune_in_dune_mode());
    write_byte(page_of(m, 1) + 1, 1);  // now tracked
    write_byte(m + 1, 2);              // and trapped
  });
  t.join();
  ASSERT_EQ(log->n(), 1);
  EXPECT_EQ(log->entries[0].addr, m + 1);
  PageBitmap bm;
  ASSERT_EQ(backend->dirty_collect(m, 2 * kPageSize, bm), 0);
  EXPECT_EQ(bm.list(), (std::vector<void *>{m, page_of(m, 1)}));
}

// One guest-physical page behind both views; a region with live aliases stays mapped.
TEST_F(DuneBackend, AliasPtesPointAtTheRegionsGuestPhysicalPages) {
  char *a = map(4, Backing::shared);
  void *b = nullptr;
  ASSERT_EQ(backend->map_alias(a, &b), 0);
  for (size_t i = 0; i < 4; i++) {
    ptent_t *pa, *pb;
    ASSERT_EQ(dune_vm_lookup(pgroot, page_of(a, i), CREATE_NONE, &pa), 0);
    ASSERT_EQ(dune_vm_lookup(pgroot, page_of(b, i), CREATE_NONE, &pb), 0);
    EXPECT_EQ(PTE_ADDR(*pa), PTE_ADDR(*pb));
    EXPECT_EQ(PTE_ADDR(*pa), dune_va_to_pa(page_of(a, i)));
    EXPECT_EQ(*pb & PTE_MIRROR, 0u);  // the backend's own: libdune never refills it
  }
  void *c = nullptr;
  EXPECT_EQ(backend->map_alias(b, &c), -EINVAL);  // an alias of an alias
  EXPECT_EQ(backend->unmap(a), -EBUSY);
  ASSERT_EQ(backend->unmap(b), 0);
  EXPECT_EQ(backend->unmap(a), 0);
}

// A fault the handler does not resolve, or outside every region, ends the process as
// libdune's own unhandled fault does: a line naming it, then SIGSEGV.
TEST_F(DuneBackend, UnhandledFaultEndsTheProcessBySigsegv) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  char *m = map(1);
  ASSERT_EQ(backend->protect(m, kPageSize, Prot::read), 0);
  EXPECT_EXIT(
      {
        backend->set_fault_handler(nullptr, nullptr);
        write_byte(m, 1);
      },
      ::testing::KilledBySignal(SIGSEGV), "unhandled write fault at 0x[0-9a-f]+ \\(the handler");
}

}  // namespace
}  // namespace dunegc::paging::test
