// Heap policy and the collector's control surface: the heap maximum and the out-of-memory
// hook, expansion, collection triggers, collect_a_little, events, statistics, options.
#include <gtest/gtest.h>

#include <cerrno>
#include <vector>

#include "dunegc/dunegc.hpp"
#include "gc_test_util.h"

using namespace gctest;

namespace {

dunegc_options with_max(size_t max) {
  dunegc_options o;
  dunegc_options_init(&o);
  o.max_heap_bytes = max;
  return o;
}

// Allocates a list of `bytes`-sized nodes until allocation fails; returns the count.
size_t fill_until_null(size_t bytes, size_t limit_count) {
  static void **head;  // a root
  head = nullptr;
  size_t n = 0;
  for (; n < limit_count; n++) {
    auto **p = static_cast<void **>(dunegc_malloc(bytes));
    if (!p) break;
    *p = head;
    head = p;
  }
  return n;
}

}  // namespace

TEST(HeapLimit, ReachingTheMaximumFailsWithAClearError) {
  dunegc_options o = with_max(size_t{16} << 20);
  init_or_die(&o);
  capture_warnings();
  errno = 0;
  size_t n = fill_until_null(1000, 1000000);
  EXPECT_GT(n, 5000u);    // most of 16 MiB was usable
  EXPECT_LT(n, 17000u);   // and no more than that
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_TRUE(warned("out of memory allocating 1000 bytes: the max heap size is reached")) << dunegc_last_error();
  EXPECT_LE(dunegc_heap_size(), size_t{16} << 20);
  EXPECT_EQ(dunegc_malloc(size_t{32} << 20), nullptr);  // a large one fails too
  EXPECT_GE(dunegc_collections(), 1u);  // it collected before giving up
}

TEST(HeapLimit, TheOutOfMemoryHookIsCalledAndItsResultReturned) {
  dunegc_options o = with_max(size_t{8} << 20);
  init_or_die(&o);
  static size_t asked;
  static char reserve[4096];
  dunegc_set_oom_handler([](size_t bytes) -> void * {
    asked = bytes;
    return reserve;
  });
  EXPECT_NE(dunegc_get_oom_handler(), nullptr);
  void *p = dunegc_malloc(size_t{64} << 20);
  EXPECT_EQ(p, reserve);
  EXPECT_EQ(asked, size_t{64} << 20);
  asked = 0;
  static void **keep;
  keep = nullptr;
  for (;;) {  // small objects reach the hook too
    auto **q = static_cast<void **>(dunegc_malloc(512));
    if (reinterpret_cast<char *>(q) == reserve) break;
    *q = keep;
    keep = q;
  }
  EXPECT_EQ(asked, 512u);
}

TEST(HeapLimit, LoweringAndRaisingTheMaximumAtRunTime) {
  init_or_die();
  EXPECT_EQ(dunegc_set_max_heap(1000), -EINVAL);
  ASSERT_EQ(dunegc_set_max_heap(size_t{8} << 20), 0);
  EXPECT_EQ(dunegc_get_max_heap(), size_t{8} << 20);
  EXPECT_EQ(dunegc_malloc(size_t{16} << 20), nullptr);
  ASSERT_EQ(dunegc_set_max_heap(0), 0);
  EXPECT_NE(dunegc_malloc(size_t{16} << 20), nullptr);
}

TEST(HeapLimit, ExpandHeapCommitsAheadWithinTheMaximum) {
  dunegc_options o = with_max(size_t{32} << 20);
  init_or_die(&o);
  size_t before = dunegc_heap_size();
  ASSERT_EQ(dunegc_expand_heap(size_t{16} << 20), 0);
  EXPECT_GE(dunegc_heap_size(), before + (size_t{16} << 20));
  capture_warnings();
  EXPECT_EQ(dunegc_expand_heap(size_t{64} << 20), -ENOMEM);
  EXPECT_TRUE(warned("max heap"));
}

TEST(Policy, TheHeapStaysNearLiveSizeTimesGrowth) {
  dunegc_options o;
  dunegc_options_init(&o);
  o.growth = 1.0;
  o.min_trigger_bytes = 1 << 20;
  init_or_die(&o);
  static void **live;  // ~8 MiB live
  live = static_cast<void **>(dunegc_malloc(8192 * sizeof(void *)));
  for (int i = 0; i < 8192; i++) live[i] = dunegc_malloc(1000);
  for (int i = 0; i < 400000; i++) dunegc_malloc(100);  // 40 MiB of garbage
  dunegc::Stats st = dunegc::stats();
  EXPECT_GE(st.collections, 3u);
  EXPECT_GE(st.live_bytes, size_t{8} << 20);
  EXPECT_LE(st.heap_bytes, size_t{40} << 20) << "collections should keep the heap near 2x live";
  EXPECT_EQ(st.total_bytes >= (size_t{40} << 20), true);
}

TEST(Policy, DisableStopsCollectionsUntilEnabled) {
  init_or_die();
  dunegc_disable();
  dunegc_collect();
  for (int i = 0; i < 200000; i++) dunegc_malloc(100);
  EXPECT_EQ(dunegc_collections(), 0u);
  dunegc_enable();
  dunegc_collect();
  EXPECT_EQ(dunegc_collections(), 1u);
}

TEST(Policy, CollectALittleSweepsPendingSpansThenCollectsWhenDue) {
  dunegc_options o;
  dunegc_options_init(&o);
  o.min_trigger_bytes = 1 << 20;
  init_or_die(&o);
  for (int i = 0; i < 100000; i++) dunegc_malloc(48);
  dunegc_collect();
  uint64_t gcs = dunegc_collections();
  uint64_t swept = dunegc::stats().spans_swept;
  int steps = 0;
  while (dunegc_collect_a_little()) steps++;
  EXPECT_GT(steps, 0);
  EXPECT_GT(dunegc::stats().spans_swept, swept);
  EXPECT_EQ(dunegc_collections(), gcs);         // sweeping only, no collection yet
  EXPECT_EQ(dunegc_collect_a_little(), 0);      // nothing left to sweep, trigger not reached
  EXPECT_EQ(dunegc_collections(), gcs);
  dunegc_disable();                              // push allocation past the trigger...
  for (int i = 0; i < 50000; i++) dunegc_malloc(48);
  dunegc_enable();
  dunegc_collect_a_little();                     // ...then a little collection is a whole one
  EXPECT_EQ(dunegc_collections(), gcs + 1);
}

namespace {
std::vector<int> g_events;
}

TEST(Events, OneCollectionReportsBoehmsEventsInOrder) {
  init_or_die();
  g_events.reserve(64);
  dunegc_set_event_handler([](dunegc_event e) { g_events.push_back(e); });
  EXPECT_NE(dunegc_get_event_handler(), nullptr);
  dunegc_collect();
  std::vector<int> want = {DUNEGC_EVENT_START,          DUNEGC_EVENT_PRE_STOP_WORLD,  DUNEGC_EVENT_POST_STOP_WORLD,
                           DUNEGC_EVENT_MARK_START,     DUNEGC_EVENT_MARK_END,        DUNEGC_EVENT_PRE_START_WORLD,
                           DUNEGC_EVENT_POST_START_WORLD, DUNEGC_EVENT_RECLAIM_START, DUNEGC_EVENT_RECLAIM_END,
                           DUNEGC_EVENT_END};
  EXPECT_EQ(g_events, want);
  // The numbering is Boehm 8.2's GC_EventType, so a Boehm-style recorder maps one to one.
  EXPECT_EQ(DUNEGC_EVENT_MARK_END, 2);
  EXPECT_EQ(DUNEGC_EVENT_PRE_STOP_WORLD, 6);
  EXPECT_EQ(DUNEGC_EVENT_POST_START_WORLD, 9);
}

TEST(Stats, CountersAndPauseFiguresAreConsistent) {
  init_or_die();
  for (int round = 0; round < 10; round++) {
    for (int i = 0; i < 50000; i++) dunegc_malloc(64);
    dunegc_collect();
  }
  dunegc::Stats st = dunegc::stats();
  EXPECT_GE(st.collections, 10u);
  uint64_t in_histogram = 0;
  for (uint64_t b : st.pause_histogram) in_histogram += b;
  EXPECT_EQ(in_histogram, st.collections);
  // stop + roots + mark make up the pauses; the sweep phase follows them.
  uint64_t in_pause = st.phase_total_ns[DUNEGC_PHASE_STOP] + st.phase_total_ns[DUNEGC_PHASE_ROOTS] +
                      st.phase_total_ns[DUNEGC_PHASE_MARK];
  EXPECT_LE(in_pause, st.pause_total_ns);
  EXPECT_GE(in_pause, st.pause_total_ns * 9 / 10);
  EXPECT_GT(st.phase_total_ns[DUNEGC_PHASE_SWEEP], 0u);
  EXPECT_GE(st.pause_max_ns, st.pause_last_ns);
  EXPECT_GE(st.pause_total_ns, st.pause_max_ns);
  EXPECT_GT(st.heap_bytes, 0u);
  EXPECT_GE(st.total_bytes, 10u * 50000 * 64);
  EXPECT_EQ(st.threads_registered, 1u);
  EXPECT_GE(st.markers, 1u);
  EXPECT_EQ(dunegc_collections(), st.collections);
  EXPECT_EQ(dunegc_total_bytes(), st.total_bytes);
  EXPECT_LE(dunegc_free_bytes(), dunegc_heap_size());
  EXPECT_GE(dunegc_unmapped_bytes(), 0u);
  EXPECT_LE(dunegc_bytes_since_gc(), st.total_bytes);
  // A caller with an older, shorter struct gets only its part.
  dunegc_stats small = {};
  small.struct_size = offsetof(dunegc_stats, free_bytes);
  dunegc_get_stats(&small);
  EXPECT_EQ(small.struct_size, offsetof(dunegc_stats, free_bytes));
  EXPECT_GT(small.heap_bytes, 0u);
}

TEST(Options, FutureFeaturesAreRejectedClearly) {
  capture_warnings();
  dunegc_options o;
  dunegc_options_init(&o);
  o.concurrent = 1;
  EXPECT_EQ(dunegc_init(&o), -ENOTSUP);
  EXPECT_TRUE(warned("concurrent marking is not implemented yet"));
  dunegc_options_init(&o);
  o.compaction = 1;
  EXPECT_EQ(dunegc_init(&o), -ENOTSUP);
  EXPECT_TRUE(warned("compaction is not implemented yet"));
  dunegc_options_init(&o);
  o.paging_backend = "dune";
  EXPECT_EQ(dunegc_init(&o), -ENOTSUP);
  EXPECT_TRUE(warned("paging backend \"dune\""));
  dunegc_options_init(&o);
  o.growth = -1;
  EXPECT_EQ(dunegc_init(&o), -EINVAL);
  dunegc_options_init(&o);
  o.max_heap_bytes = 100;
  EXPECT_EQ(dunegc_init(&o), -EINVAL);
  dunegc_options_init(&o);
  o.markers = 1000;
  EXPECT_EQ(dunegc_init(&o), -EINVAL);
  EXPECT_FALSE(dunegc_is_initialized());
  dunegc_options_init(&o);
  o.paging_backend = "none";
  o.markers = 2;
  EXPECT_EQ(dunegc_init(&o), 0);
  EXPECT_EQ(dunegc_init(&o), -EALREADY);
  EXPECT_EQ(dunegc::stats().markers, 2u);
  EXPECT_EQ(dunegc_set_markers(3), -EBUSY);
}

TEST(Options, CppOptionsMapToC) {
  dunegc::Options o;
  o.max_heap_bytes = size_t{64} << 20;
  o.markers = 1;
  ASSERT_EQ(dunegc::init(o), 0) << dunegc::last_error();
  EXPECT_EQ(dunegc_get_max_heap(), size_t{64} << 20);
  EXPECT_EQ(dunegc::stats().markers, 1u);
}

TEST(Options, ImplicitInitOnFirstAllocation) {
  EXPECT_FALSE(dunegc_is_initialized());
  void *p = dunegc_malloc(10);
  EXPECT_NE(p, nullptr);
  EXPECT_TRUE(dunegc_is_initialized());
  EXPECT_TRUE(dunegc_thread_is_registered());
}

TEST(Options, SwitchesBeforeAndAfterInit) {
  dunegc_set_java_finalization(0);
  dunegc_set_finalize_on_demand(1);
  dunegc_set_scan_dynamic_libraries(0);
  ASSERT_EQ(dunegc_set_markers(1), 0);
  init_or_die();
  EXPECT_EQ(dunegc_get_java_finalization(), 0);
  EXPECT_EQ(dunegc_get_finalize_on_demand(), 1);
  EXPECT_EQ(dunegc_get_scan_dynamic_libraries(), 0);
  EXPECT_EQ(dunegc::stats().markers, 1u);
  dunegc_set_scan_dynamic_libraries(1);
  EXPECT_EQ(dunegc_get_scan_dynamic_libraries(), 1);
}
