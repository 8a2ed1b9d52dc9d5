// Finalizers and disappearing links (weak pointers), Boehm's way, over dunegc's
// Finalization: the same orders (ordered, ignore-self, no-order, unreachable), short and
// long links, GC_finalize_all.
#include <cerrno>

#include "bdw.h"
#include "finalize.h"

using namespace dunegc::bdw;
using dunegc::gc::warn;

namespace {

std::atomic<GC_await_finalize_proc> g_await{nullptr};
std::atomic<GC_toggleref_func> g_toggleref{nullptr};

void await_bridge(void *obj) {
  if (GC_await_finalize_proc p = g_await.load(std::memory_order_acquire)) p(obj);
}

// Boehm: obj NULL or outside the heap -> fn ignored, *ofn and *ocd set to NULL.
void register_finalizer(void *obj, GC_finalization_proc fn, void *cd, GC_finalization_proc *ofn, void **ocd,
                        int order) {
  ensure_init();
  if (!obj || !GC_is_heap_ptr(obj)) {
    if (ofn) *ofn = nullptr;
    if (ocd) *ocd = nullptr;
    return;
  }
  dunegc_finalizer old_fn = nullptr;
  void *old_data = nullptr;
  // Boehm leaves *ofn/*ocd unchanged when it fails; dunegc fills them only on success.
  if (C().register_finalizer(obj, fn, cd, order, &old_fn, &old_data) == 0) {
    if (ofn) *ofn = old_fn;
    if (ocd) *ocd = old_data;
  }
}

int link_result(int rc) {
  if (rc >= 0) return rc;  // GC_SUCCESS or GC_DUPLICATE
  return rc == -ENOMEM ? GC_NO_MEMORY : GC_UNIMPLEMENTED;  // warned by the collector
}

int move_result(int rc) {
  if (rc == -ENOENT) return GC_NOT_FOUND;
  return link_result(rc);
}

}  // namespace

extern "C" {

void GC_register_finalizer(void *obj, GC_finalization_proc fn, void *cd, GC_finalization_proc *ofn, void **ocd) {
  register_finalizer(obj, fn, cd, ofn, ocd, DUNEGC_FINALIZE_ORDERED);
}
void GC_register_finalizer_ignore_self(void *obj, GC_finalization_proc fn, void *cd, GC_finalization_proc *ofn,
                                       void **ocd) {
  register_finalizer(obj, fn, cd, ofn, ocd, DUNEGC_FINALIZE_IGNORE_SELF);
}
void GC_register_finalizer_no_order(void *obj, GC_finalization_proc fn, void *cd, GC_finalization_proc *ofn,
                                    void **ocd) {
  register_finalizer(obj, fn, cd, ofn, ocd, DUNEGC_FINALIZE_UNORDERED);
}
void GC_register_finalizer_unreachable(void *obj, GC_finalization_proc fn, void *cd, GC_finalization_proc *ofn,
                                       void **ocd) {
  register_finalizer(obj, fn, cd, ofn, ocd, dunegc::gc::kFinalizeUnreachable);
}

// No debug headers: the debug variants are the plain ones.
void GC_debug_register_finalizer(void *obj, GC_finalization_proc fn, void *cd, GC_finalization_proc *ofn,
                                 void **ocd) {
  GC_register_finalizer(obj, fn, cd, ofn, ocd);
}
void GC_debug_register_finalizer_ignore_self(void *obj, GC_finalization_proc fn, void *cd,
                                             GC_finalization_proc *ofn, void **ocd) {
  GC_register_finalizer_ignore_self(obj, fn, cd, ofn, ocd);
}
void GC_debug_register_finalizer_no_order(void *obj, GC_finalization_proc fn, void *cd, GC_finalization_proc *ofn,
                                          void **ocd) {
  GC_register_finalizer_no_order(obj, fn, cd, ofn, ocd);
}
void GC_debug_register_finalizer_unreachable(void *obj, GC_finalization_proc fn, void *cd,
                                             GC_finalization_proc *ofn, void **ocd) {
  GC_register_finalizer_unreachable(obj, fn, cd, ofn, ocd);
}

int GC_invoke_finalizers(void) { return GC_is_init_called() ? dunegc_invoke_finalizers() : 0; }
int GC_should_invoke_finalizers(void) { return GC_is_init_called() && dunegc_pending_finalizers() > 0; }

// javaxfc.h: run every registered finalizer, reachable or not (e.g. at exit).
void GC_finalize_all(void) {
  ensure_init();
  C().finalize_all();
}

void GC_set_await_finalize_proc(GC_await_finalize_proc fn) {
  ensure_init();
  g_await.store(fn, std::memory_order_release);
  C().lock();
  C().hooks.finalizer_queued = fn ? await_bridge : nullptr;
  C().unlock();
}
GC_await_finalize_proc GC_get_await_finalize_proc(void) { return g_await.load(std::memory_order_acquire); }

// ---------------------------------------------------------------- disappearing links

// The link is a field of a heap object, and cleared when that object dies.
int GC_register_disappearing_link(void **link) {
  ensure_init();
  void *base = dunegc_base(link);
  if (!base) {
    warn("GC_register_disappearing_link(%p): the link is not inside a heap object", (void *)link);
    return GC_UNIMPLEMENTED;
  }
  return GC_general_register_disappearing_link(link, base);
}

int GC_general_register_disappearing_link(void **link, const void *obj) {
  ensure_init();
  return link_result(C().register_link(link, obj, false));
}
int GC_unregister_disappearing_link(void **link) { return C().unregister_link(link, false); }
int GC_move_disappearing_link(void **link, void **new_link) {
  ensure_init();
  return move_result(C().move_link(link, new_link, false));
}

int GC_register_long_link(void **link, const void *obj) {
  ensure_init();
  return link_result(C().register_link(link, obj, true));
}
int GC_unregister_long_link(void **link) { return C().unregister_link(link, true); }
int GC_move_long_link(void **link, void **new_link) {
  ensure_init();
  return move_result(C().move_link(link, new_link, true));
}

// ---------------------------------------------------------------- toggle references

void GC_set_toggleref_func(GC_toggleref_func fn) {
  if (fn) warn("GC_set_toggleref_func: dunegc does not implement toggle references; the callback is never called");
  g_toggleref.store(fn, std::memory_order_release);
}
GC_toggleref_func GC_get_toggleref_func(void) { return g_toggleref.load(std::memory_order_acquire); }
int GC_toggleref_add(void *obj, int is_strong) {
  warn("GC_toggleref_add(%p, %d): dunegc does not implement toggle references", obj, is_strong);
  return GC_UNIMPLEMENTED;
}

}  // extern "C"
