// Collection, heap figures, roots and the incremental-mode API (dunegc is stop-the-world
// only: GC_enable_incremental says so and changes nothing).
#include <cstring>

#include "bdw.h"

using namespace dunegc::bdw;
using dunegc::gc::warn;

namespace dunegc::bdw {
extern std::atomic<GC_stop_func> g_stop_func;
int force_unmap_on_gcollect();
int collect_a_little_rate();
}  // namespace dunegc::bdw

extern "C" {

void GC_gcollect(void) {
  ensure_init();
  GC_stop_func stop = g_stop_func.load(std::memory_order_acquire);
  if (stop && stop()) return;  // asked not to collect now
  C().collect(force_unmap_on_gcollect() != 0);
}

void GC_gcollect_and_unmap(void) {
  ensure_init();
  C().collect(true);
}

// dunegc cannot abandon a collection once started: stop_func is asked before it begins.
int GC_try_to_collect(GC_stop_func stop) {
  ensure_init();
  if (stop && stop()) return 0;
  return C().collect(force_unmap_on_gcollect() != 0) ? 1 : 0;
}

int GC_collect_a_little(void) {
  ensure_init();
  return C().collect_a_little(unsigned(collect_a_little_rate()));
}

void GC_disable(void) { __atomic_fetch_add(&GC_dont_gc, 1, __ATOMIC_RELAXED); }
void GC_enable(void) {
  if (__atomic_fetch_sub(&GC_dont_gc, 1, __ATOMIC_RELAXED) <= 0) {
    __atomic_fetch_add(&GC_dont_gc, 1, __ATOMIC_RELAXED);
    warn("GC_enable: called more often than GC_disable; collection stays enabled");
  }
}
int GC_is_disabled(void) { return __atomic_load_n(&GC_dont_gc, __ATOMIC_RELAXED) != 0; }

void GC_enable_incremental(void) {
  ensure_init();
  warn("GC_enable_incremental: dunegc collects stop-the-world only (incremental and generational collection "
       "are not implemented); collection stays stop-the-world");
}
int GC_is_incremental_mode(void) { return 0; }
int GC_incremental_protection_needs(void) { return GC_PROTECTS_NONE; }
// Boehm: "no-op unless incremental mode is on" -- which it never is here.
void GC_start_incremental_collection(void) {}

// ---------------------------------------------------------------- heap figures

// Unsynchronised, as Boehm's are: these may be called from collection callbacks, with the
// collector's lock held.
size_t GC_get_heap_size(void) { return GC_is_init_called() ? C().unlocked_counters().heap_bytes : 0; }
size_t GC_get_free_bytes(void) {
  if (!GC_is_init_called()) return 0;
  dunegc::gc::UnlockedCounters c = C().unlocked_counters();
  size_t used = c.live_bytes + c.bytes_since_gc;
  return c.heap_bytes > used ? c.heap_bytes - used : 0;
}
size_t GC_get_unmapped_bytes(void) {
  return GC_is_init_called() ? C().heap().pages().stats().decommitted_bytes : 0;
}
size_t GC_get_bytes_since_gc(void) { return GC_is_init_called() ? C().unlocked_counters().bytes_since_gc : 0; }
size_t GC_get_expl_freed_bytes_since_gc(void) {
  return GC_is_init_called() ? C().unlocked_counters().freed_since_gc : 0;
}
size_t GC_get_total_bytes(void) { return GC_is_init_called() ? C().unlocked_counters().total_bytes : 0; }
size_t GC_get_obtained_from_os_bytes(void) {
  if (!GC_is_init_called()) return 0;
  dunegc::allocators::PageHeapStats s = C().heap().pages().stats();
  return s.committed_bytes + s.decommitted_bytes;
}
size_t GC_get_memory_use(void) {
  if (!GC_is_init_called()) return 0;
  dunegc::allocators::PageHeapStats s = C().heap().pages().stats();
  return s.in_use_bytes;
}

void GC_get_heap_usage_safe(GC_word *heap, GC_word *free_bytes, GC_word *unmapped, GC_word *since_gc,
                            GC_word *total) {
  dunegc_stats s;
  s.struct_size = sizeof s;
  dunegc_get_stats(&s);
  if (heap) *heap = s.heap_bytes;
  if (free_bytes) *free_bytes = s.free_bytes;
  if (unmapped) *unmapped = s.unmapped_bytes;
  if (since_gc) *since_gc = s.bytes_since_gc;
  if (total) *total = s.total_bytes;
}

static size_t fill_prof_stats(struct GC_prof_stats_s *out, size_t size, const dunegc_stats &s, GC_word freed) {
  GC_prof_stats_s p;
  p.heapsize_full = s.heap_bytes + s.unmapped_bytes;
  p.free_bytes_full = s.free_bytes + s.unmapped_bytes;
  p.unmapped_bytes = s.unmapped_bytes;
  p.bytes_allocd_since_gc = s.bytes_since_gc;
  p.allocd_bytes_before_gc = s.total_bytes - s.bytes_since_gc;
  p.non_gc_bytes = GC_get_non_gc_bytes();
  p.gc_no = GC_gc_no;
  p.markers_m1 = s.markers ? s.markers - 1 : 0;
  // Reclaimed: everything allocated before the last collection that it did not find live.
  p.bytes_reclaimed_since_gc = 0;
  p.reclaimed_bytes_before_gc =
      p.allocd_bytes_before_gc > s.live_bytes ? p.allocd_bytes_before_gc - s.live_bytes : 0;
  p.expl_freed_bytes_since_gc = freed;
  p.obtained_from_os_bytes = p.heapsize_full;
  size_t n = size < sizeof p ? size : sizeof p;
  memcpy(out, &p, n);
  if (size > sizeof p) memset(reinterpret_cast<char *>(out) + sizeof p, 0xff, size - sizeof p);  // unknown: -1
  return n;
}

size_t GC_get_prof_stats(struct GC_prof_stats_s *out, size_t size) {
  ensure_init();
  dunegc_stats s;
  s.struct_size = sizeof s;
  dunegc_get_stats(&s);
  return fill_prof_stats(out, size, s, C().unlocked_counters().freed_since_gc);
}

// The caller holds the lock (GC_call_with_alloc_lock): only unsynchronised figures.
size_t GC_get_prof_stats_unsafe(struct GC_prof_stats_s *out, size_t size) {
  ensure_init();
  dunegc::gc::UnlockedCounters c = C().unlocked_counters();
  dunegc_stats s = {};
  s.heap_bytes = c.heap_bytes;
  size_t used = c.live_bytes + c.bytes_since_gc;
  s.free_bytes = c.heap_bytes > used ? c.heap_bytes - used : 0;
  s.bytes_since_gc = c.bytes_since_gc;
  s.total_bytes = c.total_bytes;
  s.live_bytes = c.live_bytes;
  s.markers = unsigned(GC_parallel + 1);
  return fill_prof_stats(out, size, s, c.freed_since_gc);
}

int GC_expand_hp(size_t bytes) {
  ensure_init();
  return dunegc_expand_heap(bytes) == 0;
}

// Boehm accepts any size; dunegc's smallest limit is 1 MiB (a smaller one is raised).
void GC_set_max_heap_size(GC_word n) {
  const GC_word kMin = GC_word(1) << 20;
  if (n && n < kMin) {
    warn("GC_set_max_heap_size(%lu): dunegc's smallest heap limit is 1 MiB; using that", n);
    n = kMin;
  }
  dunegc_set_max_heap(size_t(n));
}

// ---------------------------------------------------------------- roots

void GC_add_roots(void *lo, void *hi) {
  ensure_init();
  dunegc_add_roots(lo, hi);
}
void GC_remove_roots(void *lo, void *hi) {
  ensure_init();
  dunegc_remove_roots(lo, hi);
}
void GC_clear_roots(void) {
  ensure_init();
  dunegc_clear_roots();
}
void GC_exclude_static_roots(void *lo, void *hi) {
  ensure_init();
  C().exclude_roots(reinterpret_cast<uintptr_t>(lo), reinterpret_cast<uintptr_t>(hi));
}
void GC_clear_exclusion_table(void) {
  ensure_init();
  C().clear_exclusions();
}
void GC_register_has_static_roots_callback(GC_has_static_roots_func fn) {
  ensure_init();
  C().set_segment_filter(fn);
}

// With interior pointers recognised (the default) every displacement is valid already,
// and Boehm documents this as a no-op; without them dunegc has no displacement table.
void GC_register_displacement(size_t n) {
  if (n && !GC_get_all_interior_pointers())
    warn("GC_register_displacement(%zu): dunegc recognises object starts only when interior pointers are off; "
         "pointers at that offset will not keep objects alive",
         n);
}
void GC_debug_register_displacement(size_t n) { GC_register_displacement(n); }

}  // extern "C"
