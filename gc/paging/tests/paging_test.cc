// TRAP, PROT1, PROTN, UNPROT, MAP2 and batching, for every backend (parameterised; a
// backend that cannot work here, or lacks a feature, reports the case skipped and why).
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "backend_fixture.h"

namespace dunegc::paging::test {
namespace {

using Traps = BackendTest;
using Unprotect = BackendTest;
using Map2 = BackendTest;
using Batch = BackendTest;
using Errors = BackendTest;
using Unsupported = BackendTest;
using Accessed = BackendTest;

TEST_P(Traps, WriteToReadOnlyPageTrapsOnce) {
  REQUIRE_FEATURE(Feature::trap);
  char *m = map(4);
  log->cover(m);
  for (int i = 0; i < 4; i++) write_byte(page_of(m, i), uint8_t(10 + i));
  ASSERT_EQ(protect(page_of(m, 1), kPageSize, Prot::read), 0);

  EXPECT_EQ(read_byte(page_of(m, 1)), 11);  // reads are allowed: no trap
  EXPECT_EQ(log->n(), 0);
  write_byte(page_of(m, 1) + 123, 99);
  ASSERT_EQ(log->n(), 1);
  EXPECT_EQ(log->entries[0].addr, page_of(m, 1) + 123);  // the exact address
  EXPECT_EQ(log->entries[0].access, Access::write);
  write_byte(page_of(m, 1) + 5, 7);  // resolved: no second trap
  write_byte(page_of(m, 0), 1);
  write_byte(page_of(m, 2), 1);
  EXPECT_EQ(log->n(), 1);
  EXPECT_EQ(read_byte(page_of(m, 1) + 123), 99);
}

TEST_P(Traps, NoAccessPageTrapsOncePerMissingRight) {
  REQUIRE_FEATURE(Feature::protect_none);
  char *m = map(2);
  log->cover(m);
  write_byte(m + 8, 42);
  ASSERT_EQ(protect(m, kPageSize, Prot::none), 0);

  EXPECT_EQ(read_byte(m + 8), 42);  // trap 1: read, granted read
  EXPECT_EQ(read_byte(m + 9), 0);
  write_byte(m + 10, 1);  // trap 2: write, granted rw
  write_byte(m + 11, 1);
  EXPECT_EQ(read_byte(m + 10), 1);
  ASSERT_EQ(log->n(), 2);
  EXPECT_EQ(log->entries[0].access, Access::read);
  EXPECT_EQ(log->entries[0].addr, m + 8);
  EXPECT_EQ(log->entries[1].access, Access::write);
  EXPECT_EQ(log->entries[1].addr, m + 10);
}

TEST_P(Traps, WriteFirstToNoAccessPageTrapsOnce) {
  REQUIRE_FEATURE(Feature::protect_none);
  char *m = map(1);
  log->cover(m);
  ASSERT_EQ(protect(m, kPageSize, Prot::none), 0);
  write_byte(m, 5);
  EXPECT_EQ(read_byte(m), 5);
  ASSERT_EQ(log->n(), 1);
  EXPECT_EQ(log->entries[0].access, Access::write);
}

TEST_P(Traps, ExecFromNonExecPageTrapsAsExec) {
  REQUIRE_FEATURE(Feature::protect_exec);
  char *m = map(1);
  log->cover(m);
  m[0] = char(0xc3);                              // ret
  ASSERT_EQ(protect(m, kPageSize, Prot::rw), 0);  // readable, writable, not exec
  auto fn = reinterpret_cast<void (*)()>(m);
  fn();  // trap: exec, granted rwx
  fn();
  ASSERT_EQ(log->n(), 1);
  EXPECT_EQ(log->entries[0].access, Access::exec);
  EXPECT_EQ(log->entries[0].addr, m);
}

TEST_P(Traps, EveryPageOfAProtectedRangeTrapsOnce) {
  REQUIRE_FEATURE(Feature::trap);
  constexpr size_t kPages = 64;
  char *m = map(kPages);
  log->cover(m);
  ASSERT_EQ(protect(m, kPages * kPageSize, Prot::read), 0);  // PROTN
  std::vector<size_t> order(kPages);
  for (size_t i = 0; i < kPages; i++) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(7));
  for (size_t i : order) {
    write_byte(page_of(m, i) + i, uint8_t(i));
    write_byte(page_of(m, i) + i + 1, uint8_t(i));
  }
  ASSERT_EQ(log->n(), int(kPages));
  for (size_t k = 0; k < kPages; k++)
    EXPECT_EQ(log->entries[k].addr, page_of(m, order[k]) + order[k]);
}

TEST_P(Traps, UnresolvedTrapRetriesUntilResolved) {
  REQUIRE_FEATURE(Feature::trap);
  char *m = map(1);
  log->cover(m);
  ASSERT_EQ(protect(m, kPageSize, Prot::read), 0);
  log->leave_protected = 5;  // the handler returns "retry" five times without resolving
  write_byte(m, 3);
  EXPECT_EQ(log->n(), 6);
  EXPECT_EQ(read_byte(m), 3);
}

TEST_P(Traps, FaultOnAnotherThreadIsHandled) {
  REQUIRE_FEATURE(Feature::trap);
  char *m = map(2);
  log->cover(m);
  ASSERT_EQ(protect(m, 2 * kPageSize, Prot::read), 0);
  std::thread t([&] {
    ASSERT_EQ(prepare_thread(), 0);
    write_byte(m + kPageSize, 8);
  });
  t.join();
  ASSERT_EQ(log->n(), 1);
  EXPECT_EQ(log->entries[0].addr, m + kPageSize);
  EXPECT_EQ(read_byte(m + kPageSize), 8);
}

// read(2) into a protected page: traps like a write of the program's own where the
// backend says so, else fails with EFAULT and leaves the page as it was -- or, where the
// backend says system-call writes go unchecked (dune: the host kernel writes through the
// host's page tables), succeeds without a trap.
TEST_P(Traps, SystemCallWritingAProtectedPage) {
  REQUIRE_FEATURE(Feature::trap);
  char *m = map(1);
  log->cover(m);
  ASSERT_EQ(protect(m, kPageSize, Prot::read), 0);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_EQ(write(fds[1], "abc", 3), 3);
  ssize_t got = read(fds[0], m + 100, 3);
  int err = errno;
  close(fds[0]);
  close(fds[1]);
  if (has(Feature::trap_kernel_writes)) {
    EXPECT_EQ(got, 3);
    EXPECT_EQ(log->n(), 1);
    EXPECT_EQ(memcmp(m + 100, "abc", 3), 0);
  } else if (!has(Feature::kernel_writes_checked)) {
    EXPECT_EQ(got, 3) << why_not(Feature::kernel_writes_checked);
    EXPECT_EQ(log->n(), 0);
    EXPECT_EQ(memcmp(m + 100, "abc", 3), 0);
  } else {
    EXPECT_EQ(got, -1);
    EXPECT_EQ(err, EFAULT) << why_not(Feature::trap_kernel_writes);
    EXPECT_EQ(log->n(), 0);
    EXPECT_EQ(read_byte(m + 100), 0);
  }
}

// A thread that has just written a page (its TLB holds a writable translation) must trap
// on its next write once another thread has protected the page: the protection reaches
// running threads (dune: the cross-vCPU shootdown of apply()).
TEST_P(Traps, ProtectionReachesARunningThread) {
  REQUIRE_FEATURE(Feature::trap);
  char *m = map(1);
  log->cover(m);
  std::atomic<int> stage{0};
  std::thread t([&] {
    ASSERT_EQ(prepare_thread(), 0);
    write_byte(m, 1);  // a writable translation, cached
    stage = 1;
    while (stage.load() != 2) {
    }
    write_byte(m + 1, 2);  // must trap
    stage = 3;
  });
  while (stage.load() != 1) {
  }
  ASSERT_EQ(protect(m, kPageSize, Prot::read), 0);
  EXPECT_EQ(log->n(), 0);
  stage = 2;
  t.join();
  ASSERT_EQ(log->n(), 1);
  EXPECT_EQ(log->entries[0].addr, m + 1);
  EXPECT_EQ(read_byte(m + 1), 2);
}

TEST_P(Unprotect, RestoresAccessAndContents) {
  REQUIRE_FEATURE(Feature::trap);
  constexpr size_t kPages = 16;
  char *m = map(kPages);
  log->cover(m);
  for (size_t i = 0; i < kPages * kPageSize; i += 512) m[i] = char(i / 512);
  ASSERT_EQ(backend->protect(m, kPages * kPageSize, strongest()), 0);
  ASSERT_EQ(backend->unprotect(m, kPages * kPageSize), 0);
  for (size_t i = 0; i < kPages * kPageSize; i += 512) {
    EXPECT_EQ(read_byte(m + i), uint8_t(i / 512));
    write_byte(m + i, 1);
  }
  EXPECT_EQ(log->n(), 0);
}

TEST_P(Unprotect, PartOfARangeLeavesTheRestProtected) {
  REQUIRE_FEATURE(Feature::trap);
  constexpr size_t kPages = 8;
  char *m = map(kPages);
  log->cover(m);
  ASSERT_EQ(protect(m, kPages * kPageSize, strongest()), 0);
  ASSERT_EQ(protect(page_of(m, 3), 2 * kPageSize, Prot::rw), 0);  // UNPROT pages 3, 4
  write_byte(page_of(m, 3), 1);
  write_byte(page_of(m, 4), 1);
  EXPECT_EQ(log->n(), 0);
  for (size_t i = 0; i < kPages; i++) write_byte(page_of(m, i) + 1, 1);
  EXPECT_EQ(log->n(), int(kPages - 2));
}

TEST_P(Map2, AliasesAreCoherent) {
  REQUIRE_FEATURE(Feature::map2);
  constexpr size_t kPages = 16;
  char *a = map(kPages, Backing::shared);
  char *b = alias(a);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(a, b);
  std::mt19937 rng(1);
  for (int k = 0; k < 2000; k++) {
    size_t off = rng() % (kPages * kPageSize);
    uint8_t v = uint8_t(rng());
    bool via_a = rng() & 1;
    write_byte((via_a ? a : b) + off, v);
    ASSERT_EQ(read_byte((via_a ? b : a) + off), v);
  }
  ASSERT_EQ(backend->unmap(b), 0);
  EXPECT_EQ(backend->unmap(a), 0);
}

TEST_P(Map2, AliasesKeepDistinctProtections) {
  REQUIRE_FEATURE(Feature::map2);
  REQUIRE_FEATURE(Feature::trap);
  constexpr size_t kPages = 4;
  char *a = map(kPages, Backing::shared);
  char *b = alias(a);
  ASSERT_NE(b, nullptr);
  // One model over both views: index by offset from the lower one.
  char *lo = std::min(a, b);
  ASSERT_LT(size_t(std::max(a, b) - lo) / kPageSize, std::size(log->model));
  log->cover(lo);

  ASSERT_EQ(protect(b, kPages * kPageSize, Prot::read), 0);
  for (size_t i = 0; i < kPages; i++) write_byte(page_of(a, i), uint8_t(i + 1));  // a: rw
  EXPECT_EQ(log->n(), 0);
  for (size_t i = 0; i < kPages; i++) EXPECT_EQ(read_byte(page_of(b, i)), i + 1);
  EXPECT_EQ(log->n(), 0);
  write_byte(page_of(b, 2), 77);  // b is read-only: one trap, at b's address
  ASSERT_EQ(log->n(), 1);
  EXPECT_EQ(log->entries[0].addr, page_of(b, 2));
  EXPECT_EQ(read_byte(page_of(a, 2)), 77);

  // Swap: a read-only, b writable.
  ASSERT_EQ(protect(a, kPages * kPageSize, Prot::read), 0);
  ASSERT_EQ(protect(b, kPages * kPageSize, Prot::rw), 0);
  write_byte(page_of(b, 0), 5);
  EXPECT_EQ(log->n(), 1);
  write_byte(page_of(a, 0), 6);
  ASSERT_EQ(log->n(), 2);
  EXPECT_EQ(log->entries[1].addr, page_of(a, 0));
  EXPECT_EQ(read_byte(page_of(b, 0)), 6);
}

TEST_P(Map2, AliasNeedsASharedRegion) {
  REQUIRE_FEATURE(Feature::map2);
  char *m = map(2);
  void *alias = nullptr;
  EXPECT_EQ(backend->map_alias(m, &alias), -EINVAL);
  EXPECT_EQ(backend->map_alias(m + kPageSize, &alias), -EINVAL);  // not a region's start
}

// Apply the same random changes as one batch to one region and one by one to another;
// then find every page's real protection by touching it (a read, then a write) and
// counting traps. Both must match the model of in-order application.
TEST_P(Batch, BatchedEqualsOneByOne) {
  REQUIRE_FEATURE(Feature::trap);
  std::vector<Prot> prots = {Prot::read, Prot::rw};
  if (has(Feature::protect_none)) prots.push_back(Prot::none);
  constexpr size_t kPages = 48;
  for (unsigned seed = 1; seed <= 20; seed++) {
    std::mt19937 rng(seed);
    char *one = map(2 * kPages + 1);  // [batched pages | gap | one-by-one pages]
    char *two = page_of(one, kPages + 1);
    std::vector<Change> batch;
    std::vector<Prot> model(kPages, Prot::rw);
    for (int k = 0; k < 30; k++) {
      size_t first = rng() % kPages, n = 1 + rng() % std::min<size_t>(8, kPages - first);
      Prot p = prots[rng() % prots.size()];
      batch.push_back({page_of(one, first), n * kPageSize, p});
      ASSERT_EQ(backend->protect(page_of(two, first), n * kPageSize, p), 0);
      for (size_t i = first; i < first + n; i++) model[i] = p;
    }
    ASSERT_EQ(backend->apply(batch), 0);

    log->cover(one);
    for (size_t i = 0; i < kPages; i++)
      log->prot_of(page_of(one, i)) = log->prot_of(page_of(two, i)) = model[i];
    for (size_t i = 0; i < kPages; i++) {
      for (char *base : {one, two}) {
        int before = log->n();
        (void)read_byte(page_of(base, i));
        bool read_trapped = log->n() != before;
        write_byte(page_of(base, i), 1);
        bool write_trapped = log->n() != before + int(read_trapped);
        EXPECT_EQ(read_trapped, !allows(model[i], Prot::read)) << "seed " << seed << " page " << i;
        EXPECT_EQ(write_trapped, !allows(model[i], Prot::write))
            << "seed " << seed << " page " << i;
      }
    }
    log->count = 0;
    ASSERT_EQ(backend->unmap(one), 0);
  }
}

TEST_P(Errors, BadInputIsRefusedAndChangesNothing) {
  REQUIRE_FEATURE(Feature::trap);
  char *m = map(4);
  log->cover(m);
  EXPECT_EQ(backend->protect(m + 1, kPageSize, Prot::read), -EINVAL);  // misaligned
  EXPECT_EQ(backend->protect(m, 100, Prot::read), -EINVAL);            // partial page
  EXPECT_EQ(backend->protect(m, 0, Prot::read), -EINVAL);              // empty
  EXPECT_EQ(backend->protect(m, 5 * kPageSize, Prot::read), -EINVAL);  // past the end
  alignas(kPageSize) static char outside[2 * kPageSize];
  EXPECT_EQ(backend->protect(outside, kPageSize, Prot::read), -EINVAL);  // not managed
  const Change batch[] = {{m, kPageSize, Prot::read}, {m + 3, kPageSize, Prot::read}};
  EXPECT_EQ(backend->apply(batch), -EINVAL);  // the good first change is not applied
  write_byte(m, 1);
  EXPECT_EQ(log->n(), 0);
  PageBitmap bm;
  EXPECT_EQ(backend->dirty_collect(m, kPageSize, bm), -EINVAL);  // not tracked
  EXPECT_EQ(backend->unmap(m + kPageSize), -EINVAL);
  EXPECT_EQ(backend->unmap(outside), -EINVAL);
  void *p = nullptr;
  EXPECT_EQ(backend->map(0, Backing::anonymous, &p), -EINVAL);
  EXPECT_EQ(backend->map(SIZE_MAX, Backing::anonymous, &p), -EINVAL);
  EXPECT_EQ(backend->unmap(m), 0);
  EXPECT_EQ(backend->unmap(m), -EINVAL);  // twice
}

// Each feature a backend lacks has a reason, and the call that needs it is refused
// without effect -- never silently done some other way.
TEST_P(Unsupported, FeaturesSayWhyAndAreRefused) {
  char *m = map(2);
  log->cover(m);
  for (Feature f : kAllFeatures) {
    Support s = backend->supports(f);
    EXPECT_EQ(s.ok, s.why.empty()) << feature_name(f) << ": " << s.why;
  }
  if (!has(Feature::trap)) {
    EXPECT_EQ(backend->protect(m, kPageSize, Prot::read), -EOPNOTSUPP);
  }
  if (!has(Feature::protect_none)) {
    EXPECT_EQ(backend->protect(m, kPageSize, Prot::none), -EOPNOTSUPP);
  }
  if (!has(Feature::protect_exec)) {
    EXPECT_EQ(backend->protect(m, kPageSize, Prot::rwx), -EOPNOTSUPP);
  }
  PageBitmap bm;
  if (!has(Feature::accessed)) {
    EXPECT_EQ(backend->accessed_collect(m, kPageSize, bm), -EOPNOTSUPP);
  }
  if (!has(Feature::dirty)) {
    EXPECT_EQ(backend->dirty_start(m), -EOPNOTSUPP);
  }
  write_byte(m, 1);  // nothing above protected the page
  (void)read_byte(m + kPageSize);
  EXPECT_EQ(log->n(), 0);
}

// Accessed-bit sampling: a read sets the page's accessed bit only, a write its accessed
// and dirty bits; a collect reports exactly the pages touched since the last one.
TEST_P(Accessed, ReadsSetAccessedOnlyWritesSetDirtyToo) {
  REQUIRE_FEATURE(Feature::accessed);
  REQUIRE_FEATURE(Feature::dirty);
  constexpr size_t kPages = 256;
  char *m = map(kPages);
  memset(m, 1, kPages * kPageSize);
  ASSERT_EQ(backend->dirty_start(m), 0);
  PageBitmap acc, dirty;
  for (unsigned seed = 1; seed <= 10; seed++) {
    std::mt19937 rng(seed);
    ASSERT_EQ(backend->accessed_collect(m, kPages * kPageSize, acc), 0);  // forget the past
    std::vector<bool> read(kPages), written(kPages);
    for (size_t i = 0; i < kPages; i++) {
      unsigned what = rng() % 4;  // untouched, read, written, or both
      if (what & 1) {
        (void)read_byte(page_of(m, i) + rng() % kPageSize);
        read[i] = true;
      }
      if (what & 2) {
        write_byte(page_of(m, i) + rng() % kPageSize, 1);
        written[i] = true;
      }
    }
    ASSERT_EQ(backend->accessed_collect(m, kPages * kPageSize, acc), 0);
    ASSERT_EQ(backend->dirty_collect(m, kPages * kPageSize, dirty), 0);
    for (size_t i = 0; i < kPages; i++) {
      EXPECT_EQ(acc.test(i), read[i] || written[i]) << "seed " << seed << " page " << i;
      EXPECT_EQ(dirty.test(i), written[i]) << "seed " << seed << " page " << i;
    }
    ASSERT_EQ(backend->accessed_collect(m, kPages * kPageSize, acc), 0);
    EXPECT_EQ(acc.count(), 0u) << "collect did not reset, seed " << seed;
  }
  EXPECT_EQ(backend->accessed_collect(m + 1, kPageSize, acc), -EINVAL);  // misaligned
}

INSTANTIATE_FOR_ALL_BACKENDS(Traps);
INSTANTIATE_FOR_ALL_BACKENDS(Unprotect);
INSTANTIATE_FOR_ALL_BACKENDS(Map2);
INSTANTIATE_FOR_ALL_BACKENDS(Batch);
INSTANTIATE_FOR_ALL_BACKENDS(Errors);
INSTANTIATE_FOR_ALL_BACKENDS(Unsupported);
INSTANTIATE_FOR_ALL_BACKENDS(Accessed);

}  // namespace
}  // namespace dunegc::paging::test
