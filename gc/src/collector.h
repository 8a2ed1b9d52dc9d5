// Collector: the process's one collector -- settings, the lock, allocation slow paths,
// threads, and the stop-the-world collection that ties the parts together.
//
// Locking: one mutex (lock_) guards every slow path, the registries and the tables; a
// collection runs with it held, so no mutator is inside the allocator's slow paths while
// the world is stopped, and the collector itself never calls malloc (a stopped thread
// may hold malloc's lock). The allocation fast path (api.cc) takes no lock: it pops the
// calling thread's own free list, which only the collector touches, with that thread
// stopped.
#pragma once

#include <pthread.h>

#include <atomic>

#include "dunegc/dunegc.h"
#include "finalize.h"
#include "gc_heap.h"
#include "mark.h"
#include "roots.h"
#include "stats.h"
#include "stop_world.h"
#include "threads.h"

namespace dunegc::gc {

struct Settings {
  size_t initial_heap = 0;
  size_t max_heap = 0;
  size_t reserve = 0;
  unsigned markers = 0;  // 0: online CPUs
  double growth = 1.0;
  size_t min_trigger = size_t{4} << 20;
  size_t mark_stack_entries = size_t{1} << 18;
  bool interior = true;
  bool scan_dls = true;
  bool java_finalization = true;
  bool finalize_on_demand = false;
  bool verify = false;
  bool print_stats = false;
};

class Collector {
 public:
  static Collector &get();

  // --- settings and life cycle ---
  Settings settings;  // guarded by lock_ once initialised
  bool initialized() const { return initialized_.load(std::memory_order_acquire); }
  int init(const dunegc_options *opt);
  int ensure_init() { return initialized() ? 0 : init_implicit(); }
  void lock() { pthread_mutex_lock(&lock_); }
  void unlock() { pthread_mutex_unlock(&lock_); }
  int set_max_heap(size_t bytes);
  int expand_heap(size_t bytes);

  // --- allocation slow paths (n: bytes the slot must hold) ---
  void *alloc_small(size_t n, Kind kind, const Layout *layout);
  void *alloc_large(size_t n, Kind kind, uint8_t flags, const Layout *layout);
  void *alloc_uncollectable(size_t n);
  void *alloc_many(size_t n);
  int free_object(void *p);
  void *reallocate(void *p, size_t n);
  const Layout *make_bitmap_layout(const uint64_t *bits, size_t nwords);
  const Layout *make_trace_layout(dunegc_trace_fn fn);
  GcHeap &heap() { return heap_; }

  // --- roots, threads ---
  int add_roots(uintptr_t lo, uintptr_t hi);
  int remove_roots(uintptr_t lo, uintptr_t hi);
  void clear_roots();
  int register_thread(uintptr_t stack_base);
  int unregister_thread();

  // --- collection ---
  void collect();  // explicit: collects, then runs finalizers unless on demand
  int collect_a_little();
  void disable() { disabled_.fetch_add(1); }
  void enable() { disabled_.fetch_sub(1); }

  // --- finalization ---
  int register_finalizer(void *obj, dunegc_finalizer fn, void *data, int order, dunegc_finalizer *old_fn,
                         void **old_data);
  int invoke_finalizers();
  size_t pending_finalizers();
  int register_link(void **link, const void *obj);
  int unregister_link(void **link);

  // --- callbacks and statistics ---
  std::atomic<dunegc_oom_fn> oom_fn{nullptr};
  std::atomic<dunegc_event_fn> event_fn{nullptr};
  void get_stats(dunegc_stats *out);

 private:
  Collector() = default;
  int init_implicit();
  void collect_locked();
  void collect_world(uintptr_t own_sp);
  void scan_roots(ThreadRecord *self, uintptr_t own_sp);
  void event(dunegc_event e) {
    if (dunegc_event_fn fn = event_fn.load(std::memory_order_acquire)) fn(e);
  }
  bool should_collect() const { return disabled_.load(std::memory_order_relaxed) == 0 && allocd_since_gc_ >= trigger_; }
  void *out_of_memory(size_t bytes);
  void after_allocation(bool collected);
  ThreadRecord *cache_owner(bool *shared);
  static void thread_gone(ThreadRecord *r);
  void after_fork_in_child();
  static void thread_exit_hook(void *rec);

  pthread_mutex_t lock_ = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;
  std::atomic<bool> initialized_{false};
  GcHeap heap_;
  Marker marker_;
  RootSet roots_;
  Finalization fin_;
  ThreadRegistry threads_;
  ThreadRecord shared_;  // the allocation buffers of unregistered threads (under lock_)
  WorldStopper *stopper_ = nullptr;
  Stats stats_;
  pthread_key_t exit_key_{};
  std::atomic<int> disabled_{0};
  std::atomic<size_t> finalizers_registered_{0};
  std::atomic<uint64_t> explicit_frees_{0};
  bool collecting_ = false;
  bool warned_unregistered_ = false;
  uint64_t allocd_since_gc_ = 0, total_allocd_ = 0;
  uint64_t trigger_ = 0;
  size_t live_bytes_ = 0;
};

// Heap verifier: every object a root or a marked object points to is marked. Aborts with a
// message naming the unmarked object and where the pointer was found.
// Objects in `shallow` (sorted) are marked without their children on purpose
// (see Finalization::kept_shallow()); their contents are not checked.
void verify_marks(GcHeap &heap, const MetaVector<Range> &roots, bool interior, const MetaVector<uintptr_t> &shallow);

}  // namespace dunegc::gc
