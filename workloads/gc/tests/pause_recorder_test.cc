// PauseRecorder: synthetic event sequences (what each kind of interval becomes), then live
// Boehm collections -- stop-the-world, incremental, and with mutator threads.
#define GC_THREADS
#include <gc.h>
#include <gtest/gtest.h>
#include <pthread.h>

#include "pause_recorder.h"

namespace gcwl {
namespace {

struct Feed {
  PauseRecorder r;
  Feed() { EXPECT_TRUE(r.init(16)); }
  // Events at absolute times: origin + t.
  Feed &at(uint64_t t, GC_EventType e) {
    r.on_event(e, r.origin_ns() + t);
    return *this;
  }
};

TEST(PauseRecorderEvents, StopTheWorldCollectionIsOnePause) {
  Feed f;
  f.at(100, GC_EVENT_START)
      .at(110, GC_EVENT_PRE_STOP_WORLD)
      .at(130, GC_EVENT_POST_STOP_WORLD)
      .at(131, GC_EVENT_MARK_START)
      .at(900, GC_EVENT_MARK_END)
      .at(901, GC_EVENT_PRE_START_WORLD)
      .at(950, GC_EVENT_POST_START_WORLD)
      .at(960, GC_EVENT_RECLAIM_START)
      .at(1000, GC_EVENT_RECLAIM_END)
      .at(1010, GC_EVENT_END);
  ASSERT_EQ(f.r.size(), 1u);
  EXPECT_EQ(f.r[0].start_ns, 110u);
  EXPECT_EQ(f.r[0].duration_ns, 840u);
  EXPECT_EQ(f.r[0].stop_ns, 20u);
  EXPECT_EQ(f.r[0].reclaim_ns, 40u);
  EXPECT_TRUE(f.r[0].completed);
  EXPECT_EQ(f.r.pauses().count, 1u);
  EXPECT_EQ(f.r.pauses().max_ns, 840u);
  EXPECT_EQ(f.r.spans().count, 1u);
  EXPECT_EQ(f.r.spans().total_ns, 910u);
  EXPECT_EQ(f.r.protocol_errors(), 0u);
}

TEST(PauseRecorderEvents, AbandonedStoppedMarkIsAnIncompletePauseWithoutReclaim) {
  Feed f;
  // Boehm's incremental mode: a stopped mark abandoned at the time limit, then a later one
  // that completes and is followed by the reclaim.
  f.at(0, GC_EVENT_PRE_STOP_WORLD)
      .at(5, GC_EVENT_POST_STOP_WORLD)
      .at(6, GC_EVENT_MARK_START)
      .at(50, GC_EVENT_PRE_START_WORLD)
      .at(60, GC_EVENT_POST_START_WORLD)
      .at(1000, GC_EVENT_PRE_STOP_WORLD)
      .at(1003, GC_EVENT_POST_STOP_WORLD)
      .at(1004, GC_EVENT_MARK_START)
      .at(1020, GC_EVENT_MARK_END)
      .at(1030, GC_EVENT_POST_START_WORLD)
      .at(1040, GC_EVENT_RECLAIM_START)
      .at(1045, GC_EVENT_RECLAIM_END);
  ASSERT_EQ(f.r.size(), 2u);
  EXPECT_FALSE(f.r[0].completed);
  EXPECT_EQ(f.r[0].duration_ns, 60u);
  EXPECT_EQ(f.r[0].reclaim_ns, 0u);
  EXPECT_TRUE(f.r[1].completed);
  EXPECT_EQ(f.r[1].start_ns, 1000u);
  EXPECT_EQ(f.r[1].duration_ns, 30u);
  EXPECT_EQ(f.r[1].reclaim_ns, 5u);
  EXPECT_EQ(f.r.spans().count, 0u);
  EXPECT_EQ(f.r.protocol_errors(), 0u);
}

TEST(PauseRecorderEvents, WithoutStopWorldEventsMarkingIsThePause) {
  Feed f;
  f.at(10, GC_EVENT_START).at(20, GC_EVENT_MARK_START).at(70, GC_EVENT_MARK_END)
      .at(71, GC_EVENT_RECLAIM_START).at(80, GC_EVENT_RECLAIM_END).at(81, GC_EVENT_END);
  ASSERT_EQ(f.r.size(), 1u);
  EXPECT_EQ(f.r[0].start_ns, 20u);
  EXPECT_EQ(f.r[0].duration_ns, 50u);
  EXPECT_EQ(f.r[0].reclaim_ns, 9u);
  EXPECT_TRUE(f.r[0].completed);
  EXPECT_EQ(f.r.protocol_errors(), 0u);
}

TEST(PauseRecorderEvents, OutOfOrderEventsAreCountedNotRecorded) {
  Feed f;
  f.at(1, GC_EVENT_POST_START_WORLD).at(2, GC_EVENT_RECLAIM_END).at(3, GC_EVENT_END);
  f.at(4, GC_EVENT_PRE_STOP_WORLD).at(5, GC_EVENT_PRE_STOP_WORLD).at(9, GC_EVENT_POST_START_WORLD);
  EXPECT_EQ(f.r.protocol_errors(), 4u);
  ASSERT_EQ(f.r.size(), 1u);
  EXPECT_EQ(f.r[0].start_ns, 4u);  // the outer start is kept
  EXPECT_EQ(f.r[0].duration_ns, 5u);
}

TEST(PauseRecorderEvents, FullBufferDropsRecordsButKeepsTotals) {
  PauseRecorder r;
  ASSERT_TRUE(r.init(2));
  uint64_t t = r.origin_ns();
  for (uint64_t d : {10, 30, 20}) {
    r.on_event(GC_EVENT_PRE_STOP_WORLD, t);
    r.on_event(GC_EVENT_POST_START_WORLD, t += d);
    t += 100;
  }
  EXPECT_EQ(r.size(), 2u);
  EXPECT_EQ(r.dropped(), 1u);
  EXPECT_EQ(r.pauses().count, 3u);
  EXPECT_EQ(r.pauses().total_ns, 60u);
  EXPECT_EQ(r.pauses().max_ns, 30u);
}

TEST(PauseRecorderEvents, FrozenRecorderIgnoresEvents) {
  Feed f;
  f.r.freeze();
  f.at(1, GC_EVENT_PRE_STOP_WORLD).at(2, GC_EVENT_POST_START_WORLD);
  EXPECT_EQ(f.r.size(), 0u);
  EXPECT_EQ(f.r.pauses().count, 0u);
}

// Live collections: every completed collection is one completed pause, in time order, with
// nothing out of protocol.
void expect_consistent_pauses(const PauseRecorder &r, uint64_t collections) {
  EXPECT_GT(r.size(), 0u);
  EXPECT_EQ(r.protocol_errors(), 0u);
  EXPECT_EQ(r.dropped(), 0u);
  uint64_t completed = 0, prev_end = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    EXPECT_GT(r[i].duration_ns, 0u) << "pause " << i;
    EXPECT_LE(r[i].stop_ns, r[i].duration_ns) << "pause " << i;
    EXPECT_GE(r[i].start_ns, prev_end) << "pause " << i << " overlaps the one before";
    prev_end = r[i].start_ns + r[i].duration_ns;
    completed += r[i].completed;
  }
  EXPECT_EQ(completed, collections);
}

void *churn(void *arg) {
  auto n = reinterpret_cast<uintptr_t>(arg);
  void **keep = static_cast<void **>(GC_MALLOC(1024 * sizeof(void *)));
  for (uintptr_t i = 0; i < n; ++i) keep[i % 1024] = GC_MALLOC(48);
  return keep[0];
}

void churn_2m() { churn(reinterpret_cast<void *>(uintptr_t(2000000))); }

// Records while `mutate` runs, checks the pauses against the collections Boehm counted, and
// returns that count.
template <typename F>
uint64_t record_collections(F mutate) {
  EXPECT_TRUE(PauseRecorder::install(1 << 16));
  uint64_t gc0 = GC_get_gc_no();
  mutate();
  PauseRecorder::global().freeze();
  uint64_t collections = GC_get_gc_no() - gc0;
  EXPECT_GE(collections, 2u);
  expect_consistent_pauses(PauseRecorder::global(), collections);
  return collections;
}

TEST(PauseRecorderBoehm, SeesEveryStopTheWorldCollection) {
  GC_INIT();
  uint64_t n = record_collections([] {
    churn_2m();
    GC_gcollect();
  });
  const PauseRecorder &r = PauseRecorder::global();
  EXPECT_EQ(r.size(), n);  // no abandoned attempts without incremental mode
  EXPECT_EQ(r.spans().count, n);
}

TEST(PauseRecorderBoehm, SeesIncrementalModeCollections) {
  GC_INIT();
  GC_enable_incremental();
  ASSERT_TRUE(GC_is_incremental_mode());
  record_collections(churn_2m);
  EXPECT_EQ(PauseRecorder::global().spans().count, 0u);  // no GC_EVENT_START in this mode
}

TEST(PauseRecorderBoehm, RecordsAbandonedStoppedMarksUnderATimeLimit) {
  // Debian's Boehm 8.2 defaults to no time limit, so its incremental mode is generational
  // and each stopped mark completes. With a limit it abandons stopped marks and restarts the
  // world: those intervals are pauses too, recorded as not completed.
  GC_INIT();
  GC_enable_incremental();
  GC_set_time_limit_tv(GC_timeval_s{0, 10000});  // 10 us: every long mark is cut short
  uint64_t n = record_collections(churn_2m);
  const PauseRecorder &r = PauseRecorder::global();
  EXPECT_GT(r.size(), n) << "no stopped mark was abandoned";
  for (size_t i = 0; i < r.size(); ++i)
    EXPECT_TRUE(r[i].completed || r[i].reclaim_ns == 0) << "reclaim after abandoned pause " << i;
}

TEST(PauseRecorderBoehm, SeesCollectionsWithMutatorThreads) {
  GC_INIT();
  record_collections([] {
    pthread_t t[4];
    for (auto &th : t)  // GC_THREADS: this is GC_pthread_create
      ASSERT_EQ(pthread_create(&th, nullptr, churn, reinterpret_cast<void *>(uintptr_t(500000))), 0);
    for (auto &th : t) pthread_join(th, nullptr);
  });
}

}  // namespace
}  // namespace gcwl
