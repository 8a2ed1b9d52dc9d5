// Boehm's setters and getters. A setter writes the public variable (the one place the
// setting lives, see bdw.h) and applies it; settings that only matter in Boehm's
// incremental mode are kept and returned (dunegc never enters that mode, so they have, as
// Boehm documents for a non-incremental collector, no effect); settings dunegc cannot
// honour warn.
#include <signal.h>

#include <cerrno>

#include "bdw.h"

using namespace dunegc::bdw;
using dunegc::gc::warn;

namespace {

std::atomic<GC_on_thread_event_proc> g_thread_event{nullptr};
std::atomic<unsigned long> g_time_limit_ns{0};  // GC_set_time_limit_tv's nanoseconds
std::atomic<GC_word> g_allocd_bytes_per_finalizer{10000};
std::atomic<int> g_manual_vdb{0}, g_max_prior_attempts{1}, g_rate{10}, g_force_unmap{0};
std::atomic<int> g_handle_fork{1};

int GC_CALLBACK dont_stop(void) { return 0; }

}  // namespace

namespace dunegc::bdw {
std::atomic<GC_stop_func> g_stop_func{dont_stop};
int force_unmap_on_gcollect() { return g_force_unmap.load(std::memory_order_relaxed); }
int collect_a_little_rate() { return g_rate.load(std::memory_order_relaxed); }
}  // namespace dunegc::bdw

extern "C" {

void GC_set_find_leak(int on) {
  GC_find_leak = on;
  apply_variables();
}
int GC_get_find_leak(void) { return GC_find_leak; }

void GC_set_all_interior_pointers(int on) {
  on = on != 0;
  if (!GC_is_init_called()) {
    GC_all_interior_pointers = on;  // GC_init applies it
    return;
  }
  if (on != dunegc_get_all_interior_pointers())
    warn("GC_set_all_interior_pointers(%d): dunegc fixes interior-pointer recognition at GC_init; it stays %d", on,
         dunegc_get_all_interior_pointers());
}
int GC_get_all_interior_pointers(void) {
  return GC_is_init_called() ? dunegc_get_all_interior_pointers() : GC_all_interior_pointers;
}

void GC_set_finalize_on_demand(int on) {
  GC_finalize_on_demand = on;
  apply_variables();
}
int GC_get_finalize_on_demand(void) { return GC_finalize_on_demand; }

void GC_set_java_finalization(int on) {
  GC_java_finalization = on;
  apply_variables();
}
int GC_get_java_finalization(void) { return GC_java_finalization; }

void GC_set_finalizer_notifier(GC_finalizer_notifier_proc fn) { __atomic_store_n(&GC_finalizer_notifier, fn, __ATOMIC_RELEASE); }
GC_finalizer_notifier_proc GC_get_finalizer_notifier(void) { return __atomic_load_n(&GC_finalizer_notifier, __ATOMIC_ACQUIRE); }

void GC_set_dont_expand(int on) {
  GC_dont_expand = on;
  apply_variables();
}
int GC_get_dont_expand(void) { return GC_dont_expand; }

void GC_set_full_freq(int n) { GC_full_freq = n; }  // partial collections: incremental mode only
int GC_get_full_freq(void) { return GC_full_freq; }

void GC_set_non_gc_bytes(GC_word n) {
  GC_non_gc_bytes = n;
  warn("GC_set_non_gc_bytes: dunegc schedules collections by its own count of uncollectable bytes; ignored");
}
// What dunegc counts instead: the bytes of uncollectable objects (unsynchronised, as in Boehm).
GC_word GC_get_non_gc_bytes(void) { return GC_is_init_called() ? GC_word(C().heap().uncollectable_bytes()) : 0; }

void GC_set_no_dls(int on) {
  GC_no_dls = on;
  apply_variables();
}
int GC_get_no_dls(void) { return GC_no_dls; }

void GC_set_free_space_divisor(GC_word d) {
  if (d == 0) {
    warn("GC_set_free_space_divisor(0): the divisor must be positive; keeping %lu", GC_free_space_divisor);
    return;
  }
  GC_free_space_divisor = d;
  apply_variables();
}
GC_word GC_get_free_space_divisor(void) { return GC_free_space_divisor; }

void GC_set_max_retries(GC_word n) {
  GC_max_retries = n;
  apply_variables();
}
GC_word GC_get_max_retries(void) { return GC_max_retries; }

void GC_set_dont_precollect(int on) { GC_dont_precollect = on; }  // dunegc never collects in GC_init
int GC_get_dont_precollect(void) { return GC_dont_precollect; }

// Time limits bound incremental marking steps: kept, never used (stop-the-world only).
void GC_set_time_limit(unsigned long ms) { GC_time_limit = ms; }
unsigned long GC_get_time_limit(void) { return GC_time_limit; }
void GC_set_time_limit_tv(struct GC_timeval_s tv) {
  GC_time_limit = tv.tv_ms;
  g_time_limit_ns.store(tv.tv_nsec, std::memory_order_relaxed);
}
struct GC_timeval_s GC_get_time_limit_tv(void) {
  return {GC_time_limit, GC_time_limit == GC_TIME_UNLIMITED ? 0 : g_time_limit_ns.load(std::memory_order_relaxed)};
}
void GC_set_max_prior_attempts(int n) { g_max_prior_attempts.store(n, std::memory_order_relaxed); }
int GC_get_max_prior_attempts(void) { return g_max_prior_attempts.load(std::memory_order_relaxed); }
void GC_set_manual_vdb_allowed(int on) { g_manual_vdb.store(on, std::memory_order_relaxed); }
int GC_get_manual_vdb_allowed(void) { return g_manual_vdb.load(std::memory_order_relaxed); }

void GC_set_allocd_bytes_per_finalizer(GC_word n) {
  g_allocd_bytes_per_finalizer.store(n, std::memory_order_relaxed);
  if (n != 10000)
    warn("GC_set_allocd_bytes_per_finalizer(%lu): dunegc's collection trigger does not count finalizers; ignored",
         n);
}
GC_word GC_get_allocd_bytes_per_finalizer(void) { return g_allocd_bytes_per_finalizer.load(std::memory_order_relaxed); }

void GC_set_pages_executable(int on) {
  if (on) warn("GC_set_pages_executable(1): dunegc's heap is never executable");
}
int GC_get_pages_executable(void) { return 0; }

void GC_set_min_bytes_allocd(size_t n) {
  ensure_init();
  C().lock();
  C().settings.min_trigger = n ? n : 1;
  C().unlock();
}
size_t GC_get_min_bytes_allocd(void) { return C().settings.min_trigger; }

void GC_set_rate(int n) {
  if (n <= 0) {
    warn("GC_set_rate(%d): the rate must be positive; keeping %d", n, g_rate.load());
    return;
  }
  g_rate.store(n, std::memory_order_relaxed);
}
int GC_get_rate(void) { return g_rate.load(std::memory_order_relaxed); }

void GC_set_disable_automatic_collection(int on) {
  ensure_init();
  C().lock();
  C().settings.auto_collect = !on;
  C().unlock();
}
int GC_get_disable_automatic_collection(void) { return !C().settings.auto_collect; }

void GC_set_force_unmap_on_gcollect(int on) { g_force_unmap.store(on, std::memory_order_relaxed); }
int GC_get_force_unmap_on_gcollect(void) { return g_force_unmap.load(std::memory_order_relaxed); }

void GC_set_stop_func(GC_stop_func fn) {
  if (!fn) {
    warn("GC_set_stop_func(NULL): a stop function must not be NULL; keeping the current one");
    return;
  }
  g_stop_func.store(fn, std::memory_order_release);
  if (fn != dont_stop)
    BDW_WARN_ONCE("GC_set_stop_func: dunegc consults it before explicit collections only; automatic ones "
                  "cannot be abandoned once started");
}
GC_stop_func GC_get_stop_func(void) { return g_stop_func.load(std::memory_order_acquire); }

// dunegc installs its fork handlers at init whatever the mode, so the child is always
// consistent; the manual hooks are then no-ops, as Boehm documents for that case.
void GC_set_handle_fork(int mode) { g_handle_fork.store(mode, std::memory_order_relaxed); }
void GC_atfork_prepare(void) {}
void GC_atfork_parent(void) {}
void GC_atfork_child(void) {}

void GC_set_markers_count(unsigned n) {
  if (!GC_is_init_called()) dunegc_set_markers(n);  // after init: no effect, as in Boehm
}
int GC_get_parallel(void) { return GC_parallel; }
void GC_start_mark_threads(void) { ensure_init(); }  // helpers start at the first parallel mark

void GC_set_on_heap_resize(GC_on_heap_resize_proc fn) { __atomic_store_n(&GC_on_heap_resize, fn, __ATOMIC_RELEASE); }
GC_on_heap_resize_proc GC_get_on_heap_resize(void) { return __atomic_load_n(&GC_on_heap_resize, __ATOMIC_ACQUIRE); }

void GC_set_on_thread_event(GC_on_thread_event_proc fn) {
  if (fn) warn("GC_set_on_thread_event: dunegc reports no per-thread suspend/resume events; the proc is never called");
  g_thread_event.store(fn, std::memory_order_release);
}
GC_on_thread_event_proc GC_get_on_thread_event(void) { return g_thread_event.load(std::memory_order_acquire); }

// dunegc stops threads with SIGPWR and resumes them through a futex, with no signal.
void GC_set_suspend_signal(int sig) {
  if (sig != SIGPWR) warn("GC_set_suspend_signal(%d): dunegc always stops threads with SIGPWR (%d)", sig, SIGPWR);
}
int GC_get_suspend_signal(void) { return SIGPWR; }
void GC_set_thr_restart_signal(int sig) {
  warn("GC_set_thr_restart_signal(%d): dunegc resumes stopped threads without a signal", sig);
}
int GC_get_thr_restart_signal(void) { return -1; }

}  // extern "C"
