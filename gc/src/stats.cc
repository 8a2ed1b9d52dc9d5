#include "stats.h"

#include <cstdio>

namespace dunegc::gc {

void Stats::record(const CollectionTimes &t, uint64_t objects_marked, uint64_t helper_objects, bool overflowed) {
  collections_++;
  pause_total_ += t.pause_ns;
  pause_last_ = t.pause_ns;
  if (t.pause_ns > pause_max_) pause_max_ = t.pause_ns;
  histogram_[pause_bucket(t.pause_ns)]++;
  for (int i = 0; i < DUNEGC_PHASES; i++) {
    phase_total_[i] += t.phase_ns[i];
    phase_last_[i] = t.phase_ns[i];
  }
  objects_marked_last_ = objects_marked;
  helper_objects_last_ = helper_objects;
  overflows_ += overflowed;
}

void Stats::fill(dunegc_stats *out) const {
  out->collections = collections_;
  out->pause_total_ns = pause_total_;
  out->pause_max_ns = pause_max_;
  out->pause_last_ns = pause_last_;
  for (int i = 0; i < DUNEGC_PHASES; i++) {
    out->phase_total_ns[i] = phase_total_[i];
    out->phase_last_ns[i] = phase_last_[i];
  }
  for (int i = 0; i < DUNEGC_PAUSE_BUCKETS; i++) out->pause_histogram[i] = histogram_[i];
  out->lazy_sweep_ns = lazy_sweep_ns_;
  out->objects_marked_last = objects_marked_last_;
  out->helper_objects_last = helper_objects_last_;
  out->mark_stack_overflows = overflows_;
  out->finalizers_run = finalizers_run_;
}

void format_stats(const dunegc_stats &s, char *buf, size_t len) {
  const double ms = 1e-6, mib = 1.0 / (1 << 20);
  char max[32] = "none";
  if (s.max_heap_bytes) snprintf(max, sizeof max, "%.1f MiB", s.max_heap_bytes * mib);
  int n = snprintf(buf, len,
                   "dunegc: %llu collections, %u markers; pauses: total %.3f ms, max %.3f ms, mean %.3f ms\n"
                   "dunegc: phases (total ms): stop %.3f, roots %.3f, mark %.3f, sweep %.3f; "
                   "lazy sweeping %.3f ms over %llu spans\n"
                   "dunegc: heap %.1f MiB (max %s), free %.1f MiB, unmapped %.1f MiB, live after last "
                   "collection %.1f MiB, allocated %.1f MiB in all\n"
                   "dunegc: overflow recoveries %llu, finalizers queued %llu run %llu, links cleared %llu, "
                   "explicit frees %llu, large objects freed %llu, threads %llu\n"
                   "dunegc: pause histogram (us):",
                   (unsigned long long)s.collections, s.markers, s.pause_total_ns * ms, s.pause_max_ns * ms,
                   s.collections ? s.pause_total_ns * ms / double(s.collections) : 0.0,
                   s.phase_total_ns[DUNEGC_PHASE_STOP] * ms, s.phase_total_ns[DUNEGC_PHASE_ROOTS] * ms,
                   s.phase_total_ns[DUNEGC_PHASE_MARK] * ms, s.phase_total_ns[DUNEGC_PHASE_SWEEP] * ms,
                   s.lazy_sweep_ns * ms, (unsigned long long)s.spans_swept, s.heap_bytes * mib, max, s.free_bytes * mib,
                   s.unmapped_bytes * mib, s.live_bytes * mib, double(s.total_bytes) * mib,
                   (unsigned long long)s.mark_stack_overflows, (unsigned long long)s.finalizers_queued,
                   (unsigned long long)s.finalizers_run, (unsigned long long)s.links_cleared,
                   (unsigned long long)s.explicit_frees, (unsigned long long)s.large_objects_freed,
                   (unsigned long long)s.threads_registered);
  for (int b = 0; b < DUNEGC_PAUSE_BUCKETS && n > 0 && size_t(n) < len; b++) {
    if (!s.pause_histogram[b]) continue;
    unsigned long long lo = b == 0 ? 0 : 1ull << b;
    n += snprintf(buf + n, len - size_t(n), " [%llu,%llu):%llu", lo, 2ull << b,
                  (unsigned long long)s.pause_histogram[b]);
  }
  if (n > 0 && size_t(n) < len - 1) snprintf(buf + n, len - size_t(n), "\n");
}

}  // namespace dunegc::gc
