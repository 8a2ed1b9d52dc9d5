#include "dunegc/allocators/page_heap.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <vector>

#include "dunegc/allocators/large_object_space.h"

using namespace dunegc::allocators;

namespace {

PageHeap::Options small_opts(size_t limit = 0) {
  PageHeap::Options o;
  o.reserve_bytes = size_t{1} << 30;
  o.grow_bytes = size_t{1} << 20;
  o.limit_bytes = limit;
  return o;
}

// Resident pages of [p, p + bytes), from mincore.
size_t resident_pages(uintptr_t p, size_t bytes) {
  std::vector<unsigned char> v(bytes / kPageSize);
  if (mincore(reinterpret_cast<void *>(p), bytes, v.data()) != 0) return SIZE_MAX;
  size_t n = 0;
  for (unsigned char c : v) n += c & 1;
  return n;
}

}  // namespace

TEST(ChunkProvider, ReservationIsAlignedAndRejectsOutsideRanges) {
  ChunkProvider c;
  ASSERT_EQ(c.reserve(size_t{64} << 20), 0);
  EXPECT_EQ(c.base() % ChunkProvider::kAlign, 0u);
  EXPECT_EQ(c.size(), size_t{64} << 20);
  EXPECT_EQ(c.reserve(4096), -EBUSY);
  EXPECT_EQ(c.commit(c.base() - kPageSize, kPageSize), -EINVAL);
  EXPECT_EQ(c.commit(c.base() + 1, kPageSize), -EINVAL);
  EXPECT_EQ(c.commit(c.base() + c.size() - kPageSize, 2 * kPageSize), -EINVAL);
  ASSERT_EQ(c.commit(c.base(), kPageSize), 0);
  memset(reinterpret_cast<void *>(c.base()), 1, kPageSize);
}

TEST(PageHeap, InitRejectsBadOptions) {
  PageHeap h;
  PageHeap::Options o = small_opts();
  o.grow_bytes = 0;
  EXPECT_EQ(h.init(o), -EINVAL);
}

TEST(PageHeap, EveryPageOfAnInUseSpanResolvesToIt) {
  PageHeap h;
  ASSERT_EQ(h.init(small_opts()), 0);
  Span *a = h.allocate(3, SpanState::kSmall);
  Span *b = h.allocate(7, SpanState::kLarge);
  ASSERT_TRUE(a && b);
  for (uintptr_t p = a->start; p < a->end(); p += 512) EXPECT_EQ(h.span_of(p), a);
  for (uintptr_t p = b->start; p < b->end(); p += 512) EXPECT_EQ(h.span_of(p), b);
  EXPECT_EQ(a->page_flags & kPagesZeroed, kPagesZeroed);  // fresh pages
  EXPECT_EQ(h.span_of(h.base() - 1), nullptr);
  EXPECT_EQ(h.span_of(h.frontier()), nullptr);
  EXPECT_EQ(h.span_of(0), nullptr);
}

TEST(PageHeap, ReleasedNeighboursCoalesceAndInteriorPagesResolveToNothing) {
  PageHeap h;
  ASSERT_EQ(h.init(small_opts()), 0);
  Span *s[4];
  for (auto &x : s) ASSERT_NE(x = h.allocate(4, SpanState::kSmall), nullptr);
  uintptr_t start = s[0]->start;
  h.release(s[1]);
  h.release(s[3]);
  h.release(s[2]);  // merges with both neighbours (and the free rest of the first grow)
  Span *f = h.span_of(start + 4 * kPageSize);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->state, SpanState::kFree);
  EXPECT_GE(f->npages, 12u);
  // Interior pages of a free span map to nothing: a stale lookup can't find a descriptor.
  EXPECT_EQ(h.span_of(start + 6 * kPageSize), nullptr);
  // The merged run satisfies a 12-page request at the same place.
  Span *big = h.allocate(12, SpanState::kLarge);
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(big->start, start + 4 * kPageSize);
  PageHeapStats st = h.stats();
  EXPECT_EQ(st.in_use_bytes, 16 * kPageSize);
  EXPECT_EQ(st.spans_in_use, 2u);
  EXPECT_EQ(st.committed_bytes, st.in_use_bytes + st.free_bytes);
}

TEST(PageHeap, RandomAllocateReleaseKeepsAccountingAndTiling) {
  PageHeap h;
  ASSERT_EQ(h.init(small_opts()), 0);
  std::mt19937 rng(42);
  std::vector<Span *> live;
  size_t live_pages = 0;
  for (int i = 0; i < 20000; i++) {
    if (live.empty() || rng() % 3 != 0) {
      size_t n = 1 + (rng() % 5 == 0 ? rng() % 300 : rng() % 8);
      Span *s = h.allocate(n, SpanState::kSmall);
      ASSERT_NE(s, nullptr);
      ASSERT_EQ(s->npages, n);
      // Stamp the first word to catch overlapping spans.
      *reinterpret_cast<uintptr_t *>(s->start) = s->start;
      live.push_back(s);
      live_pages += n;
    } else {
      size_t k = rng() % live.size();
      Span *s = live[k];
      ASSERT_EQ(*reinterpret_cast<uintptr_t *>(s->start), s->start);
      live_pages -= s->npages;
      h.release(s);
      live[k] = live.back();
      live.pop_back();
    }
  }
  PageHeapStats st = h.stats();
  EXPECT_EQ(st.in_use_bytes, live_pages * kPageSize);
  EXPECT_EQ(st.committed_bytes, st.in_use_bytes + st.free_bytes);
  // Walk the committed range: spans tile it exactly.
  uintptr_t p = h.base();
  size_t in_use = 0;
  while (p < h.frontier()) {
    Span *s = h.span_of(p);
    ASSERT_NE(s, nullptr) << "hole at page " << (p - h.base()) / kPageSize;
    ASSERT_EQ(s->start, p);
    if (s->state != SpanState::kFree) {
      in_use += s->npages;
    } else {
      ASSERT_EQ(h.span_of(s->end() - kPageSize), s);
    }
    p = s->end();
  }
  EXPECT_EQ(in_use, live_pages);
  for (Span *s : live) h.release(s);
  EXPECT_EQ(h.stats().in_use_bytes, 0u);
}

TEST(PageHeap, LimitCapsCommittedMemory) {
  PageHeap h;
  ASSERT_EQ(h.init(small_opts(size_t{2} << 20)), 0);
  Span *a = h.allocate(256, SpanState::kLarge);  // 1 MiB
  ASSERT_NE(a, nullptr);
  Span *b = h.allocate(256, SpanState::kLarge);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(h.allocate(1, SpanState::kSmall), nullptr);
  EXPECT_EQ(h.last_failure(), PageHeap::Failure::kLimit);
  EXPECT_LE(h.stats().committed_bytes, size_t{2} << 20);
  h.release(b);
  EXPECT_NE(h.allocate(1, SpanState::kSmall), nullptr);
  h.set_limit(0);
  EXPECT_NE(h.allocate(1024, SpanState::kLarge), nullptr);
}

TEST(PageHeap, ReservationExhaustionIsReported) {
  PageHeap h;
  PageHeap::Options o = small_opts();
  o.reserve_bytes = size_t{4} << 20;
  ASSERT_EQ(h.init(o), 0);
  EXPECT_NE(h.allocate(1000, SpanState::kLarge), nullptr);
  EXPECT_EQ(h.allocate(100, SpanState::kLarge), nullptr);
  EXPECT_EQ(h.last_failure(), PageHeap::Failure::kReservation);
}

TEST(PageHeap, DecommitReturnsIdlePagesAndTheyComeBackZeroed) {
  PageHeap h;
  ASSERT_EQ(h.init(small_opts()), 0);
  Span *s = h.allocate(64, SpanState::kLarge);
  ASSERT_NE(s, nullptr);
  uintptr_t start = s->start;
  memset(reinterpret_cast<void *>(start), 0x5a, 64 * kPageSize);
  EXPECT_EQ(resident_pages(start, 64 * kPageSize), 64u);
  h.release(s);
  EXPECT_EQ(h.decommit_idle(1), 0u);  // released this tick: too young
  h.tick();
  size_t before = h.stats().committed_bytes;
  size_t dec = h.decommit_idle(1);
  EXPECT_GE(dec, 64 * kPageSize);
  EXPECT_EQ(h.stats().committed_bytes, before - dec);
  EXPECT_EQ(h.stats().decommitted_bytes, dec);
  EXPECT_EQ(resident_pages(start, 64 * kPageSize), 0u);
  Span *again = h.allocate(64, SpanState::kLarge);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->start, start);
  EXPECT_TRUE(again->page_flags & kPagesZeroed);
  for (size_t i = 0; i < 64 * kPageSize; i += 8)
    ASSERT_EQ(*reinterpret_cast<uint64_t *>(start + i), 0u);
  EXPECT_EQ(h.stats().committed_bytes, before - dec + 64 * kPageSize);
}

TEST(PageHeap, ExpandCommitsAheadWithinTheLimit) {
  PageHeap h;
  ASSERT_EQ(h.init(small_opts(size_t{8} << 20)), 0);
  EXPECT_EQ(h.expand(size_t{4} << 20), 0);
  EXPECT_EQ(h.stats().committed_bytes, size_t{4} << 20);
  EXPECT_EQ(h.stats().free_bytes, size_t{4} << 20);
  EXPECT_EQ(h.expand(size_t{5} << 20), -ENOMEM);
  EXPECT_EQ(h.stats().committed_bytes, size_t{4} << 20);
}

TEST(LargeObjectSpace, ObjectsArePageAlignedZeroedAndReturned) {
  PageHeap h;
  ASSERT_EQ(h.init(small_opts()), 0);
  LargeObjectSpace los(h);
  Span *a = los.allocate(100000, true);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->start % kPageSize, 0u);
  EXPECT_EQ(a->npages, pages_for(100000));
  EXPECT_EQ(a->state, SpanState::kLarge);
  memset(reinterpret_cast<void *>(a->start), 0xee, 100000);
  uintptr_t where = a->start;
  los.release(a);
  Span *b = los.allocate(90000, true);  // reuses the dirty pages: must be zeroed
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->start, where);
  for (size_t i = 0; i < 90000; i++) ASSERT_EQ(reinterpret_cast<unsigned char *>(b->start)[i], 0);
  int n = 0;
  los.for_each([&](Span *s) {
    n++;
    los.release(s);
  });
  EXPECT_EQ(n, 1);
  EXPECT_EQ(los.stats().objects, 0u);
  EXPECT_EQ(los.stats().allocated_total, 2u);
}
