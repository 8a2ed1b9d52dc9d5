// Collector: what programs register with it -- root ranges, threads, finalizers and
// weak links -- under the collector's lock (see collector.h).
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "collector.h"
#include "report.h"

namespace dunegc::gc {

// --- roots and threads ------------------------------------------------------------

int Collector::add_roots(uintptr_t lo, uintptr_t hi) {
  if (hi <= lo) return fail(-EINVAL, "dunegc_add_roots(%p, %p): empty or inverted range", (void *)lo, (void *)hi);
  lock();
  int rc = roots_.add(lo, hi);
  unlock();
  return rc ? fail(rc, "dunegc_add_roots: out of metadata memory") : 0;
}

int Collector::remove_roots(uintptr_t lo, uintptr_t hi) {
  lock();
  int rc = roots_.remove(lo, hi);
  unlock();
  return rc;
}

void Collector::clear_roots() {
  lock();
  roots_.clear();
  unlock();
}

int Collector::exclude_roots(uintptr_t lo, uintptr_t hi) {
  if (hi <= lo) return fail(-EINVAL, "excluding roots [%p, %p): empty or inverted range", (void *)lo, (void *)hi);
  lock();
  int rc = roots_.exclude(lo, hi);
  unlock();
  return rc ? fail(rc, "excluding roots: out of metadata memory") : 0;
}

void Collector::clear_exclusions() {
  lock();
  roots_.clear_exclusions();
  unlock();
}

bool Collector::in_roots(uintptr_t p) {
  if (ensure_init() != 0) return false;
  bool found = false;
  lock();
  if (roots_.refresh_segments(settings.scan_dls) != 0) warn("out of metadata memory listing data segments");
  roots_.for_each([&](uintptr_t lo, uintptr_t hi) { found = found || (p >= lo && p < hi); });
  threads_.for_each([&](ThreadRecord *r) {
    uintptr_t lo = r == t_self ? current_sp() : r->stack_lo;
    found = found || (lo && p >= lo && p < r->stack_base);
  });
  unlock();
  return found;
}

void Collector::set_segment_filter(SegmentFilter f) {
  lock();
  roots_.set_filter(f);
  unlock();
}

int Collector::register_thread(uintptr_t stack_base) {
  if (int rc = ensure_init(); rc != 0) return rc;
  if (t_self) return DUNEGC_DUPLICATE;
  uintptr_t lo = 0, hi = 0;
  int rc = current_stack_bounds(&lo, &hi);
  if (!stack_base) {
    if (rc != 0) return fail(rc, "dunegc_register_thread: cannot find this thread's stack: %s", strerror(-rc));
    stack_base = hi;
  }
  uintptr_t here = current_sp();
  if (here >= stack_base)
    return fail(-EINVAL, "dunegc_register_thread: stack base %p is not above the current stack pointer %p",
                (void *)stack_base, (void *)here);
  ThreadRecord *r = threads_.create();
  if (!r) return fail(-ENOMEM, "dunegc_register_thread: out of metadata memory");
  r->thread = pthread_self();
  r->tid = pid_t(syscall(SYS_gettid));
  r->stack_base = stack_base;
  r->stack_lo = (rc == 0 && here >= lo && here < hi) ? lo : 0;
  // t_self first: once linked, the thread may be sent a stop signal, whose handler
  // ignores threads without a record.
  t_self = r;
  lock();
  threads_.link(r);
  unlock();
  pthread_setspecific(exit_key_, r);
  return 0;
}

int Collector::unregister_thread() {
  ThreadRecord *r = t_self;
  if (!r) return fail(-EINVAL, "dunegc_unregister_thread: this thread is not registered");
  lock();
  heap_.drop_cache(&r->cache);
  threads_.unlink(r);
  unlock();
  t_self = nullptr;  // from here on no stop signal is sent to this thread
  pthread_setspecific(exit_key_, nullptr);
  threads_.destroy(r);
  return 0;
}

void Collector::after_fork_in_child() {
  threads_.for_each([&](ThreadRecord *r) {
    if (r == t_self) return;
    threads_.unlink(r);
    threads_.destroy(r);
  });
  marker_.forget_helpers();
  unlock();
}

void Collector::thread_exit_hook(void *rec) {
  if (t_self == rec) get().unregister_thread();
}

void Collector::thread_gone(ThreadRecord *r) {
  Collector &c = get();
  c.threads_.unlink(r);
  c.threads_.destroy(r);
}

// --- finalization -------------------------------------------------------------------

int Collector::register_finalizer(void *obj, dunegc_finalizer fn, void *data, int order, dunegc_finalizer *old_fn,
                                  void **old_data) {
  if (int rc = ensure_init(); rc != 0) return rc;
  ObjRef r;
  if (!heap_.resolve(reinterpret_cast<uintptr_t>(obj), false, &r) || r.span->kind == kUncollectable) {
    if (old_fn) *old_fn = nullptr;
    if (old_data) *old_data = nullptr;
    return fail(-EINVAL, "dunegc_register_finalizer(%p): not the start of a collectable heap object", obj);
  }
  lock();
  int rc = fin_.set(r.base, fn, data, uint8_t(order), old_fn, old_data);
  finalizers_registered_.store(fin_.registered(), std::memory_order_relaxed);
  unlock();
  return rc ? fail(rc, "dunegc_register_finalizer: out of metadata memory") : 0;
}

int Collector::invoke_finalizers() {
  ThreadRecord *t = t_self;
  if (t) {
    if (t->in_finalizers) return 0;
    t->in_finalizers = true;
  }
  int n = 0;
  for (;;) {
    ReadyFinalizer f;
    lock();
    bool got = fin_.pop_ready(&f);
    unlock();
    if (!got) break;
    // f.obj now lives in this frame (a root) until the finalizer returns.
    f.fn(reinterpret_cast<void *>(f.obj), f.data);
    n++;
    lock();
    stats_.count_finalizer_run();
    unlock();
  }
  if (t) t->in_finalizers = false;
  return n;
}

size_t Collector::pending_finalizers() {
  if (!initialized()) return 0;
  lock();
  size_t n = fin_.pending();
  unlock();
  return n;
}

Collector::FinalizationCounts Collector::finalization_counts() {
  lock();
  FinalizationCounts c{fin_.registered(), fin_.pending(), fin_.links(), fin_.long_links()};
  unlock();
  return c;
}

int Collector::register_link(void **link, const void *obj, bool long_link) {
  if (!link || reinterpret_cast<uintptr_t>(link) % sizeof(void *))
    return fail(-EINVAL, "dunegc_register_disappearing_link: link %p is NULL or misaligned", (void *)link);
  if (int rc = ensure_init(); rc != 0) return rc;
  ObjRef r;
  if (!heap_.resolve(reinterpret_cast<uintptr_t>(obj), false, &r))
    return fail(-EINVAL, "dunegc_register_disappearing_link: %p is not the start of a heap object", obj);
  lock();
  int rc = fin_.add_link(reinterpret_cast<uintptr_t>(link), r.base, long_link);
  unlock();
  return rc < 0 ? fail(rc, "dunegc_register_disappearing_link: out of metadata memory") : rc;
}

int Collector::unregister_link(void **link, bool long_link) {
  if (!initialized()) return 0;
  lock();
  bool was = fin_.remove_link(reinterpret_cast<uintptr_t>(link), long_link);
  unlock();
  return was;
}

int Collector::move_link(void **link, void **new_link, bool long_link) {
  if (!new_link || reinterpret_cast<uintptr_t>(new_link) % sizeof(void *))
    return fail(-EINVAL, "moving a disappearing link: new link %p is NULL or misaligned", (void *)new_link);
  if (!initialized()) return -ENOENT;
  lock();
  int rc = fin_.move_link(reinterpret_cast<uintptr_t>(link), reinterpret_cast<uintptr_t>(new_link), long_link);
  unlock();
  return rc == -ENOMEM ? fail(rc, "moving a disappearing link: out of metadata memory") : rc;
}

void Collector::finalize_all() {
  if (!initialized()) return;
  for (;;) {
    lock();
    size_t left = fin_.registered();
    if (left) fin_.queue_all();
    finalizers_registered_.store(fin_.registered(), std::memory_order_relaxed);
    unlock();
    if (!left) break;
    // Finalizers may register new ones: go round until none is left (or none can run
    // here: called from inside a finalizer).
    if (invoke_finalizers() == 0) break;
  }
}

}  // namespace dunegc::gc
