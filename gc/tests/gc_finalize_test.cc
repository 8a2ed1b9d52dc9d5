// Finalizers (ordered, ignore-self, unordered; Java-style keeping; on demand) and
// disappearing links (weak references).
#include <gtest/gtest.h>
#include <pthread.h>

#include <cerrno>
#include <string>
#include <vector>

#include "dunegc/dunegc.hpp"
#include "gc_test_util.h"

using namespace gctest;

namespace {

struct Obj {
  Obj *ref;
  Obj *self;
  uint64_t payload[6];
};

std::vector<std::string> &log() {
  static std::vector<std::string> l;
  return l;
}

void record(void *obj, void *data) {
  auto *o = static_cast<Obj *>(obj);
  log().push_back(std::string(static_cast<const char *>(data)) + ":" + std::to_string(o->payload[0]));
}

Obj *make(uint64_t tag) {
  auto *o = static_cast<Obj *>(dunegc_malloc(sizeof(Obj)));
  for (auto &p : o->payload) p = tag;
  return o;
}

// Objects are built in noinline helpers so no register or frame of the test keeps them.
#define SETUP static __attribute__((noinline)) void

SETUP two_linked(int order_a, int order_b) {
  Obj *a = make(1), *b = make(2);
  a->ref = b;
  static const char *na = "a", *nb = "b";
  ASSERT_EQ(dunegc_register_finalizer(a, record, const_cast<char *>(na), dunegc_finalize_order(order_a), nullptr, nullptr), 0);
  ASSERT_EQ(dunegc_register_finalizer(b, record, const_cast<char *>(nb), dunegc_finalize_order(order_b), nullptr, nullptr), 0);
}

}  // namespace

TEST(Finalize, OrderedReferrerIsFinalizedBeforeWhatItReaches) {
  init_or_die();
  two_linked(DUNEGC_FINALIZE_ORDERED, DUNEGC_FINALIZE_ORDERED);
  collect_clean();
  ASSERT_EQ(log().size(), 1u);
  EXPECT_EQ(log()[0], "a:1");
  collect_clean();
  ASSERT_EQ(log().size(), 2u);
  EXPECT_EQ(log()[1], "b:2");
  EXPECT_EQ(dunegc::stats().finalizers_run, 2u);
}

TEST(Finalize, UnorderedObjectsAreFinalizedTogether) {
  init_or_die();
  two_linked(DUNEGC_FINALIZE_UNORDERED, DUNEGC_FINALIZE_UNORDERED);
  collect_clean();
  EXPECT_EQ(log().size(), 2u);
}

namespace {
SETUP self_cycle(int order) {
  Obj *a = make(7);
  a->self = a;
  static const char *n = "self";
  ASSERT_EQ(dunegc_register_finalizer(a, record, const_cast<char *>(n), dunegc_finalize_order(order), nullptr, nullptr), 0);
}
}  // namespace

TEST(Finalize, AnOrderedObjectOnACycleThroughItselfIsNeverFinalized) {
  init_or_die();
  self_cycle(DUNEGC_FINALIZE_ORDERED);
  for (int i = 0; i < 3; i++) collect_clean();
  EXPECT_TRUE(log().empty());
}

TEST(Finalize, IgnoreSelfDisregardsPointersToItself) {
  init_or_die();
  self_cycle(DUNEGC_FINALIZE_IGNORE_SELF);
  collect_clean();
  ASSERT_EQ(log().size(), 1u);
  EXPECT_EQ(log()[0], "self:7");
}

namespace {
// volatile: these globals are only written by the tests; without it the compiler would
// drop the stores, and with them the roots.
Obj *volatile g_keep;
Obj *volatile g_resurrected;
SETUP reachable_finalizable() {
  g_keep = make(3);
  static const char *n = "kept";
  dunegc_register_finalizer(g_keep, record, const_cast<char *>(n), DUNEGC_FINALIZE_ORDERED, nullptr, nullptr);
}
void resurrect(void *obj, void *) {
  g_resurrected = static_cast<Obj *>(obj);
  log().push_back("resurrected:" + std::to_string(g_resurrected->payload[5]));
}
SETUP resurrectable() {
  Obj *o = make(11);
  dunegc_register_finalizer(o, resurrect, nullptr, DUNEGC_FINALIZE_ORDERED, nullptr, nullptr);
}
}  // namespace

TEST(Finalize, ReachableObjectsAreNotFinalizedUntilTheyAreNot) {
  init_or_die();
  reachable_finalizable();
  collect_clean();
  collect_clean();
  EXPECT_TRUE(log().empty());
  g_keep = nullptr;
  collect_clean();
  ASSERT_EQ(log().size(), 1u);
  EXPECT_EQ(log()[0], "kept:3");
}

TEST(Finalize, AFinalizerSeesTheObjectWholeAndMayResurrectItOnce) {
  dunegc_options o;
  dunegc_options_init(&o);
  o.verify = 1;  // reclaimed memory would be poisoned
  init_or_die(&o);
  resurrectable();
  collect_clean();
  ASSERT_EQ(log().size(), 1u);
  EXPECT_EQ(log()[0], "resurrected:11");
  for (int i = 0; i < 3; i++) collect_clean();  // finalizers run once: it is now plain data
  EXPECT_EQ(log().size(), 1u);
  ASSERT_NE(g_resurrected, nullptr);
  EXPECT_EQ(g_resurrected->payload[0], 11u);
}

namespace {
uint64_t g_seen_by_finalizer;
void read_ref(void *obj, void *) { g_seen_by_finalizer = static_cast<Obj *>(obj)->ref->payload[3]; }
SETUP unordered_with_child() {
  Obj *x = make(5), *y = make(0x1234);
  x->ref = y;
  dunegc_register_finalizer(x, read_ref, nullptr, DUNEGC_FINALIZE_UNORDERED, nullptr, nullptr);
}
}  // namespace

// Java-style finalization (the default) keeps what an unordered finalizable object reaches
// until its finalizer has run; without it only the object itself is kept (Boehm's
// semantics), and in verify mode the child's reclaimed memory reads as poison.
TEST(Finalize, JavaStyleKeepsWhatAnUnorderedObjectReaches) {
  dunegc_options o;
  dunegc_options_init(&o);
  o.verify = 1;
  init_or_die(&o);
  EXPECT_EQ(dunegc_get_java_finalization(), 1);
  unordered_with_child();
  collect_clean();
  EXPECT_EQ(g_seen_by_finalizer, 0x1234u);
}

TEST(Finalize, WithoutJavaStyleOnlyTheObjectItselfIsKept) {
  dunegc_options o;
  dunegc_options_init(&o);
  o.verify = 1;
  o.java_finalization = 0;
  init_or_die(&o);
  unordered_with_child();
  collect_clean();
  EXPECT_EQ(g_seen_by_finalizer, 0xdbdbdbdbdbdbdbdbu);
}

namespace {
SETUP several_finalizable(int n) {
  static const char *name = "f";
  for (int i = 0; i < n; i++)
    dunegc_register_finalizer(make(uint64_t(i)), record, const_cast<char *>(name), DUNEGC_FINALIZE_ORDERED, nullptr,
                              nullptr);
}
}  // namespace

TEST(Finalize, OnDemandFinalizersWaitForInvoke) {
  init_or_die();
  dunegc_set_finalize_on_demand(1);
  several_finalizable(20);
  collect_clean();
  EXPECT_TRUE(log().empty());
  EXPECT_GE(dunegc_pending_finalizers(), 18u);  // a stray stack word may keep one or two
  size_t pending = dunegc_pending_finalizers();
  EXPECT_EQ(size_t(dunegc_invoke_finalizers()), pending);
  EXPECT_EQ(log().size(), pending);
  EXPECT_EQ(dunegc_pending_finalizers(), 0u);
  EXPECT_EQ(dunegc::stats().finalizers_queued, pending);
}

namespace {
pthread_t g_finalizer_thread;
void note_thread(void *, void *) { g_finalizer_thread = pthread_self(); }
SETUP one_noting() { dunegc_register_finalizer(make(1), note_thread, nullptr, DUNEGC_FINALIZE_ORDERED, nullptr, nullptr); }
}  // namespace

TEST(Finalize, FinalizersRunOnTheThreadWhoseAllocationCollected) {
  dunegc_options o;
  dunegc_options_init(&o);
  o.min_trigger_bytes = 1 << 20;
  o.growth = 0.1;
  init_or_die(&o);
  one_noting();
  clear_stack();
  uint64_t before = dunegc_collections();
  while (dunegc_collections() == before) dunegc_malloc(64);  // an allocation collects
  // ...and, a few allocations later at most, the finalizer ran on this thread.
  for (int i = 0; i < 1000 && !g_finalizer_thread; i++) dunegc_malloc(64);
  EXPECT_TRUE(pthread_equal(g_finalizer_thread, pthread_self()));
}

TEST(Finalize, RegistrationReturnsTheOldOneAndNullUnregisters) {
  init_or_die();
  capture_warnings();
  Obj *o = make(9);
  static const char *d1 = "one", *d2 = "two";
  dunegc_finalizer old_fn = reinterpret_cast<dunegc_finalizer>(1);
  void *old_data = reinterpret_cast<void *>(1);
  ASSERT_EQ(dunegc_register_finalizer(o, record, const_cast<char *>(d1), DUNEGC_FINALIZE_ORDERED, &old_fn, &old_data), 0);
  EXPECT_EQ(old_fn, nullptr);
  EXPECT_EQ(old_data, nullptr);
  ASSERT_EQ(dunegc_register_finalizer(o, resurrect, const_cast<char *>(d2), DUNEGC_FINALIZE_UNORDERED, &old_fn, &old_data), 0);
  EXPECT_EQ(old_fn, &record);
  EXPECT_EQ(old_data, d1);
  ASSERT_EQ(dunegc_register_finalizer(o, nullptr, nullptr, DUNEGC_FINALIZE_ORDERED, &old_fn, &old_data), 0);
  EXPECT_EQ(old_fn, &resurrect);
  int local;
  EXPECT_EQ(dunegc_register_finalizer(&local, record, nullptr, DUNEGC_FINALIZE_ORDERED, nullptr, nullptr), -EINVAL);
  EXPECT_TRUE(warned("not the start of a collectable heap object"));
  EXPECT_EQ(dunegc_register_finalizer(o, record, nullptr, dunegc_finalize_order(7), nullptr, nullptr), -EINVAL);
  void *u = dunegc_malloc_uncollectable(16);
  EXPECT_EQ(dunegc_register_finalizer(u, record, nullptr, DUNEGC_FINALIZE_ORDERED, nullptr, nullptr), -EINVAL);
  o = nullptr;
  collect_clean();
  EXPECT_TRUE(log().empty());  // unregistered: nothing ran
}

namespace {
SETUP finalizable_then_freed() {
  Obj *o = make(4);
  dunegc_register_finalizer(o, record, nullptr, DUNEGC_FINALIZE_ORDERED, nullptr, nullptr);
  ASSERT_EQ(dunegc_free(o), 0);
}
}  // namespace

TEST(Finalize, ExplicitlyFreedObjectsLoseTheirFinalizer) {
  init_or_die();
  finalizable_then_freed();
  for (int i = 0; i < 2; i++) collect_clean();
  EXPECT_TRUE(log().empty());
}

namespace {
Watch *g_watch;
SETUP finalizable_with_data() {
  Obj *z = make(0x77);
  g_watch->watch(0, z);
  static const char *n = "d";
  (void)n;
  dunegc_register_finalizer(make(1), [](void *, void *data) { g_seen_by_finalizer = static_cast<Obj *>(data)->payload[2]; },
                            z, DUNEGC_FINALIZE_ORDERED, nullptr, nullptr);
}
}  // namespace

TEST(Finalize, ClientDataIsKeptUntilTheFinalizerRan) {
  init_or_die();
  dunegc_set_finalize_on_demand(1);
  Watch w(1);
  g_watch = &w;
  finalizable_with_data();
  collect_clean();
  collect_clean();
  EXPECT_TRUE(w.alive(0));  // referenced only as client data
  EXPECT_EQ(dunegc_invoke_finalizers(), 1);
  EXPECT_EQ(g_seen_by_finalizer, 0x77u);
  collect_clean();
  EXPECT_FALSE(w.alive(0));
}

// --- disappearing links ---

namespace {
Obj *volatile g_target;
SETUP target_with_link(Watch &w) {
  g_target = make(1);
  w.watch(0, g_target);
}
}  // namespace

TEST(WeakLinks, ClearedWhenTheTargetDiesNotBefore) {
  init_or_die();
  Watch w(1);
  target_with_link(w);
  collect_clean();
  EXPECT_TRUE(w.alive(0));
  g_target = nullptr;
  collect_clean();
  EXPECT_FALSE(w.alive(0));
  EXPECT_GE(dunegc::stats().links_cleared, 1u);
}

TEST(WeakLinks, RegistrationResultsAndErrors) {
  init_or_die();
  capture_warnings();
  static void *link;
  Obj *a = make(1), *b = make(2);
  EXPECT_EQ(dunegc_register_disappearing_link(&link, a), 0);
  EXPECT_EQ(dunegc_register_disappearing_link(&link, b), DUNEGC_DUPLICATE);
  EXPECT_EQ(dunegc_unregister_disappearing_link(&link), 1);
  EXPECT_EQ(dunegc_unregister_disappearing_link(&link), 0);
  int local;
  EXPECT_EQ(dunegc_register_disappearing_link(&link, &local), -EINVAL);
  EXPECT_EQ(dunegc_register_disappearing_link(reinterpret_cast<void **>(reinterpret_cast<char *>(&link) + 1), a), -EINVAL);
  EXPECT_EQ(dunegc_register_disappearing_link(nullptr, a), -EINVAL);
  EXPECT_TRUE(warned("dunegc_register_disappearing_link"));
}

namespace {
void **g_link_slot;
SETUP finalizable_target_with_link() {
  Obj *o = make(21);
  g_link_slot = static_cast<void **>(calloc(1, sizeof(void *)));
  *g_link_slot = o;
  dunegc_register_disappearing_link(g_link_slot, o);
  dunegc_register_finalizer(o, resurrect, nullptr, DUNEGC_FINALIZE_ORDERED, nullptr, nullptr);
}
}  // namespace

TEST(WeakLinks, AreClearedBeforeFinalizationCanResurrect) {
  init_or_die();
  finalizable_target_with_link();
  collect_clean();
  EXPECT_EQ(*g_link_slot, nullptr);      // cleared although...
  ASSERT_NE(g_resurrected, nullptr);     // ...its finalizer brought it back
  EXPECT_EQ(g_resurrected->payload[0], 21u);
}

namespace {
Obj *volatile g_long_lived;
SETUP holder_dies_target_lives() {
  g_long_lived = make(3);
  auto **holder = static_cast<void **>(dunegc_malloc(64));
  holder[3] = g_long_lived;
  // The link lives in a heap object that is about to die.
  ASSERT_EQ(dunegc_register_disappearing_link(&holder[3], g_long_lived), 0);
}
}  // namespace

TEST(WeakLinks, ALinkInsideADeadObjectGoesWithIt) {
  dunegc_options o;
  dunegc_options_init(&o);
  o.verify = 1;
  init_or_die(&o);
  holder_dies_target_lives();
  collect_clean();  // the holder dies; its link registration must be dropped
  // Reuse every free 64-byte slot, marking each with a pattern (and keeping them all).
  constexpr int kFill = 20000;
  auto **filled = static_cast<uint64_t **>(dunegc_malloc_uncollectable(kFill * sizeof(uint64_t *)));
  for (int i = 0; i < kFill; i++) {
    filled[i] = static_cast<uint64_t *>(dunegc_malloc(64));
    for (int k = 0; k < 8; k++) filled[i][k] = 0xabababababababab;
  }
  g_long_lived = nullptr;
  collect_clean();  // the target dies: no stale link may be written into a reused slot
  for (int i = 0; i < kFill; i++)
    for (int k = 0; k < 8; k++) ASSERT_EQ(filled[i][k], 0xabababababababab) << filled[i];
}

TEST(WeakLinks, CallWithLockReadsAHiddenPointerSafely) {
  init_or_die();
  static uintptr_t hidden;
  Obj *o = make(42);
  hidden = hide(o);
  void *seen = dunegc_call_with_lock([](void *) -> void * { return reveal(hidden); }, nullptr);
  EXPECT_EQ(seen, o);
}
