// Randomized stress under the heap verifier: a mutating graph of objects of every kind and
// many sizes survives thousands of collections with every object's contents intact.
// With verify on, each collection also checks that every reachable object was marked
// and poisons what it reclaims (a wrongly reclaimed object then fails its checksum here,
// or the poison check when its memory is reused).
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <unordered_set>
#include <vector>

#include "dunegc/dunegc.hpp"
#include "gc_test_util.h"

using namespace gctest;

namespace {

constexpr unsigned kPtrs = 4;  // pointer slots per object that has any

enum ObjKind : uint32_t { kConservative, kAtomicObj, kBitmapTyped, kTraceTyped, kUncollectableObj, kNumObjKinds };

// Every object starts with this header; pointer slots follow for the kinds that have them,
// then a payload of pseudo-random bytes covered by the checksum.
struct Obj {
  uint32_t magic;  // 0x5eed0000 | kind
  uint32_t bytes;  // whole object
  uint64_t id;
  uint64_t checksum;
  Obj *ptr[kPtrs];  // absent (payload) for atomic objects
};
constexpr size_t kHeader = offsetof(Obj, ptr);
constexpr size_t kWithPtrs = sizeof(Obj);

uint32_t kind_of(const Obj *o) { return o->magic & 0xffff; }
bool has_ptrs(uint32_t k) { return k != kAtomicObj; }
size_t payload_offset(uint32_t k) { return has_ptrs(k) ? kWithPtrs : kHeader; }

uint64_t checksum(const Obj *o) {
  const auto *b = reinterpret_cast<const unsigned char *>(o) + payload_offset(kind_of(o));
  size_t n = o->bytes - payload_offset(kind_of(o));
  uint64_t h = 1469598103934665603ull ^ o->id;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

void trace_obj(void *obj, size_t, dunegc_tracer *t) {
  auto *o = static_cast<Obj *>(obj);
  for (unsigned i = 0; i < kPtrs; i++) dunegc_trace_slot(t, reinterpret_cast<void *const *>(&o->ptr[i]));
}

struct Graph {
  static constexpr unsigned kRoots = 64;
  Obj *roots[kRoots] = {};  // where these live decides what keeps the graph alive
  std::mt19937_64 rng;
  dunegc_layout bitmap_layout, trace_layout;
  uint64_t next_id = 1;
  uint64_t checked = 0;

  explicit Graph(uint64_t seed) : rng(seed) {
    uint64_t bits = 0;
    for (unsigned i = 0; i < kPtrs; i++) bits |= uint64_t{1} << (kHeader / 8 + i);
    bitmap_layout = dunegc_layout_bitmap(&bits, kWithPtrs / 8);
    trace_layout = dunegc_layout_trace(&trace_obj);
  }

  size_t random_size(uint32_t k) {
    size_t min = payload_offset(k) + 8;
    switch (rng() % 16) {
      case 0: return min + rng() % 300000;  // large
      case 1: case 2: return min + rng() % 8000;
      default: return min + rng() % 200;
    }
  }

  Obj *make() {
    uint32_t k = rng() % 64 == 0 ? uint32_t(kUncollectableObj) : uint32_t(rng() % (kNumObjKinds - 1));
    size_t n = random_size(k);
    void *p;
    switch (k) {
      case kConservative: p = dunegc_malloc(n); break;
      case kAtomicObj: p = dunegc_malloc_atomic(n); break;
      case kBitmapTyped: p = dunegc_malloc_typed(n, bitmap_layout); break;
      case kTraceTyped: p = dunegc_malloc_typed(n, trace_layout); break;
      default: p = dunegc_malloc_uncollectable(n); break;
    }
    if (!p) return nullptr;
    auto *o = static_cast<Obj *>(p);
    o->magic = 0x5eed0000 | k;
    o->bytes = uint32_t(n);
    o->id = next_id++;
    if (has_ptrs(k)) memset(o->ptr, 0, sizeof o->ptr);
    auto *b = reinterpret_cast<unsigned char *>(o) + payload_offset(k);
    uint64_t x = rng();
    for (size_t i = 0; i < n - payload_offset(k); i++) b[i] = uint8_t(x >> (8 * (i % 8))) + uint8_t(i);
    o->checksum = checksum(o);
    return o;
  }

  // A random object reachable from the roots (or nullptr).
  Obj *walk() {
    Obj *o = roots[rng() % kRoots];
    for (unsigned steps = unsigned(rng() % 6); o && steps; steps--) {
      if (!has_ptrs(kind_of(o))) break;
      Obj *next = o->ptr[rng() % kPtrs];
      if (!next) break;
      o = next;
    }
    return o;
  }

  void drop_uncollectable(Obj *o) {
    if (o && kind_of(o) == kUncollectableObj) {
      // Only freed when nothing else could point to it: it never gets linked (see step()).
      EXPECT_EQ(dunegc_free(o), 0);
    }
  }

  void step() {
    switch (rng() % 10) {
      case 0: case 1: case 2: {  // new object as a root
        unsigned r = unsigned(rng() % kRoots);
        Obj *o = make();
        if (!o) return;
        drop_uncollectable(roots[r]);
        roots[r] = o;
        break;
      }
      case 3: case 4: case 5: {  // new object linked under a reachable one
        Obj *parent = walk();
        if (!parent || !has_ptrs(kind_of(parent))) return;
        Obj *o = make();
        if (!o) return;
        if (kind_of(o) == kUncollectableObj) {  // uncollectables stay roots (freed explicitly)
          unsigned r = unsigned(rng() % kRoots);
          drop_uncollectable(roots[r]);
          roots[r] = o;
          return;
        }
        parent->ptr[rng() % kPtrs] = o;
        break;
      }
      case 6: {  // link two reachable objects (cycles allowed)
        Obj *a = walk(), *b = walk();
        if (a && b && has_ptrs(kind_of(a)) && kind_of(b) != kUncollectableObj) a->ptr[rng() % kPtrs] = b;
        break;
      }
      case 7: {  // cut a link or a root
        if (rng() % 2) {
          unsigned r = unsigned(rng() % kRoots);
          drop_uncollectable(roots[r]);
          roots[r] = nullptr;
        } else if (Obj *a = walk(); a && has_ptrs(kind_of(a))) {
          a->ptr[rng() % kPtrs] = nullptr;
        }
        break;
      }
      case 8: {  // a temporary, freed explicitly
        Obj *t = make();
        if (t) {
          ASSERT_EQ(t->checksum, checksum(t));
          ASSERT_EQ(dunegc_free(t), 0);
        }
        break;
      }
      default: {  // garbage
        for (int i = 0; i < 8; i++) memset(dunegc_malloc(64 + rng() % 512), 0x77, 64);
        break;
      }
    }
  }

  // Every reachable object must be whole.
  void check() {
    std::unordered_set<const Obj *> seen;
    std::vector<const Obj *> todo;
    for (Obj *r : roots)
      if (r) todo.push_back(r);
    while (!todo.empty()) {
      const Obj *o = todo.back();
      todo.pop_back();
      if (!seen.insert(o).second) continue;
      ASSERT_EQ(o->magic & 0xffff0000, 0x5eed0000u) << "object " << o << " was overwritten";
      ASSERT_LT(kind_of(o), uint32_t(kNumObjKinds));
      ASSERT_EQ(o->checksum, checksum(o)) << "object " << o << " id " << o->id << " corrupted";
      if (has_ptrs(kind_of(o)))
        for (Obj *c : o->ptr)
          if (c) todo.push_back(c);
    }
    checked += seen.size();
  }
};

Graph *g_graph;  // its roots array lives in the malloc heap: registered explicitly below

dunegc_options stress_options() {
  dunegc_options o;
  dunegc_options_init(&o);
  o.verify = 1;
  o.min_trigger_bytes = 256 << 10;
  o.growth = 0.5;
  return o;
}

}  // namespace

TEST(Stress, GraphSurvivesThousandsOfVerifiedCollections) {
  dunegc_options o = stress_options();
  init_or_die(&o);
  g_graph = new Graph(12345);
  ASSERT_EQ(dunegc_add_roots(g_graph->roots, g_graph->roots + Graph::kRoots), 0);
  uint64_t steps = 0;
  while (dunegc_collections() < 2000) {
    g_graph->step();
    if (++steps % 200 == 0) g_graph->check();
    if (steps % 50000 == 0) dunegc_collect();
    ASSERT_LT(steps, 50'000'000u) << "too few collections happen";
  }
  g_graph->check();
  dunegc::Stats st = dunegc::stats();
  EXPECT_GE(st.collections, 2000u);
  EXPECT_GT(st.spans_swept, 0u);
  EXPECT_GT(st.large_objects_freed, 0u);
  EXPECT_GT(st.explicit_frees, 0u);
  EXPECT_GT(g_graph->checked, 2000u);
  EXPECT_LT(st.heap_bytes, size_t{256} << 20) << "the heap should stay near its live size";
}

// A mark stack of 64 entries overflows constantly on a wide graph (an array of 20000
// pointers, each to a short chain); recovery must still mark everything: the verifier
// checks every collection, and the chains are compared after.
TEST(Stress, TinyMarkStackOverflowsAndRecovers) {
  dunegc_options o = stress_options();
  o.mark_stack_entries = 64;
  init_or_die(&o);
  g_graph = new Graph(777);
  ASSERT_EQ(dunegc_add_roots(g_graph->roots, g_graph->roots + Graph::kRoots), 0);
  constexpr size_t kWide = 20000;
  static Obj **wide;
  wide = static_cast<Obj **>(dunegc_malloc(kWide * sizeof(Obj *)));
  ASSERT_NE(wide, nullptr);
  for (size_t i = 0; i < kWide; i++) {
    Obj *head = nullptr;
    for (int k = 0; k < 3; k++) {
      auto *n = static_cast<Obj *>(dunegc_malloc(kWithPtrs + 16));
      n->magic = 0x5eed0000 | kConservative;
      n->bytes = uint32_t(kWithPtrs + 16);
      n->id = i * 4 + uint64_t(k);
      n->ptr[0] = head;
      n->checksum = checksum(n);
      head = n;
    }
    wide[i] = head;
  }
  for (int round = 0; round < 20; round++) {
    for (int k = 0; k < 500; k++) g_graph->step();
    dunegc_collect();
    g_graph->check();
    for (size_t i = 0; i < kWide; i++) {
      int len = 0;
      for (Obj *n = wide[i]; n; n = n->ptr[0], len++) ASSERT_EQ(n->checksum, checksum(n));
      ASSERT_EQ(len, 3);
    }
  }
  EXPECT_GT(dunegc::stats().mark_stack_overflows, 0u);
}

// Several mutators share the heap; each has its own graph and the collections they
// trigger stop all of them.
TEST(Stress, ConcurrentMutatorsKeepTheirGraphs) {
  dunegc_options o = stress_options();
  init_or_die(&o);
  constexpr int kThreads = 4;
  std::atomic<int> failures{0};
  std::vector<pthread_t> ts(kThreads);
  struct Arg {
    int seed;
    std::atomic<int> *failures;
  };
  std::vector<Arg> args(kThreads);
  for (int t = 0; t < kThreads; t++) {
    args[t] = {t + 1, &failures};
    ASSERT_EQ(dunegc_pthread_create(&ts[t], nullptr, [](void *p) -> void * {
      auto *a = static_cast<Arg *>(p);
      Graph g(uint64_t(a->seed));  // roots on this thread's stack
      for (int i = 0; i < 60000; i++) {
        g.step();
        if (i % 5000 == 0) g.check();
      }
      g.check();
      if (::testing::Test::HasFailure()) a->failures->fetch_add(1);
      return nullptr;
    }, &args[t]), 0);
  }
  for (pthread_t t : ts) ASSERT_EQ(dunegc_pthread_join(t, nullptr), 0);
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(dunegc_collections(), 20u);
}
