#include <gtest/gtest.h>

#include "bench/cycles.h"
#include "bench/json.h"
#include "bench/stats.h"

TEST(Stats, MedianAndPercentilesOfKnownSamples) {
  std::vector<int> v{5, 1, 4, 2, 3, 10, 6, 7, 9, 8, 0};  // 0..10
  bench::Summary s = bench::summarize(v);
  EXPECT_EQ(s.reps, 11u);
  EXPECT_DOUBLE_EQ(s.median, 5);
  EXPECT_DOUBLE_EQ(s.p10, 1);
  EXPECT_DOUBLE_EQ(s.p90, 9);
  EXPECT_DOUBLE_EQ(s.min, 0);
  EXPECT_DOUBLE_EQ(s.max, 10);
}

TEST(Stats, EvenCountInterpolates) {
  bench::Summary s = bench::summarize(std::vector<double>{1, 2, 3, 4});
  EXPECT_DOUBLE_EQ(s.median, 2.5);
}

TEST(Stats, EmptyIsZeroReps) { EXPECT_EQ(bench::summarize(std::vector<double>{}).reps, 0u); }

TEST(Json, NestedStructureAndEscaping) {
  bench::JsonWriter w;
  w.begin_object()
      .kv("name", "a\"b\\c\n")
      .kv("n", 3)
      .kv("x", 0.5)
      .kv("nan", std::nan(""))
      .key("list")
      .begin_array()
      .value(1)
      .value(true)
      .begin_object()
      .kv("k", "v")
      .end_object()
      .end_array()
      .key("raw")
      .raw("{\"a\": 1}")
      .end_object();
  EXPECT_EQ(w.str(),
            "{\"name\": \"a\\\"b\\\\c\\n\", \"n\": 3, \"x\": 0.5, \"nan\": null, "
            "\"list\": [1, true, {\"k\": \"v\"}], \"raw\": {\"a\": 1}}");
}

TEST(Cycles, MonotonicAndOverheadCorrected) {
  uint64_t a = bench::cycles_begin();
  uint64_t b = bench::cycles_end();
  EXPECT_GE(b, a);
  EXPECT_LT(bench::timer_overhead(), 100000u);  // sanity: a few hundred cycles at most
  EXPECT_EQ(bench::corrected(10, 10), 0u);      // never negative
}
