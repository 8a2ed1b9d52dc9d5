#include "dunegc/allocators/size_classes.h"

#include <gtest/gtest.h>

#include <cstring>

#include "dunegc/allocators/span.h"

using namespace dunegc::allocators;

TEST(SizeClasses, SizesAreGranuleMultiplesAndIncreasing) {
  for (unsigned c = 1; c < kNumClasses; c++) {
    EXPECT_EQ(kClasses[c].size % kGranule, 0u) << c;
    if (c > 1) {
      EXPECT_GT(kClasses[c].size, kClasses[c - 1].size) << c;
    }
  }
  EXPECT_EQ(kClasses[1].size, 16u);
  EXPECT_EQ(kClasses[kNumClasses - 1].size, kMaxSmallSize);
}

TEST(SizeClasses, EverySizeMapsToTheSmallestClassThatHoldsIt) {
  for (size_t n = 0; n <= kMaxSmallSize; n++) {
    unsigned c = size_to_class(n);
    ASSERT_GE(c, 1u) << n;
    ASSERT_LT(c, kNumClasses) << n;
    ASSERT_GE(kClasses[c].size, n) << n;
    if (c > 1) {
      ASSERT_LT(kClasses[c - 1].size, n == 0 ? 1 : n) << n;
    }
  }
}

TEST(SizeClasses, InternalFragmentationBoundedAbove128Bytes) {
  for (size_t n = 129; n <= kMaxSmallSize; n++) {
    size_t s = class_size(size_to_class(n));
    EXPECT_LE(double(s - n) / double(s), 0.2) << n;  // worst case just above a class edge
  }
}

TEST(SizeClasses, SpansHoldAtLeastEightObjectsWithLittleTailWaste) {
  for (unsigned c = 1; c < kNumClasses; c++) {
    const SizeClass &sc = kClasses[c];
    size_t bytes = size_t(sc.pages) * kPageSize;
    EXPECT_GE(sc.objects, 8u) << c;
    EXPECT_LE(sc.objects, kMaxObjectsPerSpan) << c;
    EXPECT_LE(size_t(sc.objects) * sc.size, bytes) << c;
    EXPECT_LE(bytes - size_t(sc.objects) * sc.size, bytes / 8) << c;
  }
}

// The reciprocal must give exact division for every byte offset inside a span: the
// collector maps interior pointers to objects with it.
TEST(SizeClasses, ReciprocalDivisionIsExactForEveryOffsetInASpan) {
  for (unsigned c = 1; c < kNumClasses; c++) {
    const SizeClass &sc = kClasses[c];
    Span s;
    s.start = 0x100000;
    s.size = sc.size;
    s.recip = sc.recip;
    s.npages = sc.pages;
    size_t bytes = size_t(sc.pages) * kPageSize;
    for (size_t off = 0; off < bytes; off++) {
      ASSERT_EQ(s.index_of(s.start + off), off / sc.size) << "class " << c << " offset " << off;
    }
  }
}

TEST(SizeClasses, BuildFreeListSkipsLiveObjectsInAddressOrder) {
  alignas(64) static unsigned char mem[8192];
  Span s;
  s.start = reinterpret_cast<uintptr_t>(mem);
  s.size = 64;
  s.recip = kClasses[size_to_class(64)].recip;
  s.nobjs = 128;
  s.npages = 2;
  s.clear_bits();
  uint64_t live[2] = {};
  for (unsigned i = 0; i < 128; i += 3) {
    s.set_bit(i);
    live[i / 64] |= uint64_t{1} << (i % 64);
  }
  memset(mem, 0xab, sizeof mem);
  unsigned n = 0;
  void *head = build_free_list(&s, live, true, &n);
  unsigned expect = 0, seen = 0;
  for (unsigned i = 0; i < 128; i++) expect += !s.test_bit(i);
  EXPECT_EQ(n, expect);
  uintptr_t prev = 0;
  for (void *p = head; p; p = *static_cast<void **>(p)) {
    uintptr_t a = reinterpret_cast<uintptr_t>(p);
    EXPECT_GT(a, prev);
    prev = a;
    unsigned i = s.index_of(a);
    EXPECT_FALSE(s.test_bit(i));
    for (size_t b = sizeof(void *); b < 64; b++) ASSERT_EQ(static_cast<unsigned char *>(p)[b], 0);
    seen++;
  }
  EXPECT_EQ(seen, expect);
  // Live objects were left alone.
  EXPECT_EQ(mem[0], 0xab);
  EXPECT_EQ(mem[3 * 64 + 7], 0xab);
}
