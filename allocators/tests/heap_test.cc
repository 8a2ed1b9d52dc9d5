#include "dunegc/allocators/heap.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

using namespace dunegc::allocators;

namespace {

// Fills an object with a pattern derived from its address and size, and checks it.
void stamp(void *p, size_t n) {
  auto *b = static_cast<unsigned char *>(p);
  for (size_t i = 0; i < n; i++) b[i] = static_cast<unsigned char>((reinterpret_cast<uintptr_t>(p) >> 4) + i);
}
bool stamped(const void *p, size_t n) {
  auto *b = static_cast<const unsigned char *>(p);
  for (size_t i = 0; i < n; i++)
    if (b[i] != static_cast<unsigned char>((reinterpret_cast<uintptr_t>(p) >> 4) + i)) return false;
  return true;
}

size_t random_size(std::mt19937 &rng) {
  switch (rng() % 10) {
    case 0: return kMaxSmallSize + rng() % 200000;  // large
    case 1: case 2: return 1 + rng() % kMaxSmallSize;
    default: return 1 + rng() % 256;
  }
}

}  // namespace

TEST(Heap, SmallObjectsAreAlignedDistinctAndSized) {
  Heap h;
  ASSERT_EQ(h.init(), 0);
  std::vector<void *> v;
  for (size_t n = 0; n <= 9000; n += 7) {
    void *p = h.allocate(n);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kGranule, 0u);
    EXPECT_GE(h.usable_size(p), n);
    stamp(p, n);
    v.push_back(p);
  }
  for (size_t i = 0; i < v.size(); i++) {
    ASSERT_TRUE(stamped(v[i], i * 7)) << i;
    EXPECT_EQ(h.deallocate(v[i]), 0);
  }
}

TEST(Heap, FreedObjectsAreReused) {
  Heap h;
  ASSERT_EQ(h.init(), 0);
  void *a = h.allocate(48);
  ASSERT_EQ(h.deallocate(a), 0);
  EXPECT_EQ(h.allocate(40), a);  // same class, LIFO thread cache
}

TEST(Heap, InvalidFreesAreRefusedAndLeaveTheHeapIntact) {
  Heap h;
  ASSERT_EQ(h.init(), 0);
  int on_stack = 0;
  char *small = static_cast<char *>(h.allocate(100));
  char *large = static_cast<char *>(h.allocate(100000));
  stamp(small, 100);
  stamp(large, 100000);
  EXPECT_EQ(h.deallocate(&on_stack), -EINVAL);
  EXPECT_EQ(h.deallocate(small + 16), -EINVAL);  // interior
  EXPECT_EQ(h.deallocate(large + 4096), -EINVAL);
  EXPECT_EQ(h.deallocate(reinterpret_cast<void *>(h.pages().frontier() + 4096)), -EINVAL);
  EXPECT_EQ(h.deallocate(nullptr), 0);
  EXPECT_TRUE(stamped(small, 100));
  EXPECT_TRUE(stamped(large, 100000));
  EXPECT_EQ(h.deallocate(large), 0);
  EXPECT_EQ(h.deallocate(large), -EINVAL);  // its pages are free now
  EXPECT_EQ(h.usable_size(small + 1), 0u);
  EXPECT_EQ(h.deallocate(small), 0);
}

TEST(Heap, ReallocatePreservesContentsAcrossClasses) {
  Heap h;
  ASSERT_EQ(h.init(), 0);
  char *p = static_cast<char *>(h.allocate(10));
  memcpy(p, "0123456789", 10);
  char *q = static_cast<char *>(h.reallocate(p, 12));
  EXPECT_EQ(q, p);  // still class 16
  q = static_cast<char *>(h.reallocate(q, 5000));
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(memcmp(q, "0123456789", 10), 0);
  q = static_cast<char *>(h.reallocate(q, 300000));
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(memcmp(q, "0123456789", 10), 0);
  q = static_cast<char *>(h.reallocate(q, 3));
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(memcmp(q, "012", 3), 0);
  int x;
  EXPECT_EQ(h.reallocate(&x, 10), nullptr);
  EXPECT_EQ(h.deallocate(q), 0);
}

TEST(Heap, AllocateZeroedClearsReusedMemory) {
  Heap h;
  ASSERT_EQ(h.init(), 0);
  void *a = h.allocate(200);
  memset(a, 0xff, 200);
  h.deallocate(a);
  auto *z = static_cast<unsigned char *>(h.allocate_zeroed(200));
  ASSERT_EQ(static_cast<void *>(z), a);
  for (int i = 0; i < 200; i++) ASSERT_EQ(z[i], 0);
}

TEST(Heap, RandomChurnKeepsContentsAndReturnsEverything) {
  Heap h;
  ASSERT_EQ(h.init(), 0);
  std::mt19937 rng(7);
  std::vector<std::pair<void *, size_t>> live;
  for (int i = 0; i < 200000; i++) {
    if (live.size() < 2000 && (live.empty() || rng() % 2)) {
      size_t n = random_size(rng);
      void *p = h.allocate(n);
      ASSERT_NE(p, nullptr);
      stamp(p, n < 64 ? n : 64);
      live.emplace_back(p, n);
    } else {
      size_t k = rng() % live.size();
      ASSERT_TRUE(stamped(live[k].first, live[k].second < 64 ? live[k].second : 64));
      ASSERT_EQ(h.deallocate(live[k].first), 0);
      live[k] = live.back();
      live.pop_back();
    }
  }
  for (auto &[p, n] : live) ASSERT_EQ(h.deallocate(p), 0);
  h.flush_thread_cache();
  HeapStats st = h.stats();
  EXPECT_EQ(st.small_bytes_in_use, 0u);
  EXPECT_EQ(st.small_bytes_cached, 0u);
  EXPECT_EQ(st.large.objects, 0u);
  EXPECT_EQ(st.small_spans_created, st.small_spans_released);
  EXPECT_EQ(st.pages.in_use_bytes, 0u);
  // Everything is free; decommitting gives all of it back.
  size_t committed = st.pages.committed_bytes;
  EXPECT_EQ(h.release_free_memory(), committed);
  EXPECT_EQ(h.stats().pages.committed_bytes, 0u);
}

TEST(Heap, LimitMakesAllocationFailCleanly) {
  Heap h;
  Heap::Options o;
  o.limit_bytes = size_t{4} << 20;
  ASSERT_EQ(h.init(o), 0);
  std::vector<void *> v;
  void *p;
  while ((p = h.allocate(100000)) != nullptr) v.push_back(p);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_GE(v.size(), 30u);
  EXPECT_LE(h.stats().pages.committed_bytes, o.limit_bytes);
  for (void *q : v) ASSERT_EQ(h.deallocate(q), 0);
  EXPECT_NE(h.allocate(100000), nullptr);
}

// 8 threads allocate, and free objects allocated by other threads (a ring), so objects
// travel between thread caches and central lists while contents stay intact.
TEST(Heap, ThreadsFreeEachOthersObjects) {
  Heap h;
  ASSERT_EQ(h.init(), 0);
  constexpr int kThreads = 8, kRounds = 40, kPerRound = 2000;
  struct Mailbox {
    std::atomic<std::vector<std::pair<void *, size_t>> *> box{nullptr};
  };
  std::vector<Mailbox> mail(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; t++) {
    ts.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int r = 0; r < kRounds; r++) {
        auto *mine = new std::vector<std::pair<void *, size_t>>();
        for (int i = 0; i < kPerRound; i++) {
          size_t n = random_size(rng);
          void *p = h.allocate(n);
          if (!p) { failures++; continue; }
          stamp(p, n < 32 ? n : 32);
          mine->emplace_back(p, n);
        }
        // Hand the batch to the next thread; free whatever the previous one left us.
        auto *old = mail[(t + 1) % kThreads].box.exchange(mine);
        if (old) {
          for (auto &[p, n] : *old) {
            if (!stamped(p, n < 32 ? n : 32)) failures++;
            if (h.deallocate(p) != 0) failures++;
          }
          delete old;
        }
      }
      h.flush_thread_cache();
    });
  }
  for (auto &t : ts) t.join();
  for (auto &m : mail) {
    if (auto *v = m.box.load()) {
      for (auto &[p, n] : *v) {
        if (!stamped(p, n < 32 ? n : 32)) failures++;
        if (h.deallocate(p) != 0) failures++;
      }
      delete v;
    }
  }
  h.flush_thread_cache();
  EXPECT_EQ(failures.load(), 0);
  HeapStats st = h.stats();
  EXPECT_EQ(st.small_bytes_in_use + st.small_bytes_cached, 0u);
  EXPECT_EQ(st.pages.in_use_bytes, 0u);
  EXPECT_EQ(st.thread_caches, 1u);  // the exited threads' caches were returned
}

TEST(Heap, TwoHeapsKeepTheirObjectsApart) {
  Heap a, b;
  ASSERT_EQ(a.init(), 0);
  ASSERT_EQ(b.init(), 0);
  void *pa = a.allocate(32);
  void *pb = b.allocate(32);
  EXPECT_TRUE(a.owns(pa));
  EXPECT_FALSE(a.owns(pb));
  EXPECT_EQ(a.deallocate(pb), -EINVAL);
  EXPECT_EQ(b.deallocate(pb), 0);
  EXPECT_EQ(a.deallocate(pa), 0);
  EXPECT_EQ(a.allocate(32), pa);
  EXPECT_EQ(b.allocate(32), pb);
}
