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
  bool auto_collect = true;  // false: collect only when asked, or at the heap limit
  unsigned max_retries = 0;  // extra collections at the heap limit before out of memory
};

// What an API layer over the collector can plug in (the Boehm-compatible one, gc/bdw,
// does). All optional; set before or right after init.
struct Hooks {
  // Collection is disabled while *disable_count > 0 (a counter the layer owns, e.g.
  // Boehm's GC_dont_gc, which programs may assign directly), as with dunegc_disable().
  const int *disable_count = nullptr;
  // finalize_on_demand: a collection queued finalizers (called once, without the lock).
  void (*finalizers_ready)() = nullptr;
  // The committed heap grew or shrank (lock held).
  void (*heap_resized)(size_t committed_bytes) = nullptr;
  // An object was queued for finalization (lock held, world stopped).
  void (*finalizer_queued)(void *obj) = nullptr;
};

// Counters read without the lock, for getters that may be called with it held (Boehm's
// unsynchronised GC_get_heap_size and friends are called from collection callbacks).
struct UnlockedCounters {
  size_t heap_bytes, live_bytes;
  uint64_t bytes_since_gc, total_bytes, freed_since_gc;
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
  Hooks hooks;

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
  int exclude_roots(uintptr_t lo, uintptr_t hi);  // [lo, hi) holds no heap pointers
  void clear_exclusions();
  void set_segment_filter(SegmentFilter f);
  // Whether p lies in a root range: a registered thread's stack, a data segment scanned,
  // an added range (minus exclusions). For debugging checks (Boehm's GC_is_visible).
  bool in_roots(uintptr_t p);
  int register_thread(uintptr_t stack_base);
  int unregister_thread();

  // --- collection ---
  // Explicit: collects, then runs finalizers unless on demand. With `unmap`, every free
  // span goes back to the kernel too. Returns whether a collection ran (not disabled).
  bool collect(bool unmap = false);
  int collect_a_little(unsigned spans = 8);  // lazily sweeps up to `spans` spans, or collects if due
  void disable() { disabled_.fetch_add(1); }
  void enable() { disabled_.fetch_sub(1); }
  int disabled() const {
    return disabled_.load(std::memory_order_relaxed) +
           (hooks.disable_count ? __atomic_load_n(hooks.disable_count, __ATOMIC_RELAXED) : 0);
  }
  // Stops every other registered thread and holds the lock until start_world_external().
  void stop_world_external();
  void start_world_external();
  UnlockedCounters unlocked_counters() const;

  // --- finalization ---
  int register_finalizer(void *obj, dunegc_finalizer fn, void *data, int order, dunegc_finalizer *old_fn,
                         void **old_data);
  int invoke_finalizers();
  size_t pending_finalizers();
  struct FinalizationCounts {
    size_t registered, pending, links, long_links;
  };
  FinalizationCounts finalization_counts();
  // order: a dunegc_finalize_order or kFinalizeUnreachable.
  int register_link(void **link, const void *obj, bool long_link = false);
  int unregister_link(void **link, bool long_link = false);
  int move_link(void **link, void **new_link, bool long_link);  // 0, DUNEGC_DUPLICATE, -ENOENT, -ENOMEM
  // Queues every registered finalizer, reachable or not, and runs them until none is left.
  void finalize_all();

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
  bool should_collect() const { return settings.auto_collect && disabled() == 0 && allocd_since_gc_ >= trigger_; }
  bool may_collect_at_limit(unsigned done) const { return done <= settings.max_retries && disabled() == 0 && !collecting_; }
  void note_heap_size();
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
  std::atomic<uint64_t> freed_since_gc_{0};  // bytes freed explicitly since the last collection
  size_t reported_heap_ = 0;                  // committed bytes last given to hooks.heap_resized
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
