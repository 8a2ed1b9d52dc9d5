#include "collector.h"

#include <sched.h>
#include <setjmp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "env.h"
#include "report.h"
#include "scan.h"

namespace dunegc::gc {

namespace {

unsigned online_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return unsigned(CPU_COUNT(&set));
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? unsigned(n) : 1;
}

void print_stats_at_exit() { dunegc_print_stats(STDERR_FILENO); }

}  // namespace

Collector &Collector::get() {
  // Constructed on first use and never destroyed: threads may allocate while the process
  // exits, and static constructors of other objects may allocate before ours would run.
  // It lives in metadata memory, not in our bss: the bss is scanned as a root, and the
  // collector's fields hold heap addresses (the heap's base, span starts) that would
  // otherwise pin objects.
  static Collector *c = [] {
    void *mem = ChunkProvider::map_metadata(sizeof(Collector));
    if (!mem) fatal("cannot map %zu bytes for the collector's state", sizeof(Collector));
    auto *col = new (mem) Collector();
    Settings &s = col->settings;
    if (size_t m = env_size("DUNEGC_MAX_HEAP")) s.max_heap = m;
    if (const char *m = getenv("DUNEGC_MARKERS")) s.markers = unsigned(atoi(m));
    s.verify = env_flag("DUNEGC_VERIFY");
    s.print_stats = env_flag("DUNEGC_STATS");
    return col;
  }();
  return *c;
}

int Collector::init_implicit() {
  int rc = init(nullptr);
  return rc == -EALREADY ? 0 : rc;
}

int Collector::init(const dunegc_options *opt) {
  lock();
  if (initialized()) {
    unlock();
    return fail(-EALREADY, "dunegc_init: already initialised");
  }
  Settings s = settings;
  if (opt) {
    if (opt->struct_size && opt->struct_size < offsetof(dunegc_options, paging_backend)) {
      unlock();
      return fail(-EINVAL, "dunegc_init: options.struct_size %zu is too small (%zu expected)", opt->struct_size,
                  sizeof(dunegc_options));
    }
    if (opt->paging_backend && strcmp(opt->paging_backend, "none") != 0) {
      unlock();
      return fail(-ENOTSUP, "dunegc_init: paging backend \"%s\" requested, but paging backends are not yet "
                            "supported by the collector (use NULL or \"none\")", opt->paging_backend);
    }
    if (opt->concurrent) {
      unlock();
      return fail(-ENOTSUP, "dunegc_init: concurrent marking is not implemented yet (options.concurrent must be 0)");
    }
    if (opt->compaction) {
      unlock();
      return fail(-ENOTSUP, "dunegc_init: compaction is not implemented yet (options.compaction must be 0)");
    }
    if (opt->initial_heap_bytes) s.initial_heap = opt->initial_heap_bytes;
    if (opt->max_heap_bytes) s.max_heap = opt->max_heap_bytes;
    if (opt->reserve_bytes) s.reserve = opt->reserve_bytes;
    if (opt->markers) s.markers = opt->markers;
    if (opt->growth != 0) s.growth = opt->growth;
    if (opt->min_trigger_bytes) s.min_trigger = opt->min_trigger_bytes;
    if (opt->mark_stack_entries) s.mark_stack_entries = opt->mark_stack_entries;
    if (opt->all_interior_pointers >= 0) s.interior = opt->all_interior_pointers != 0;
    if (opt->scan_dynamic_libraries >= 0) s.scan_dls = opt->scan_dynamic_libraries != 0;
    if (opt->java_finalization >= 0) s.java_finalization = opt->java_finalization != 0;
    if (opt->finalize_on_demand >= 0) s.finalize_on_demand = opt->finalize_on_demand != 0;
    if (opt->verify >= 0) s.verify = s.verify || opt->verify != 0;
  }
  const char *bad = nullptr;
  if (!(s.growth > 0 && s.growth <= 1000)) bad = "growth must be in (0, 1000]";
  else if (s.markers > Marker::kMaxMarkers) bad = "markers must be at most 64";
  else if (s.max_heap && s.max_heap < (size_t{1} << 20)) bad = "max heap must be at least 1 MiB";
  else if (s.max_heap && s.initial_heap > s.max_heap) bad = "initial heap exceeds the max heap";
  else if (s.mark_stack_entries < 64) bad = "mark stack must hold at least 64 entries";
  if (bad) {
    unlock();
    return fail(-EINVAL, "dunegc_init: %s", bad);
  }
  if (!s.markers) s.markers = online_cpus();
  if (!s.reserve) s.reserve = s.max_heap > (size_t{16} << 30) ? 2 * s.max_heap : size_t{32} << 30;
  settings = s;

  GcHeap::Config hc{s.reserve, s.max_heap, s.initial_heap, s.verify};
  int rc = heap_.init(hc);
  if (rc == 0) rc = marker_.init(&heap_, Marker::Config{s.markers, s.mark_stack_entries});
  if (rc == 0) {
    stopper_ = signal_world_stopper();
    rc = stopper_->init();
  }
  if (rc == 0) rc = -pthread_key_create(&exit_key_, &Collector::thread_exit_hook);
  if (rc != 0) {
    unlock();
    return fail(rc, "dunegc_init: cannot set up the heap: %s", strerror(-rc));
  }
  shared_.shared = true;
  trigger_ = s.min_trigger;
  // fork(): hold the lock across it so the child never inherits it taken mid-operation;
  // in the child only the forking thread exists, and no marker helper.
  pthread_atfork([] { get().lock(); }, [] { get().unlock(); }, [] { get().after_fork_in_child(); });
  initialized_.store(true, std::memory_order_release);
  unlock();
  if (s.print_stats) atexit(&print_stats_at_exit);
  register_thread(0);  // the initialising thread, as Boehm's GC_init does
  return 0;
}

int Collector::set_max_heap(size_t bytes) {
  if (bytes && bytes < (size_t{1} << 20)) return fail(-EINVAL, "max heap %zu bytes: must be 0 or at least 1 MiB", bytes);
  lock();
  settings.max_heap = bytes;
  if (initialized()) heap_.pages().set_limit(bytes);
  unlock();
  return 0;
}

int Collector::expand_heap(size_t bytes) {
  if (int rc = ensure_init(); rc != 0) return rc;
  lock();
  int rc = heap_.pages().expand(bytes);
  note_heap_size();
  unlock();
  if (rc != 0) return fail(rc, "expanding the heap by %zu bytes: %s", bytes, rc == -ENOMEM ? "the max heap size forbids it" : strerror(-rc));
  return 0;
}

// --- allocation -------------------------------------------------------------------

ThreadRecord *Collector::cache_owner(bool *shared) {
  ThreadRecord *t = t_self;
  *shared = t == nullptr;
  if (t) return t;
  if (!warned_unregistered_) {
    warned_unregistered_ = true;
    warn("allocation from a thread that is not registered: its stack is not scanned, so it must not "
         "hold the only pointer to an object (use dunegc_pthread_create or dunegc_register_thread)");
  }
  return &shared_;
}

void *Collector::out_of_memory(size_t bytes) {
  if (dunegc_oom_fn fn = oom_fn.load(std::memory_order_acquire)) return fn(bytes);
  const char *why = heap_.pages().last_failure() == allocators::PageHeap::Failure::kReservation
                        ? "the address-space reservation is exhausted"
                        : heap_.pages().last_failure() == allocators::PageHeap::Failure::kSystem ? "the kernel refused memory"
                                                                                            : "the max heap size is reached";
  warn("out of memory allocating %zu bytes: %s (heap %zu bytes, max %zu)", bytes, why,
       heap_.pages().committed_bytes(), settings.max_heap);
  errno = ENOMEM;
  return nullptr;
}

void Collector::after_allocation(bool collected) {
  if (!collected || !fin_.pending()) return;
  if (settings.finalize_on_demand) {
    if (hooks.finalizers_ready) hooks.finalizers_ready();
    return;
  }
  ThreadRecord *t = t_self;
  if (t && !t->in_finalizers) invoke_finalizers();
}

void *Collector::alloc_small(size_t n, Kind kind, const Layout *layout) {
  if (int rc = ensure_init(); rc != 0) return nullptr;
  unsigned cls = allocators::size_to_class(n);
  size_t size = allocators::class_size(cls);
  bool shared;
  lock();
  ThreadRecord *t = cache_owner(&shared);
  void **list = &t->cache.lists[kind][cls];
  bool collected = false;
  unsigned at_limit = 0;  // collections because the heap was full
  if (!*list) {
    for (;;) {
      if (should_collect() && !collecting_) {
        collect_locked();
        collected = true;
        at_limit++;  // counts against the retries: the heap may be full right after it
      }
      unsigned nfree = 0;
      uint64_t t0 = now_ns();
      void *head = heap_.refill(kind, cls, &nfree);
      stats_.add_lazy_sweep(now_ns() - t0);
      if (head) {
        allocd_since_gc_ += uint64_t(nfree) * size;
        total_allocd_ += uint64_t(nfree) * size;
        *list = head;
        note_heap_size();
        break;
      }
      if (may_collect_at_limit(at_limit)) {
        collect_locked();  // the heap is at its limit: collect before giving up
        collected = true;
        at_limit++;
        continue;
      }
      unlock();
      return out_of_memory(n);
    }
  }
  void *p = *list;
  *list = *static_cast<void **>(p);
  if (kind != kAtomic) *static_cast<void **>(p) = nullptr;
  if (kind == kTyped) *reinterpret_cast<const Layout **>(static_cast<char *>(p) + size - sizeof(void *)) = layout;
  unlock();
  after_allocation(collected);
  return p;
}

void *Collector::alloc_large(size_t n, Kind kind, uint8_t flags, const Layout *layout) {
  if (int rc = ensure_init(); rc != 0) return nullptr;
  lock();
  bool collected = false;
  unsigned at_limit = 0;
  Span *s;
  for (;;) {
    if (settings.auto_collect && disabled() == 0 && !collecting_ && allocd_since_gc_ + n >= trigger_) {
      collect_locked();
      collected = true;
      at_limit++;
    }
    s = heap_.alloc_large(n, kind, flags, layout);
    if (s) break;
    if (may_collect_at_limit(at_limit)) {
      collect_locked();
      collected = true;
      at_limit++;
      continue;
    }
    unlock();
    return out_of_memory(n);
  }
  note_heap_size();
  allocd_since_gc_ += n;
  total_allocd_ += n;
  // The object's address, not the span: only a pointer into the object keeps it alive
  // once the lock is released (the span descriptor is invisible to the scan).
  void *p = reinterpret_cast<void *>(s->start);
  unlock();
  after_allocation(collected);
  return p;
}

void *Collector::alloc_uncollectable(size_t n) {
  if (n > kMaxSmallSize) return alloc_large(n, kUncollectable, 0, nullptr);
  if (int rc = ensure_init(); rc != 0) return nullptr;
  unsigned cls = allocators::size_to_class(n);
  lock();
  bool collected = false;
  unsigned at_limit = 0;
  void *p;
  while (!(p = heap_.alloc_uncollectable(cls))) {
    if (!may_collect_at_limit(at_limit)) {
      unlock();
      return out_of_memory(n);
    }
    collect_locked();
    collected = true;
    at_limit++;
  }
  note_heap_size();
  allocd_since_gc_ += allocators::class_size(cls);
  total_allocd_ += allocators::class_size(cls);
  unlock();
  after_allocation(collected);
  return p;
}

void *Collector::alloc_many(size_t n) {
  if (n > kMaxSmallSize) return alloc_large(n, kNormal, 0, nullptr);
  void *first = alloc_small(n, kNormal, nullptr);  // refills the cache if it was empty
  if (!first) return nullptr;
  bool shared;
  lock();
  ThreadRecord *t = cache_owner(&shared);
  void **list = &t->cache.lists[kNormal][allocators::size_to_class(n)];
  *static_cast<void **>(first) = *list;  // hand over the rest of the free list too
  *list = nullptr;
  unlock();
  return first;
}

int Collector::free_object(void *p) {
  if (!p) return 0;
  if (!initialized()) return fail(-EINVAL, "dunegc_free(%p): the collector is not initialised", p);
  ObjRef r;
  if (!heap_.resolve(reinterpret_cast<uintptr_t>(p), false, &r))
    return fail(-EINVAL, "dunegc_free(%p): not the start of a heap object", p);
  Span *s = r.span;
  if (finalizers_registered_.load(std::memory_order_relaxed)) {
    lock();
    fin_.forget(r.base);
    finalizers_registered_.store(fin_.registered(), std::memory_order_relaxed);
    unlock();
  }
  explicit_frees_.fetch_add(1, std::memory_order_relaxed);
  freed_since_gc_.fetch_add(s->size, std::memory_order_relaxed);
  if (s->state == SpanState::kLarge) {
    lock();
    heap_.free_large(s);
    unlock();
    return 0;
  }
  if (s->kind == kUncollectable) {
    lock();
    bool allocated = s->test_bit(r.index);
    if (allocated) heap_.free_uncollectable(r);
    unlock();
    return allocated ? 0 : fail(-EINVAL, "dunegc_free(%p): uncollectable object already freed", p);
  }
  // Small collectable object: straight onto this thread's free list, zeroed as the
  // allocation fast path expects.
  if (s->kind != kAtomic) memset(p, 0, s->size);
  ThreadRecord *t = t_self;
  if (t) {
    void **list = &t->cache.lists[s->kind][s->cls];
    *static_cast<void **>(p) = *list;
    *list = p;
    return 0;
  }
  lock();
  void **list = &shared_.cache.lists[s->kind][s->cls];
  *static_cast<void **>(p) = *list;
  *list = p;
  unlock();
  return 0;
}

void *Collector::reallocate(void *p, size_t n) {
  if (!p) return dunegc_malloc(n);
  ObjRef r;
  if (!initialized() || !heap_.resolve(reinterpret_cast<uintptr_t>(p), false, &r)) {
    fail(-EINVAL, "dunegc_realloc(%p): not the start of a heap object", p);
    return nullptr;
  }
  if (n == 0) {
    free_object(p);
    return nullptr;
  }
  Kind kind = Kind(r.span->kind);
  size_t have = GcHeap::usable_size(r);
  const Layout *layout = kind == kTyped ? GcHeap::layout_of(r) : nullptr;
  bool fits = n <= have && (n >= have / 2 || have <= allocators::kGranule) &&
              !(layout && layout->type == Layout::kBitmap && n < size_t(layout->nwords) * 8);
  if (fits) {
    // Shrinking in place: clear the tail so stale words there retain nothing.
    if (kind != kAtomic) memset(static_cast<char *>(p) + n, 0, have - n);
    return p;
  }
  void *q;
  bool off_page = r.span->client_flags & kIgnoreOffPage;
  switch (kind) {
    case kAtomic: q = off_page ? dunegc_malloc_atomic_ignore_off_page(n) : dunegc_malloc_atomic(n); break;
    case kTyped: q = dunegc_malloc_typed(n, layout); break;
    case kUncollectable: q = dunegc_malloc_uncollectable(n); break;
    default: q = off_page ? dunegc_malloc_ignore_off_page(n) : dunegc_malloc(n); break;
  }
  if (!q) return nullptr;
  memcpy(q, p, n < have ? n : have);
  free_object(p);
  return q;
}

const Layout *Collector::make_bitmap_layout(const uint64_t *bits, size_t nwords) {
  if (!bits || nwords == 0 || nwords > kMaxLayoutWords) {
    fail(-EINVAL, "dunegc_layout_bitmap: %s", !bits ? "no bitmap" : "nwords must be in 1..1048576");
    return nullptr;
  }
  lock();
  const Layout *l = intern_bitmap_layout(bits, nwords);
  unlock();
  if (!l) fail(-ENOMEM, "dunegc_layout_bitmap: out of metadata memory");
  return l;
}

const Layout *Collector::make_trace_layout(dunegc_trace_fn fn) {
  if (!fn) {
    fail(-EINVAL, "dunegc_layout_trace: no trace function");
    return nullptr;
  }
  lock();
  const Layout *l = intern_trace_layout(fn);
  unlock();
  if (!l) fail(-ENOMEM, "dunegc_layout_trace: out of metadata memory");
  return l;
}

// --- collection -------------------------------------------------------------------

bool Collector::collect(bool unmap) {
  if (ensure_init() != 0) return false;
  lock();
  bool ran = !collecting_ && disabled() == 0;
  if (ran) collect_locked();
  if (ran && unmap) {
    heap_.pages().decommit_idle(0);
    note_heap_size();
  }
  unlock();
  after_allocation(ran);
  return ran;
}

void Collector::stop_world_external() {
  if (ensure_init() != 0) return;
  lock();
  stopper_->stop(threads_, t_self, &Collector::thread_gone);
}

void Collector::start_world_external() {
  stopper_->start(threads_, t_self);
  unlock();
}

void Collector::note_heap_size() {
  size_t now = heap_.pages().committed_bytes();
  if (now == reported_heap_) return;
  reported_heap_ = now;
  if (hooks.heap_resized) hooks.heap_resized(now);
}

UnlockedCounters Collector::unlocked_counters() const {
  UnlockedCounters c;
  c.heap_bytes = heap_.pages().committed_bytes();
  c.live_bytes = __atomic_load_n(&live_bytes_, __ATOMIC_RELAXED);
  c.bytes_since_gc = __atomic_load_n(&allocd_since_gc_, __ATOMIC_RELAXED);
  c.total_bytes = __atomic_load_n(&total_allocd_, __ATOMIC_RELAXED);
  c.freed_since_gc = freed_since_gc_.load(std::memory_order_relaxed);
  return c;
}

int Collector::collect_a_little(unsigned spans) {
  if (ensure_init() != 0) return 0;
  lock();
  bool more = heap_.unswept_spans() > 0;
  if (more) {
    uint64_t t0 = now_ns();
    more = heap_.sweep_some(spans ? spans : 1);
    stats_.add_lazy_sweep(now_ns() - t0);
  } else if (should_collect() && !collecting_) {
    collect_locked();
  }
  unlock();
  return more;
}

void Collector::scan_roots(ThreadRecord *self, uintptr_t own_sp) {
  // Stacks and registers. The collecting thread's registers were spilled into its frame
  // (see collect_locked), which lies above own_sp.
  if (self && !self->shared) marker_.add_root_range(own_sp, self->stack_base);
  threads_.for_each([&](ThreadRecord *r) {
    if (r == self) return;
    if (r->stop_sp < r->stack_base) marker_.add_root_range(r->stop_sp, r->stack_base);
    marker_.add_root_range(reinterpret_cast<uintptr_t>(r->regs), reinterpret_cast<uintptr_t>(r->regs + NGREG));
    if (r->altstack_hi) marker_.add_root_range(r->altstack_lo, r->altstack_hi);
  });
  roots_.for_each([&](uintptr_t lo, uintptr_t hi) { marker_.add_root_range(lo, hi); });
  // Uncollectable objects are roots: their allocated slots have their bit set.
  heap_.for_each_uncollectable_span([&](Span *s) {
    for (unsigned i = 0; i < s->nobjs; i++)
      if (s->test_bit(i)) marker_.add_root_range(s->object(i), s->object(i) + s->size);
  });
  fin_.mark_roots(marker_, heap_);
}

// The collecting thread's own roots: its callee-saved registers, spilled into this frame,
// and its stack from there up. The collection itself runs in a callee (collect_world),
// whose frames -- full of the collector's working pointers -- lie below the scanned range.
// no_sanitize: with ASan's fake stacks the jmp_buf must still be on the real stack.
__attribute__((noinline, no_sanitize("address"))) void Collector::collect_locked() {
  jmp_buf regs;
  memset(&regs, 0, sizeof regs);  // setjmp fills only part of it; the rest is stale stack
  setjmp(regs);
  __builtin_unwind_init();
  collect_world(reinterpret_cast<uintptr_t>(&regs));
  asm volatile("" : : "r"(&regs) : "memory");  // keep regs alive across the call
}

__attribute__((noinline)) void Collector::collect_world(uintptr_t own_sp) {
  collecting_ = true;
  ThreadRecord *self = t_self;
  CollectionTimes times = {};

  event(DUNEGC_EVENT_START);
  if (roots_.refresh_segments(settings.scan_dls) != 0) warn("out of metadata memory listing data segments");
  event(DUNEGC_EVENT_PRE_STOP_WORLD);
  const uint64_t t0 = now_ns();
  stopper_->stop(threads_, self, &Collector::thread_gone);
  const uint64_t t1 = now_ns();
  event(DUNEGC_EVENT_POST_STOP_WORLD);

  marker_.begin(settings.interior);
  threads_.for_each([&](ThreadRecord *r) { heap_.drop_cache(&r->cache); });
  heap_.drop_cache(&shared_.cache);
  heap_.prepare_marking();
  event(DUNEGC_EVENT_MARK_START);
  scan_roots(self, own_sp);
  const uint64_t t2 = now_ns();

  marker_.drain();
  fin_.process(marker_, heap_, settings.java_finalization, hooks.finalizer_queued);
  if (settings.verify) verify_marks(heap_, marker_.roots(), settings.interior, fin_.kept_shallow());
  event(DUNEGC_EVENT_MARK_END);
  const uint64_t t3 = now_ns();

  event(DUNEGC_EVENT_PRE_START_WORLD);
  stopper_->start(threads_, self);
  const uint64_t t4 = now_ns();
  event(DUNEGC_EVENT_POST_START_WORLD);

  // Reclaim with the world running (as Boehm does) but the lock held: mutators whose
  // free lists were dropped wait for it in their slow path; none can reach what dies here.
  event(DUNEGC_EVENT_RECLAIM_START);
  live_bytes_ = marker_.bytes_marked() + heap_.uncollectable_bytes();
  heap_.reclaim();
  double next = double(live_bytes_) * settings.growth;
  trigger_ = next > double(settings.min_trigger) ? uint64_t(next) : settings.min_trigger;
  allocd_since_gc_ = 0;
  freed_since_gc_.store(0, std::memory_order_relaxed);
  finalizers_registered_.store(fin_.registered(), std::memory_order_relaxed);
  note_heap_size();
  const uint64_t t5 = now_ns();
  event(DUNEGC_EVENT_RECLAIM_END);

  times.phase_ns[DUNEGC_PHASE_STOP] = (t1 - t0) + (t4 - t3);
  times.phase_ns[DUNEGC_PHASE_ROOTS] = t2 - t1;
  times.phase_ns[DUNEGC_PHASE_MARK] = t3 - t2;
  times.phase_ns[DUNEGC_PHASE_SWEEP] = t5 - t4;
  times.pause_ns = t4 - t0;
  stats_.record(times, marker_.objects_marked(), marker_.helper_objects_marked(), marker_.overflowed_this_cycle());
  collecting_ = false;
  event(DUNEGC_EVENT_END);
}

// --- statistics -----------------------------------------------------------------------

void Collector::get_stats(dunegc_stats *out) {
  dunegc_stats s = {};
  s.struct_size = sizeof s;
  lock();
  stats_.fill(&s);
  if (initialized()) {
    allocators::PageHeapStats ps = heap_.pages().stats();
    s.heap_bytes = ps.committed_bytes;
    s.unmapped_bytes = ps.decommitted_bytes;
    size_t used = live_bytes_ + allocd_since_gc_;
    s.free_bytes = ps.committed_bytes > used ? ps.committed_bytes - used : 0;
    SweepStats sw = heap_.sweep_stats();
    s.spans_swept = sw.spans_swept;
    s.large_objects_freed = sw.large_released;
  }
  s.max_heap_bytes = settings.max_heap;
  s.live_bytes = live_bytes_;
  s.bytes_since_gc = allocd_since_gc_;
  s.total_bytes = total_allocd_;
  s.markers = initialized() ? marker_.markers() : settings.markers;
  s.finalizers_queued = fin_.queued_total();
  s.links_cleared = fin_.links_cleared_total();
  s.threads_registered = threads_.count();
  s.explicit_frees = explicit_frees_.load(std::memory_order_relaxed);
  unlock();
  size_t n = out->struct_size && out->struct_size < sizeof s ? out->struct_size : sizeof s;
  memcpy(out, &s, n);
  out->struct_size = n;
}

}  // namespace dunegc::gc
