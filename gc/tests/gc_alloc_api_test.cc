// The allocation half of the native API: kinds, sizes, zeroing, realloc, malloc_many,
// explicit free and its errors, object lookup, interior pointers, ignore-off-page.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>

#include "dunegc/dunegc.hpp"
#include "gc_test_util.h"

using namespace gctest;

namespace {

void *g_root;  // a data-segment root

bool all_zero(const void *p, size_t n) {
  auto *b = static_cast<const unsigned char *>(p);
  for (size_t i = 0; i < n; i++)
    if (b[i]) return false;
  return true;
}

}  // namespace

TEST(AllocApi, EveryKindAndSizeIsAlignedUsableAndConservativeOnesAreZeroed) {
  init_or_die();
  for (size_t n : {0, 1, 8, 16, 17, 100, 1000, 4096, 8192, 8193, 70000, 1 << 20}) {
    void *c = dunegc_malloc(n);
    void *a = dunegc_malloc_atomic(n);
    void *u = dunegc_malloc_uncollectable(n);
    for (void *p : {c, a, u}) {
      ASSERT_NE(p, nullptr) << n;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u);
      EXPECT_GE(dunegc_size(p), n);
      EXPECT_EQ(dunegc_base(p), p);
      memset(p, 0x5a, n);
    }
    EXPECT_TRUE(all_zero(dunegc_malloc(n), n));
    EXPECT_TRUE(all_zero(dunegc_malloc_uncollectable(n), n));
  }
}

TEST(AllocApi, ReusedMemoryComesBackZeroed) {
  init_or_die();
  for (int round = 0; round < 20; round++) {
    for (int i = 0; i < 20000; i++) memset(dunegc_malloc(48), 0xff, 48);  // garbage
    collect_clean();
    for (int i = 0; i < 20000; i++) ASSERT_TRUE(all_zero(dunegc_malloc(48), 48));
  }
}

TEST(AllocApi, BaseAndSizeResolveInteriorPointers) {
  init_or_die();
  char *small = static_cast<char *>(dunegc_malloc(100));
  char *large = static_cast<char *>(dunegc_malloc(100000));
  EXPECT_EQ(dunegc_base(small + 57), small);
  EXPECT_EQ(dunegc_base(large + 99999), large);
  EXPECT_EQ(dunegc_size(small + 1), 0u);  // size wants the start
  EXPECT_EQ(dunegc_size(large), 100000u);
  int local;
  EXPECT_EQ(dunegc_base(&local), nullptr);
  EXPECT_EQ(dunegc_size(&local), 0u);
}

TEST(AllocApi, FreeingSomethingThatIsNotAHeapObjectFailsClearly) {
  init_or_die();
  capture_warnings();
  int local;
  char *p = static_cast<char *>(dunegc_malloc(64));
  char *big = static_cast<char *>(dunegc_malloc(50000));
  EXPECT_EQ(dunegc_free(&local), -EINVAL);
  EXPECT_TRUE(warned("not the start of a heap object")) << dunegc_last_error();
  EXPECT_NE(strstr(dunegc_last_error(), "dunegc_free"), nullptr);
  EXPECT_EQ(dunegc_free(p + 8), -EINVAL);
  EXPECT_EQ(dunegc_free(big + 4096), -EINVAL);
  EXPECT_EQ(dunegc_free(reinterpret_cast<void *>(0x10)), -EINVAL);
  EXPECT_EQ(dunegc_free(nullptr), 0);
  // The heap is unharmed: the objects are still whole and can be freed properly.
  memset(p, 1, 64);
  memset(big, 2, 50000);
  EXPECT_EQ(dunegc_free(p), 0);
  EXPECT_EQ(dunegc_free(big), 0);
  EXPECT_EQ(dunegc_free(big), -EINVAL);  // its pages went back: no longer an object
  void *u = dunegc_malloc_uncollectable(32);
  EXPECT_EQ(dunegc_free(u), 0);
  EXPECT_EQ(dunegc_free(u), -EINVAL);
  EXPECT_TRUE(warned("already freed"));
}

TEST(AllocApi, ExplicitFreeIsImmediate) {
  init_or_die();
  void *a = dunegc_malloc(40);
  memset(a, 7, 40);
  ASSERT_EQ(dunegc_free(a), 0);
  void *b = dunegc_malloc(40);  // same class, same thread: the freed object, zeroed
  EXPECT_EQ(a, b);
  EXPECT_TRUE(all_zero(b, 40));
  EXPECT_EQ(dunegc::stats().explicit_frees, 1u);
}

TEST(AllocApi, ReallocKeepsContentsAndKind) {
  init_or_die();
  char *p = static_cast<char *>(dunegc_malloc(10));
  memcpy(p, "abcdefghi", 10);
  char *q = static_cast<char *>(dunegc_realloc(p, 14));
  EXPECT_EQ(q, p);  // same 16-byte slot
  q = static_cast<char *>(dunegc_realloc(q, 3000));
  ASSERT_NE(q, nullptr);
  EXPECT_STREQ(q, "abcdefghi");
  EXPECT_TRUE(all_zero(q + 16, 3000 - 16));
  q = static_cast<char *>(dunegc_realloc(q, 200000));
  EXPECT_STREQ(q, "abcdefghi");
  char *a = static_cast<char *>(dunegc_malloc_atomic(64));
  strcpy(a, "atomic");
  char *b = static_cast<char *>(dunegc_realloc(a, 5000));
  EXPECT_STREQ(b, "atomic");
  EXPECT_NE(b, a);  // moved: the old object was freed
  EXPECT_EQ(dunegc_realloc(nullptr, 32) != nullptr, true);
  EXPECT_EQ(dunegc_realloc(b, 0), nullptr);
  int local;
  EXPECT_EQ(dunegc_realloc(&local, 8), nullptr);
}

TEST(AllocApi, MallocManyReturnsAListOfZeroedObjects) {
  init_or_die();
  void *list = dunegc_malloc_many(32);
  ASSERT_NE(list, nullptr);
  size_t n = 0;
  for (void *p = list; p; p = *static_cast<void **>(p)) {
    EXPECT_EQ(dunegc_size(p), 32u);
    EXPECT_TRUE(all_zero(static_cast<char *>(p) + 8, 24));
    n++;
  }
  EXPECT_GE(n, 2u);
  void *big = dunegc_malloc_many(20000);  // too big to batch: one object
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(*static_cast<void **>(big), nullptr);
}

// Tests that expect reclamation allocate in noinline helpers: when they return, no live
// register or stack slot of the test still holds the objects.
#define SETUP static __attribute__((noinline)) void

SETUP make_uncollectable(Watch &w) {
  void **u = static_cast<void **>(dunegc_malloc_uncollectable(16));
  u[0] = dunegc_malloc(100);
  w.watch(0, u[0]);
  w.watch(1, u);  // links may watch uncollectable objects too
  g_root = reinterpret_cast<void *>(hide(u));
}

TEST(AllocApi, UncollectableObjectsSurviveAndKeepWhatTheyPointTo) {
  init_or_die();
  Watch w(2);
  make_uncollectable(w);
  for (int i = 0; i < 3; i++) collect_clean();
  EXPECT_TRUE(w.alive(0));
  EXPECT_TRUE(w.alive(1));
  EXPECT_EQ(dunegc_free(reveal(reinterpret_cast<uintptr_t>(g_root))), 0);
  collect_clean();
  EXPECT_FALSE(w.alive(0));
}

SETUP make_global_object(Watch &w) {
  g_root = dunegc_malloc(64);
  w.watch(0, g_root);
}

TEST(AllocApi, DataSegmentRootsKeepObjects) {
  init_or_die();
  Watch w(1);
  make_global_object(w);
  collect_clean();
  EXPECT_TRUE(w.alive(0));
  g_root = nullptr;
  collect_clean();
  EXPECT_FALSE(w.alive(0));
}

SETUP fill_area(Watch &w, void **area, int a, int b) {
  area[a] = dunegc_malloc(32);
  area[b] = dunegc_malloc(32);
  w.watch(0, area[a]);
  w.watch(1, area[b]);
}

TEST(AllocApi, ExplicitRootRangesCanBeAddedRemovedAndCleared) {
  init_or_die();
  Watch w(2);
  void **area = static_cast<void **>(calloc(4, sizeof(void *)));  // malloc memory: not scanned
  ASSERT_EQ(dunegc_add_roots(area, area + 4), 0);
  fill_area(w, area, 0, 3);
  collect_clean();
  EXPECT_EQ(w.alive_count(), 2u);
  ASSERT_EQ(dunegc_remove_roots(area, area + 4), 0);
  collect_clean();
  EXPECT_EQ(w.alive_count(), 0u);
  ASSERT_EQ(dunegc_add_roots(area, area + 1), 0);
  fill_area(w, area, 0, 1);
  collect_clean();
  EXPECT_TRUE(w.alive(0));
  EXPECT_FALSE(w.alive(1));  // area[1] is outside the added range
  dunegc_clear_roots();
  collect_clean();
  EXPECT_FALSE(w.alive(0));
  EXPECT_EQ(dunegc_add_roots(area + 1, area), -EINVAL);
  free(area);
}

void *g_interior[2];

SETUP make_interior_referenced(Watch &w) {
  char *small = static_cast<char *>(dunegc_malloc(200));
  char *large = static_cast<char *>(dunegc_malloc(300000));
  w.watch(0, small);
  w.watch(1, large);
  g_interior[0] = small + 150;
  g_interior[1] = large + 250000;
}

TEST(AllocApi, InteriorPointersKeepObjectsByDefault) {
  init_or_die();
  Watch w(2);
  make_interior_referenced(w);
  collect_clean();
  EXPECT_EQ(w.alive_count(), 2u);
}

SETUP make_start_and_interior(Watch &w) {
  char *a = static_cast<char *>(dunegc_malloc(200));
  char *b = static_cast<char *>(dunegc_malloc(200));
  w.watch(0, a);
  w.watch(1, b);
  g_interior[0] = a + 8;  // interior: does not count
  g_interior[1] = b;      // start: counts
}

TEST(AllocApi, WithInteriorPointersOffOnlyPointersToTheStartCount) {
  ASSERT_EQ(dunegc_set_all_interior_pointers(0), 0);
  init_or_die();
  EXPECT_EQ(dunegc_set_all_interior_pointers(1), -EBUSY);
  EXPECT_EQ(dunegc_get_all_interior_pointers(), 0);
  Watch w(2);
  make_start_and_interior(w);
  collect_clean();
  EXPECT_FALSE(w.alive(0));
  EXPECT_TRUE(w.alive(1));
}

char *g_keep[4];

SETUP make_off_page(Watch &w) {
  char *o[4] = {static_cast<char *>(dunegc_malloc_ignore_off_page(1 << 20)),
                static_cast<char *>(dunegc_malloc_ignore_off_page(1 << 20)),
                static_cast<char *>(dunegc_malloc_atomic_ignore_off_page(1 << 20)),
                static_cast<char *>(dunegc_malloc(1 << 20))};
  for (int i = 0; i < 4; i++) w.watch(i, o[i]);
  g_keep[0] = o[0] + 100;      // first page: keeps it
  g_keep[1] = o[1] + (1 << 19);  // deep inside: does not
  g_keep[2] = o[2] + (1 << 19);
  g_keep[3] = o[3] + (1 << 19);  // an ordinary large object: deep pointers count
}

TEST(AllocApi, IgnoreOffPageObjectsAreKeptOnlyByTheirFirstPage) {
  init_or_die();
  Watch w(4);
  make_off_page(w);
  collect_clean();
  EXPECT_TRUE(w.alive(0));
  EXPECT_FALSE(w.alive(1));
  EXPECT_FALSE(w.alive(2));
  EXPECT_TRUE(w.alive(3));
}

void **g_atomic_holder, **g_normal_holder;

SETUP make_holders(Watch &w) {
  g_atomic_holder = static_cast<void **>(dunegc_malloc_atomic(64));
  g_normal_holder = static_cast<void **>(dunegc_malloc(64));
  g_atomic_holder[0] = dunegc_malloc(32);
  g_normal_holder[0] = dunegc_malloc(32);
  w.watch(0, g_atomic_holder[0]);
  w.watch(1, g_normal_holder[0]);
}

TEST(AllocApi, AtomicObjectsAreNotScanned) {
  init_or_die();
  Watch w(2);
  make_holders(w);
  collect_clean();
  EXPECT_FALSE(w.alive(0));
  EXPECT_TRUE(w.alive(1));
}

TEST(AllocApi, CppHelpersConstructAndThrow) {
  init_or_die();
  struct Pair {
    Pair(int a, int b) : x(a), y(b) {}
    int x, y;
  };
  Pair *p = dunegc::make<Pair>(3, 4);
  EXPECT_EQ(p->x + p->y, 7);
  std::vector<int, dunegc::allocator<int>> v;
  for (int i = 0; i < 10000; i++) v.push_back(i);
  dunegc::collect();
  long sum = 0;
  for (int x : v) sum += x;
  EXPECT_EQ(sum, 49995000);
  ASSERT_EQ(dunegc_set_max_heap(size_t{8} << 20), 0);
  struct Huge {
    char bytes[size_t{64} << 20];
  };
  EXPECT_THROW(dunegc::make<Huge>(), std::bad_alloc);
}
