// DIRTY for every backend: exactly the written pages, over many random write sets.
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "backend_fixture.h"

namespace dunegc::paging::test {
namespace {

using Dirty = BackendTest;

std::set<size_t> indices(const PageBitmap &bm) {
  std::set<size_t> s;
  bm.for_each([&](size_t i) { s.insert(i); });
  return s;
}

// Seeds for the property test; DUNEGC_PAGING_SEEDS lowers it where time is short (QEMU).
unsigned seeds() {
  const char *env = getenv("DUNEGC_PAGING_SEEDS");
  return env ? unsigned(atoi(env)) : 40;
}

TEST_P(Dirty, ReportsExactlyTheWrittenPages) {
  REQUIRE_FEATURE(Feature::dirty);
  for (unsigned seed = 1; seed <= seeds(); seed++) {
    std::mt19937 rng(seed);
    size_t pages = 1 + rng() % 2048;
    Backing backing = (seed % 3 == 0 && has(Feature::map2)) ? Backing::shared : Backing::anonymous;
    char *m = map(pages, backing);
    ASSERT_NE(m, nullptr);
    if (seed % 2) memset(m, 1, pages * kPageSize);  // populated before start, or not
    ASSERT_EQ(backend->dirty_start(m), 0);
    PageBitmap bm;
    for (int epoch = 0; epoch < 4; epoch++) {
      double fraction = epoch == 0 ? 0.0 : epoch == 3 ? 1.0 : double(rng() % 1000) / 1000;
      std::set<size_t> written;
      for (size_t i = 0; i < pages; i++) {
        if (double(rng() % 1000) / 1000 < fraction) {
          written.insert(i);
          size_t off = rng() % kPageSize;
          write_byte(page_of(m, i) + off, uint8_t(rng()));
          write_byte(page_of(m, i) + (off ^ 1), 1);
        } else if (rng() % 4 == 0) {
          (void)read_byte(page_of(m, i) + rng() % kPageSize);  // reads are not writes
        }
      }
      // Collect in two pieces: a random split must partition the answer.
      size_t split = rng() % (pages + 1);
      std::set<size_t> got;
      if (split > 0) {
        ASSERT_EQ(backend->dirty_collect(m, split * kPageSize, bm), 0);
        got = indices(bm);
      }
      if (split < pages) {
        ASSERT_EQ(backend->dirty_collect(page_of(m, split), (pages - split) * kPageSize, bm), 0);
        for (size_t i : indices(bm)) got.insert(split + i);
      }
      ASSERT_EQ(got, written) << "seed " << seed << " epoch " << epoch << " pages " << pages;
      ASSERT_EQ(backend->dirty_collect(m, pages * kPageSize, bm), 0);
      ASSERT_EQ(bm.count(), 0u) << "collect did not reset, seed " << seed;
    }
    ASSERT_EQ(backend->dirty_stop(m), 0);
    ASSERT_EQ(backend->unmap(m), 0);
  }
}

TEST_P(Dirty, WritesBeforeStartAndUntouchedPagesAreNotReported) {
  REQUIRE_FEATURE(Feature::dirty);
  char *m = map(64);
  memset(m, 1, 32 * kPageSize);  // first half populated, second half never touched
  ASSERT_EQ(backend->dirty_start(m), 0);
  for (size_t i = 0; i < 64; i++) (void)read_byte(page_of(m, i));
  PageBitmap bm;
  ASSERT_EQ(backend->dirty_collect(m, 64 * kPageSize, bm), 0);
  EXPECT_EQ(bm.count(), 0u);
  write_byte(page_of(m, 40), 1);  // a page first mapped by a read (the zero page)
  write_byte(page_of(m, 3), 2);
  ASSERT_EQ(backend->dirty_collect(m, 64 * kPageSize, bm), 0);
  EXPECT_EQ(bm.list(), (std::vector<void *>{page_of(m, 3), page_of(m, 40)}));
}

// Transparent huge pages carry one PTE-level bit for 2 MiB; tracking must still answer
// per 4 KiB page. (softdirty maps its regions MADV_NOHUGEPAGE for exactly this reason.)
TEST_P(Dirty, HugePageBackedRegionIsExactPerPage) {
  REQUIRE_FEATURE(Feature::dirty);
  constexpr size_t kPages = 2048;  // 8 MiB: at least one aligned 2 MiB extent inside
  char *m = map(kPages);
  if (GetParam() != "softdirty") madvise(m, kPages * kPageSize, MADV_HUGEPAGE);
  memset(m, 1, kPages * kPageSize);
  ASSERT_EQ(backend->dirty_start(m), 0);
  std::set<size_t> written = {0, 511, 512, 700, 1024, 2047};
  for (size_t i : written) write_byte(page_of(m, i) + 9, 3);
  PageBitmap bm;
  ASSERT_EQ(backend->dirty_collect(m, kPages * kPageSize, bm), 0);
  EXPECT_EQ(indices(bm), written);
}

// Dirty state belongs to virtual pages, as PTE dirty bits do: a write through an alias
// marks the alias.
TEST_P(Dirty, AliasesAreTrackedPerView) {
  REQUIRE_FEATURE(Feature::dirty);
  REQUIRE_FEATURE(Feature::map2);
  char *a = map(8, Backing::shared);
  char *b = alias(a);
  ASSERT_NE(b, nullptr);
  memset(a, 1, 8 * kPageSize);
  memset(b, 1, 8 * kPageSize);
  ASSERT_EQ(backend->dirty_start(a), 0);
  ASSERT_EQ(backend->dirty_start(b), 0);
  write_byte(page_of(a, 1), 1);
  write_byte(page_of(b, 6), 1);
  PageBitmap bm;
  ASSERT_EQ(backend->dirty_collect(a, 8 * kPageSize, bm), 0);
  EXPECT_EQ(indices(bm), (std::set<size_t>{1}));
  ASSERT_EQ(backend->dirty_collect(b, 8 * kPageSize, bm), 0);
  EXPECT_EQ(indices(bm), (std::set<size_t>{6}));
}

// A writer thread races with repeated collects. A write made after collect k returned
// must be reported by a later collect, and no page that was never written may be.
TEST_P(Dirty, ConcurrentWritesAreNeverLost) {
  REQUIRE_FEATURE(Feature::dirty_atomic);
  constexpr size_t kPages = 1024;
  char *m = map(kPages);
  memset(m, 1, kPages * kPageSize);
  ASSERT_EQ(backend->dirty_start(m), 0);
  std::atomic<int> epoch{0};                         // number of collects that have returned
  std::vector<std::atomic<int>> last_write(kPages);  // epoch seen before the page's last write
  for (auto &w : last_write) w = -1;
  std::atomic<bool> stop{false};
  std::atomic<size_t> writes{0};
  std::thread writer([&] {
    prepare_thread();
    std::mt19937 rng(3);
    while (!stop.load(std::memory_order_relaxed)) {
      size_t i = rng() % kPages;
      if (i % 8 == 0) continue;  // leave some pages unwritten
      int e = epoch.load(std::memory_order_acquire);
      write_byte(page_of(m, i) + rng() % kPageSize, 1);
      last_write[i].store(e, std::memory_order_relaxed);
      writes.fetch_add(1, std::memory_order_relaxed);
    }
  });
  std::vector<int> last_report(kPages, -1);
  PageBitmap bm;
  auto collect = [&] {
    ASSERT_EQ(backend->dirty_collect(m, kPages * kPageSize, bm), 0);
    int k = epoch.load(std::memory_order_relaxed) + 1;
    bm.for_each([&](size_t i) { last_report[i] = k; });
    epoch.store(k, std::memory_order_release);
  };
  // At least 200 collects while the writer makes at least 50000 writes (bounded in time).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((writes.load() < 50000 || epoch.load() < 200) &&
         std::chrono::steady_clock::now() < deadline)
    collect();
  stop = true;
  writer.join();
  collect();
  size_t written = 0;
  for (size_t i = 0; i < kPages; i++) {
    int w = last_write[i].load();
    if (w < 0) {
      EXPECT_EQ(last_report[i], -1) << "page " << i << " reported but never written";
    } else {
      written++;
      EXPECT_GT(last_report[i], w)
          << "page " << i << ": a write after collect " << w << " was lost";
    }
  }
  EXPECT_GT(written, kPages / 2);
  EXPECT_GE(epoch.load(), 200);
  EXPECT_GE(writes.load(), 50000u);
}

// A system call writing into a tracked page: recorded, or refused with EFAULT, or (where
// the backend says system-call writes go unchecked) done and not recorded.
TEST_P(Dirty, SystemCallWrites) {
  REQUIRE_FEATURE(Feature::dirty);
  char *m = map(2);
  memset(m, 0, 2 * kPageSize);
  ASSERT_EQ(backend->dirty_start(m), 0);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_EQ(write(fds[1], "xyz", 3), 3);
  ssize_t got = read(fds[0], m + kPageSize + 10, 3);
  int err = errno;
  close(fds[0]);
  close(fds[1]);
  PageBitmap bm;
  ASSERT_EQ(backend->dirty_collect(m, 2 * kPageSize, bm), 0);
  if (has(Feature::dirty_kernel_writes)) {
    EXPECT_EQ(got, 3);
    EXPECT_EQ(indices(bm), (std::set<size_t>{1}));
  } else if (!has(Feature::kernel_writes_checked)) {  // dune: goes through, unrecorded
    EXPECT_EQ(got, 3) << why_not(Feature::kernel_writes_checked);
    EXPECT_EQ(bm.count(), 0u);
    EXPECT_EQ(memcmp(m + kPageSize + 10, "xyz", 3), 0);
  } else {
    EXPECT_EQ(got, -1);
    EXPECT_EQ(err, EFAULT) << why_not(Feature::dirty_kernel_writes);
    EXPECT_EQ(bm.count(), 0u);
  }
}

TEST_P(Dirty, ComposesWithTrappingProtection) {
  REQUIRE_FEATURE(Feature::dirty);
  REQUIRE_FEATURE(Feature::trap);
  char *m = map(4);
  log->cover(m);
  ASSERT_EQ(backend->dirty_start(m), 0);
  int rc = backend->protect(page_of(m, 2), kPageSize, Prot::read);
  if (!has(Feature::protect_while_tracking)) {
    EXPECT_EQ(rc, -EBUSY) << why_not(Feature::protect_while_tracking);
    ASSERT_EQ(backend->dirty_stop(m), 0);
    ASSERT_EQ(backend->protect(page_of(m, 2), kPageSize, Prot::read), 0);
    EXPECT_EQ(backend->dirty_start(m), -EBUSY);  // its protection would be lost
    return;
  }
  ASSERT_EQ(rc, 0);
  log->prot_of(page_of(m, 2)) = Prot::read;  // (protected above, before the model knew)
  write_byte(page_of(m, 1), 1);              // tracked, not protected: no user-visible trap
  EXPECT_EQ(log->n(), 0);
  write_byte(page_of(m, 2), 1);  // protected: the user's handler sees it, once
  EXPECT_EQ(log->n(), 1);
  PageBitmap bm;
  ASSERT_EQ(backend->dirty_collect(m, 4 * kPageSize, bm), 0);
  EXPECT_EQ(indices(bm), (std::set<size_t>{1, 2}));
  // Protect again after the collect: still one trap per write to it, still tracked.
  ASSERT_EQ(protect(page_of(m, 2), kPageSize, Prot::read), 0);
  write_byte(page_of(m, 2), 2);
  EXPECT_EQ(log->n(), 2);
  ASSERT_EQ(backend->dirty_collect(m, 4 * kPageSize, bm), 0);
  EXPECT_EQ(indices(bm), (std::set<size_t>{2}));
}

TEST_P(Dirty, StartStopAndMisuse) {
  REQUIRE_FEATURE(Feature::dirty);
  char *m = map(4);
  PageBitmap bm;
  EXPECT_EQ(backend->dirty_collect(m, kPageSize, bm), -EINVAL);  // not tracked yet
  EXPECT_EQ(backend->dirty_stop(m), -EINVAL);
  EXPECT_EQ(backend->dirty_start(m + kPageSize), -EINVAL);  // not a region's start
  ASSERT_EQ(backend->dirty_start(m), 0);
  EXPECT_EQ(backend->dirty_start(m), -EBUSY);
  write_byte(m, 1);
  ASSERT_EQ(backend->dirty_stop(m), 0);
  write_byte(page_of(m, 1), 1);           // untracked now
  ASSERT_EQ(backend->dirty_start(m), 0);  // a fresh start forgets the old record
  write_byte(page_of(m, 3), 1);
  ASSERT_EQ(backend->dirty_collect(m, 4 * kPageSize, bm), 0);
  EXPECT_EQ(indices(bm), (std::set<size_t>{3}));
  EXPECT_EQ(log->n(), 0);  // tracking never showed as a user trap
}

INSTANTIATE_FOR_ALL_BACKENDS(Dirty);

}  // namespace
}  // namespace dunegc::paging::test
