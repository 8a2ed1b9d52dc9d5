// Collection statistics: per-phase times, the pause histogram and counters, kept by the
// collecting thread under the collector's lock and copied out by dunegc_get_stats().
#pragma once

#include <time.h>

#include <cstdint>

#include "dunegc/dunegc.h"

namespace dunegc::gc {

inline uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

// Histogram bucket of a pause: 0 for < 2 us, k for [2^k, 2^(k+1)) us, capped.
inline unsigned pause_bucket(uint64_t ns) {
  uint64_t us = ns / 1000;
  unsigned b = us < 2 ? 0 : unsigned(63 - __builtin_clzll(us));
  return b < DUNEGC_PAUSE_BUCKETS ? b : DUNEGC_PAUSE_BUCKETS - 1;
}

struct CollectionTimes {
  uint64_t phase_ns[DUNEGC_PHASES];
  uint64_t pause_ns;
};

class Stats {
 public:
  void record(const CollectionTimes &t, uint64_t objects_marked, uint64_t helper_objects, bool overflowed);
  void add_lazy_sweep(uint64_t ns) { lazy_sweep_ns_ += ns; }
  void count_finalizer_run() { finalizers_run_++; }
  // Fills the timing and counter fields of *out (the caller fills heap figures).
  void fill(dunegc_stats *out) const;

 private:
  uint64_t collections_ = 0;
  uint64_t pause_total_ = 0, pause_max_ = 0, pause_last_ = 0;
  uint64_t phase_total_[DUNEGC_PHASES] = {}, phase_last_[DUNEGC_PHASES] = {};
  uint64_t histogram_[DUNEGC_PAUSE_BUCKETS] = {};
  uint64_t lazy_sweep_ns_ = 0;
  uint64_t objects_marked_last_ = 0, helper_objects_last_ = 0, overflows_ = 0;
  uint64_t finalizers_run_ = 0;
};

// The report dunegc_print_stats() writes.
void format_stats(const dunegc_stats &s, char *buf, size_t len);

}  // namespace dunegc::gc
