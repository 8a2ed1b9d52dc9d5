// Allocation through Boehm's API: zeroing, sizes, explicit free, realloc, alignment,
// object kinds, typed objects and what their descriptors retain.
#include "bdw_test_util.h"

using namespace bdwtest;

namespace {

struct Pair {
  void *ptr;      // a pointer field
  GC_word value;  // not a pointer: a heap address stored here must retain nothing
};

GC_descr pair_descr() {
  GC_word bm[GC_BITMAP_SIZE(Pair)] = {0};
  GC_set_bit(bm, GC_WORD_OFFSET(Pair, ptr));
  return GC_make_descriptor(bm, GC_WORD_LEN(Pair));
}

}  // namespace

TEST(BdwAlloc, ObjectsAreZeroedAndSized) {
  GC_INIT();
  EXPECT_TRUE(GC_is_init_called());
  EXPECT_EQ(GC_get_version(), (8u << 16) | (2u << 8) | 2u);
  for (size_t n : {1, 16, 24, 100, 1000, 8192, 8193, 100000}) {
    auto *p = static_cast<unsigned char *>(GC_MALLOC(n));
    ASSERT_NE(p, nullptr);
    for (size_t i = 0; i < n; i++) ASSERT_EQ(p[i], 0) << n;
    EXPECT_GE(GC_size(p), n);
    EXPECT_TRUE(GC_is_heap_ptr(p));
    EXPECT_EQ(GC_base(p + n / 2), p);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u);
    void *a = GC_MALLOC_ATOMIC(n);
    ASSERT_NE(a, nullptr);
    EXPECT_GE(GC_size(a), n);
  }
  int on_stack = 0;
  EXPECT_FALSE(GC_is_heap_ptr(&on_stack));
  EXPECT_EQ(GC_base(&on_stack), nullptr);
  auto *t = GC_NEW(Pair);
  EXPECT_EQ(t->ptr, nullptr);
  EXPECT_EQ(GC_size(GC_NEW_ATOMIC(double)) >= sizeof(double), true);
}

TEST(BdwAlloc, StrdupCopiesIntoAtomicObjects) {
  GC_INIT();
  char *s = GC_STRDUP("dunegc-bdw");
  ASSERT_NE(s, nullptr);
  EXPECT_STREQ(s, "dunegc-bdw");
  char *t = GC_STRNDUP("collector", 4);
  EXPECT_STREQ(t, "coll");
  EXPECT_EQ(GC_strdup(nullptr), nullptr);
  size_t size;
  EXPECT_EQ(GC_get_kind_and_size(s, &size), 0);  // GC_I_PTRFREE
  EXPECT_GE(size, 11u);
}

TEST(BdwAlloc, FreeIsImmediate) {
  GC_INIT();
  // A freed small object is reused by the very next allocation of its size, before any
  // collection: its memory went straight back to this thread's free list, zeroed.
  GC_word before = GC_get_gc_no();
  auto *p = static_cast<GC_word *>(GC_MALLOC(48));
  p[0] = p[5] = 0xabcdef;
  size_t freed = GC_get_expl_freed_bytes_since_gc();
  GC_FREE(p);
  EXPECT_GE(GC_get_expl_freed_bytes_since_gc(), freed + 48);
  auto *q = static_cast<GC_word *>(GC_MALLOC(48));
  EXPECT_EQ(q, p);
  EXPECT_EQ(q[0], 0u);
  EXPECT_EQ(q[5], 0u);
  // A large object's pages go back at once too.
  void *big = GC_MALLOC(1 << 20);
  size_t use = GC_get_memory_use();
  GC_FREE(big);
  EXPECT_LE(GC_get_memory_use() + (1 << 20), use);
  EXPECT_EQ(GC_get_gc_no(), before);
  GC_FREE(nullptr);  // ANSI: a no-op
}

TEST(BdwAlloc, ReallocKeepsContentsAndKind) {
  GC_INIT();
  auto *p = static_cast<char *>(GC_MALLOC(40));
  memcpy(p, "0123456789", 10);
  auto *q = static_cast<char *>(GC_REALLOC(p, 5000));
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(memcmp(q, "0123456789", 10), 0);
  for (size_t i = 40; i < 5000; i++) ASSERT_EQ(q[i], 0);  // grown part zeroed
  auto *a = static_cast<char *>(GC_MALLOC_ATOMIC(16));
  memcpy(a, "atomic", 7);
  auto *b = static_cast<char *>(GC_REALLOC(a, 4096));
  EXPECT_STREQ(b, "atomic");
  size_t size;
  EXPECT_EQ(GC_get_kind_and_size(b, &size), 0);  // still pointer-free
  EXPECT_EQ(GC_REALLOC(b, 0), nullptr);          // size 0: freed
  auto *c = static_cast<char *>(GC_REALLOC(nullptr, 32));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(GC_get_kind_and_size(c, &size), 1);  // GC_I_NORMAL
}

TEST(BdwAlloc, MemalignHonoursEveryPowerOfTwo) {
  GC_INIT();
  for (size_t align = 8; align <= (size_t{1} << 16); align <<= 1) {
    for (size_t n : {1, 100, 5000, 70000}) {
      void *p = GC_memalign(align, n);
      ASSERT_NE(p, nullptr) << align << " " << n;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u) << align << " " << n;
      memset(p, 1, n);  // all of it usable
      EXPECT_NE(GC_base(p), nullptr);
    }
  }
  void *out = nullptr;
  EXPECT_EQ(GC_posix_memalign(&out, 64, 100), 0);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(out) % 64, 0u);
  EXPECT_EQ(GC_posix_memalign(&out, 24, 100), EINVAL);
  capture_warnings();
  EXPECT_EQ(GC_memalign(48, 10), nullptr);
  EXPECT_TRUE(warned("power of two"));
}

TEST(BdwAlloc, MallocManyReturnsAListOfZeroedObjects) {
  GC_INIT();
  void *list = GC_malloc_many(32);
  ASSERT_NE(list, nullptr);
  size_t n = 0;
  for (void *p = list; p; p = GC_NEXT(p), n++) {
    EXPECT_GE(GC_size(p), 32u);
    for (size_t i = sizeof(void *); i < 32; i++) ASSERT_EQ(static_cast<char *>(p)[i], 0);
  }
  EXPECT_GE(n, 1u);
}

TEST(BdwAlloc, PredefinedKindsAndNoCustomOnes) {
  GC_INIT();
  size_t size;
  EXPECT_EQ(GC_get_kind_and_size(GC_MALLOC_UNCOLLECTABLE(64), &size), 2);  // UNCOLLECTABLE
  EXPECT_EQ(GC_get_kind_and_size(GC_MALLOC_ATOMIC_UNCOLLECTABLE(64), &size), 2);
  EXPECT_EQ(GC_get_kind_and_size(GC_MALLOC_IGNORE_OFF_PAGE(100000), &size), 1);
  EXPECT_GE(size, 100000u);
  EXPECT_EQ(GC_get_kind_and_size(GC_MALLOC_ATOMIC_IGNORE_OFF_PAGE(100000), &size), 0);
  EXPECT_EQ(GC_get_kind_and_size(GC_malloc_explicitly_typed(sizeof(Pair), pair_descr()), &size), 4);
  capture_warnings();
  EXPECT_EQ(GC_get_size_map_at(17), 32u);
  EXPECT_EQ(GC_get_size_map_at(100000), size_t(-1));
}

namespace {

SETUP hide_in_typed(Watch &w, Pair **out, GC_descr d, bool in_pointer_field) {
  auto *target = static_cast<char *>(GC_MALLOC(64));
  w.watch(0, target);
  auto *p = static_cast<Pair *>(GC_malloc_explicitly_typed(sizeof(Pair), d));
  if (in_pointer_field) p->ptr = target;
  else p->value = reinterpret_cast<GC_word>(target);
  *out = p;
}

}  // namespace

TEST(BdwAlloc, TypedDescriptorsSayWhereThePointersAre) {
  GC_INIT();
  GC_descr d = pair_descr();
  static Pair *holder;  // a root
  Watch w(1);
  hide_in_typed(w, &holder, d, false);
  collect_clean();
  EXPECT_FALSE(w.alive(0)) << "a heap address in a non-pointer word retained its object";
  hide_in_typed(w, &holder, d, true);
  collect_clean();
  EXPECT_TRUE(w.alive(0)) << "the pointer field did not keep its object";
  EXPECT_EQ(static_cast<Pair *>(holder)->value, 0u);
  // A descriptor without pointers: nothing in the object retains anything.
  GC_word none[1] = {0};
  EXPECT_EQ(GC_make_descriptor(none, 2), 0u);
}

namespace {

struct Elem {
  GC_word key;  // not a pointer
  void *ptr;
  GC_word more[2];
};

SETUP fill_array(Watch &w, Elem **out, size_t n, GC_descr d) {
  auto *a = static_cast<Elem *>(GC_calloc_explicitly_typed(n, sizeof(Elem), d));
  ASSERT_NE(a, nullptr);
  for (size_t i = 0; i < n; i++) ASSERT_EQ(a[i].key | a[i].more[1], 0u);
  void *kept = GC_MALLOC(32), *dropped = GC_MALLOC(32);
  w.watch(0, kept);
  w.watch(1, dropped);
  a[n - 1].ptr = kept;                                  // pointer field of the last element
  a[n / 2].key = reinterpret_cast<GC_word>(dropped);    // a non-pointer field
  *out = a;
}

}  // namespace

TEST(BdwAlloc, TypedArraysRepeatTheElementDescriptor) {
  GC_INIT();
  GC_word bm[1] = {0};
  GC_set_bit(bm, GC_WORD_OFFSET(Elem, ptr));
  GC_descr d = GC_make_descriptor(bm, GC_WORD_LEN(Elem));
  static Elem *holder;
  for (size_t n : {3, 1000}) {  // a small object and a large one
    Watch w(2);
    fill_array(w, &holder, n, d);
    collect_clean();
    EXPECT_TRUE(w.alive(0)) << n;
    EXPECT_FALSE(w.alive(1)) << n;
    EXPECT_NE(holder[n - 1].ptr, nullptr);
  }
  capture_warnings();
  EXPECT_EQ(GC_calloc_explicitly_typed(4, 12, d), nullptr);  // not a word multiple
  EXPECT_TRUE(warned("multiple of the word"));
}

namespace {
SETUP off_page(Watch &w, char **interior) {
  auto *big = static_cast<char *>(GC_malloc_ignore_off_page(64 * 1024));
  w.watch(0, big);
  *interior = big + 32 * 1024;  // beyond the first page: does not count
}
}  // namespace

TEST(BdwAlloc, IgnoreOffPageObjectsNeedAPointerNearTheirStart) {
  GC_INIT();
  static char *interior;
  Watch w(1);
  off_page(w, &interior);
  collect_clean();
  EXPECT_FALSE(w.alive(0));
}

TEST(BdwAlloc, DebugAllocationIsPlainAndSaysSo) {
  capture_warnings();
  GC_INIT();
  void *p = GC_debug_malloc(24, __FILE__, __LINE__);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(GC_base(p), p);  // no debug header in front
  EXPECT_TRUE(warned("no debugging allocator"));
  EXPECT_EQ(GC_get_debug_header_size(), 0u);
  GC_debug_free(p);
}
