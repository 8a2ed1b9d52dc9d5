// The heap verifier itself: it must catch what it is there to catch. Marks are set by
// hand on a standalone GcHeap to build the broken states a faulty marker would leave.
#include <gtest/gtest.h>

#include "collector.h"
#include "gc_heap.h"
#include "gc_test_util.h"

using namespace dunegc::gc;

namespace {

struct Fixture {
  GcHeap heap;
  unsigned cls = dunegc::allocators::size_to_class(64);
  void *list = nullptr;
  unsigned n = 0;
  MetaVector<Range> roots;
  MetaVector<uintptr_t> none;

  Fixture() {
    EXPECT_EQ(heap.init({size_t{1} << 30, 0, 0, /*verify=*/true}), 0);
    list = heap.refill(kNormal, cls, &n);
    EXPECT_GE(n, 4u);
  }
  void **take() {
    void *p = list;
    list = *static_cast<void **>(p);
    *static_cast<void **>(p) = nullptr;
    return static_cast<void **>(p);
  }
  ObjRef ref(void *p) {
    ObjRef r;
    EXPECT_TRUE(heap.resolve(reinterpret_cast<uintptr_t>(p), false, &r));
    return r;
  }
};

}  // namespace

TEST(Verifier, AcceptsAConsistentMarking) {
  Fixture f;
  void **a = f.take(), **b = f.take();
  a[0] = b;
  static void *root;
  root = a;
  f.roots.push({reinterpret_cast<uintptr_t>(&root), reinterpret_cast<uintptr_t>(&root + 1)});
  set_marked(f.ref(a));
  set_marked(f.ref(b));
  verify_marks(f.heap, f.roots, true, f.none);  // returns: nothing to report
  SUCCEED();
}

TEST(Verifier, CatchesAnUnmarkedObjectReachableFromAMarkedOne) {
  Fixture f;
  void **a = f.take(), **b = f.take();
  a[0] = b;
  set_marked(f.ref(a));  // b is reachable through a but was "missed"
  EXPECT_DEATH(verify_marks(f.heap, f.roots, true, f.none), "marked object .* unmarked object .*marking missed");
}

TEST(Verifier, CatchesAnUnmarkedObjectReachableFromARoot) {
  Fixture f;
  void **a = f.take();
  static void *root;
  root = reinterpret_cast<char *>(a) + 8;  // interior pointers count by default
  f.roots.push({reinterpret_cast<uintptr_t>(&root), reinterpret_cast<uintptr_t>(&root + 1)});
  EXPECT_DEATH(verify_marks(f.heap, f.roots, true, f.none), "root word at .* unmarked object");
}

TEST(Verifier, ReclaimedObjectsArePoisonedAndWritesToThemAreCaught) {
  Fixture f;
  void **live = f.take(), **dead = f.take();
  (void)dead;
  ThreadCache cache = {};
  cache.lists[kNormal][f.cls] = f.list;  // the rest of the list, as a thread would hold it
  f.heap.drop_cache(&cache);
  f.heap.prepare_marking();
  set_marked(f.ref(live));  // only `live` survives this "collection"
  f.heap.reclaim();         // verifying: sweeps now, poisoning the reclaimed objects
  auto *bytes = reinterpret_cast<unsigned char *>(dead);
  for (int i = 8; i < 64; i++) ASSERT_EQ(bytes[i], kPoison) << i;
  bytes[20] = 1;  // a use after free
  unsigned n;
  EXPECT_DEATH(f.heap.refill(kNormal, f.cls, &n), "reclaimed object .* was written at offset 20");
}

void *g_neighbour;  // a data-segment root (external linkage: the store stays)

// End to end: a mutator that keeps only a hidden pointer and writes through it after the
// collector reclaimed the object is caught when the memory is reused. (A neighbour stays
// live so the span is kept and swept; a span left empty goes back to the page heap whole,
// poisoned, where a later write is not detected -- reads through the stale pointer still
// see poison.)
TEST(Verifier, CatchesAMutatorWritingToAReclaimedObject) {
  EXPECT_DEATH(
      {
        dunegc_options o;
        dunegc_options_init(&o);
        o.verify = 1;
        o.markers = 1;
        dunegc_init(&o);
        static uintptr_t hidden;
        [&]() __attribute__((noinline)) {
          g_neighbour = dunegc_malloc(64);
          hidden = gctest::hide(dunegc_malloc(64));
        }();
        gctest::collect_clean();
        gctest::reveal<uint64_t>(hidden)[3] = 42;
        for (int i = 0; i < 100000; i++) dunegc_malloc(64);
      },
      "was written at offset 24 after the collector freed it");
}
