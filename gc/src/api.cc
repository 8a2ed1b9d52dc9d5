// The C API: thin entry points over the Collector. The allocation fast paths (alloc_fast.h)
// are the whole of dunegc_malloc when the calling thread's free list has an object.
#include <dlfcn.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "alloc_fast.h"
#include "collector.h"
#include "report.h"

using namespace dunegc::gc;

namespace {

inline Collector &C() { return Collector::get(); }

// A switch that may change any time (under the lock: a collection reads it).
void set_switch(bool Settings::*field, int on) {
  Collector &c = C();
  c.lock();
  c.settings.*field = on != 0;
  c.unlock();
}

}  // namespace

extern "C" {

void dunegc_options_init(dunegc_options *opt) {
  memset(opt, 0, sizeof *opt);
  opt->struct_size = sizeof *opt;
  opt->all_interior_pointers = opt->scan_dynamic_libraries = -1;
  opt->java_finalization = opt->finalize_on_demand = opt->verify = -1;
}

int dunegc_init(const dunegc_options *opt) { return C().init(opt); }
int dunegc_is_initialized(void) { return C().initialized(); }

int dunegc_set_all_interior_pointers(int on) {
  Collector &c = C();
  if (c.initialized()) return fail(-EBUSY, "dunegc_set_all_interior_pointers: must be called before init");
  c.settings.interior = on != 0;
  return 0;
}
int dunegc_get_all_interior_pointers(void) { return C().settings.interior; }
int dunegc_set_markers(unsigned n) {
  Collector &c = C();
  if (c.initialized()) return fail(-EBUSY, "dunegc_set_markers: must be called before init");
  if (n > Marker::kMaxMarkers) return fail(-EINVAL, "dunegc_set_markers(%u): at most 64", n);
  c.settings.markers = n;
  return 0;
}
void dunegc_set_scan_dynamic_libraries(int on) { set_switch(&Settings::scan_dls, on); }
int dunegc_get_scan_dynamic_libraries(void) { return C().settings.scan_dls; }
void dunegc_set_java_finalization(int on) { set_switch(&Settings::java_finalization, on); }
int dunegc_get_java_finalization(void) { return C().settings.java_finalization; }
void dunegc_set_finalize_on_demand(int on) { set_switch(&Settings::finalize_on_demand, on); }
int dunegc_get_finalize_on_demand(void) { return C().settings.finalize_on_demand; }
int dunegc_set_max_heap(size_t bytes) { return C().set_max_heap(bytes); }
size_t dunegc_get_max_heap(void) { return C().settings.max_heap; }
int dunegc_expand_heap(size_t bytes) { return C().expand_heap(bytes); }

// --- allocation ---

void *dunegc_malloc(size_t n) {
  if (void *p = alloc_normal_fast(n)) return p;
  return n <= kMaxSmallSize ? C().alloc_small(n, kNormal, nullptr) : C().alloc_large(n, kNormal, 0, nullptr);
}

void *dunegc_malloc_atomic(size_t n) {
  if (void *p = pop_cached(kAtomic, n)) return p;
  return n <= kMaxSmallSize ? C().alloc_small(n, kAtomic, nullptr) : C().alloc_large(n, kAtomic, 0, nullptr);
}

void *dunegc_malloc_uncollectable(size_t n) { return C().alloc_uncollectable(n); }

void *dunegc_malloc_ignore_off_page(size_t n) {
  return n <= kMaxSmallSize ? dunegc_malloc(n) : C().alloc_large(n, kNormal, kIgnoreOffPage, nullptr);
}

void *dunegc_malloc_atomic_ignore_off_page(size_t n) {
  return n <= kMaxSmallSize ? dunegc_malloc_atomic(n) : C().alloc_large(n, kAtomic, kIgnoreOffPage, nullptr);
}

void *dunegc_malloc_many(size_t n) { return C().alloc_many(n); }

void *dunegc_malloc_typed(size_t n, dunegc_layout layout) {
  if (!layout) {
    fail(-EINVAL, "dunegc_malloc_typed(%zu): no layout", n);
    return nullptr;
  }
  n = typed_request(n, layout);
  if (void *p = alloc_typed_fast(n, layout)) return p;
  size_t slot = n + sizeof(void *);
  return slot > kMaxSmallSize ? C().alloc_large(n, kTyped, 0, layout) : C().alloc_small(slot, kTyped, layout);
}

void *dunegc_realloc(void *p, size_t n) { return C().reallocate(p, n); }
int dunegc_free(void *p) { return C().free_object(p); }

size_t dunegc_size(const void *p) {
  Collector &c = C();
  ObjRef r;
  if (!c.initialized() || !c.heap().resolve(reinterpret_cast<uintptr_t>(p), false, &r)) return 0;
  return GcHeap::usable_size(r);
}

void *dunegc_base(const void *p) {
  Collector &c = C();
  ObjRef r;
  if (!c.initialized() || !c.heap().resolve(reinterpret_cast<uintptr_t>(p), true, &r)) return nullptr;
  return reinterpret_cast<void *>(r.base);
}

// --- typed ---

dunegc_layout dunegc_layout_bitmap(const uint64_t *bitmap, size_t nwords) {
  return C().make_bitmap_layout(bitmap, nwords);
}
dunegc_layout dunegc_layout_trace(dunegc_trace_fn fn) { return C().make_trace_layout(fn); }
void dunegc_trace_slot(dunegc_tracer *tracer, void *const *slot) {
  tracer->visit(tracer, reinterpret_cast<uintptr_t>(*slot));
}

// --- roots and threads ---

int dunegc_add_roots(void *lo, void *hi) {
  if (int rc = C().ensure_init(); rc != 0) return rc;
  return C().add_roots(reinterpret_cast<uintptr_t>(lo), reinterpret_cast<uintptr_t>(hi));
}
int dunegc_remove_roots(void *lo, void *hi) {
  return C().remove_roots(reinterpret_cast<uintptr_t>(lo), reinterpret_cast<uintptr_t>(hi));
}
void dunegc_clear_roots(void) { C().clear_roots(); }

int dunegc_register_thread(const void *stack_base) {
  return C().register_thread(reinterpret_cast<uintptr_t>(stack_base));
}
int dunegc_unregister_thread(void) { return C().unregister_thread(); }
int dunegc_thread_is_registered(void) { return t_self != nullptr; }

int dunegc_get_stack_base(void **base) {
  uintptr_t lo, hi;
  int rc = current_stack_bounds(&lo, &hi);
  if (rc != 0) return fail(rc, "dunegc_get_stack_base: %s", strerror(-rc));
  *base = reinterpret_cast<void *>(hi);
  return 0;
}

namespace {

struct StartInfo {
  void *(*start)(void *);
  void *arg;
};

void *thread_trampoline(void *p) {
  // The StartInfo is an uncollectable object: it kept `arg` alive until this thread was
  // registered; from here on the copy on this stack does.
  StartInfo si = *static_cast<StartInfo *>(p);
  int rc = dunegc_register_thread(nullptr);
  dunegc_free(p);
  if (rc < 0) warn("a thread created with dunegc_pthread_create could not register: %s", last_error());
  void *ret = si.start(si.arg);
  if (rc == 0) dunegc_unregister_thread();
  return ret;
}

}  // namespace

int dunegc_pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *), void *arg) {
  auto *si = static_cast<StartInfo *>(dunegc_malloc_uncollectable(sizeof(StartInfo)));
  if (!si) return EAGAIN;
  si->start = start;
  si->arg = arg;
  int rc = pthread_create(thread, attr, &thread_trampoline, si);
  if (rc != 0) dunegc_free(si);
  return rc;
}
int dunegc_pthread_join(pthread_t thread, void **ret) { return pthread_join(thread, ret); }
int dunegc_pthread_detach(pthread_t thread) { return pthread_detach(thread); }

void *dunegc_dlopen(const char *path, int flags) {
  Collector &c = C();
  if (c.ensure_init() != 0) return nullptr;
  c.lock();
  void *h = dlopen(path, flags);
  c.unlock();
  return h;
}
int dunegc_dlclose(void *handle) {
  Collector &c = C();
  if (c.ensure_init() != 0) return -1;
  c.lock();
  int rc = dlclose(handle);
  c.unlock();
  return rc;
}

void *dunegc_call_with_lock(void *(*fn)(void *), void *arg) {
  Collector &c = C();
  if (c.ensure_init() != 0) return nullptr;
  c.lock();
  void *r = fn(arg);
  c.unlock();
  return r;
}

// --- collection ---

void dunegc_collect(void) { C().collect(); }
int dunegc_collect_a_little(void) { return C().collect_a_little(); }
void dunegc_disable(void) { C().disable(); }
void dunegc_enable(void) { C().enable(); }

// --- finalization ---

int dunegc_register_finalizer(void *obj, dunegc_finalizer fn, void *data, enum dunegc_finalize_order order,
                              dunegc_finalizer *old_fn, void **old_data) {
  if (order < DUNEGC_FINALIZE_ORDERED || order > DUNEGC_FINALIZE_UNORDERED)
    return fail(-EINVAL, "dunegc_register_finalizer: unknown order %d", order);
  return C().register_finalizer(obj, fn, data, order, old_fn, old_data);
}
int dunegc_invoke_finalizers(void) { return C().initialized() ? C().invoke_finalizers() : 0; }
size_t dunegc_pending_finalizers(void) { return C().pending_finalizers(); }
int dunegc_register_disappearing_link(void **link, const void *obj) { return C().register_link(link, obj); }
int dunegc_unregister_disappearing_link(void **link) { return C().unregister_link(link); }

// --- callbacks ---

void dunegc_set_oom_handler(dunegc_oom_fn fn) { C().oom_fn.store(fn); }
dunegc_oom_fn dunegc_get_oom_handler(void) { return C().oom_fn.load(); }
void dunegc_set_event_handler(dunegc_event_fn fn) { C().event_fn.store(fn); }
dunegc_event_fn dunegc_get_event_handler(void) { return C().event_fn.load(); }

// --- statistics ---

void dunegc_get_stats(dunegc_stats *out) { C().get_stats(out); }

namespace {
dunegc_stats snapshot() {
  dunegc_stats s;
  s.struct_size = sizeof s;
  C().get_stats(&s);
  return s;
}
}  // namespace

size_t dunegc_heap_size(void) { return snapshot().heap_bytes; }
size_t dunegc_free_bytes(void) { return snapshot().free_bytes; }
size_t dunegc_unmapped_bytes(void) { return snapshot().unmapped_bytes; }
uint64_t dunegc_bytes_since_gc(void) { return snapshot().bytes_since_gc; }
uint64_t dunegc_total_bytes(void) { return snapshot().total_bytes; }
uint64_t dunegc_collections(void) { return snapshot().collections; }

void dunegc_print_stats(int fd) {
  dunegc_stats s = snapshot();
  char buf[2048];
  format_stats(s, buf, sizeof buf);
  size_t len = strlen(buf), off = 0;
  while (off < len) {
    ssize_t w = write(fd, buf + off, len - off);
    if (w <= 0) break;
    off += size_t(w);
  }
}

}  // extern "C"
