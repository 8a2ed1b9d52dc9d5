// Boehm features dunegc does not have: custom object kinds and mark procedures
// (gc_mark.h), gcj-style vtable descriptors (gc_gcj.h) and disclaim procedures
// (gc_disclaim.h). Their entry points exist so that every program linked against Boehm's
// libgc.so.1 loads; each call says through the warn proc that it is not supported and
// returns a failure (NULL, or a kind number no allocation accepts). None pretends to work.
#include "bdw.h"

using dunegc::gc::warn;

namespace {

// A kind or mark-procedure index that GC_generic_malloc rejects.
constexpr unsigned kNoKind = ~0u;

void no_custom_marking(const char *fn) {
  warn("%s: dunegc has no custom object kinds or mark procedures (gc_mark.h); not supported", fn);
}

}  // namespace

extern "C" {

// ---------------------------------------------------------------- gc_mark.h

void *GC_least_plausible_heap_addr = nullptr;
void *GC_greatest_plausible_heap_addr = nullptr;

struct GC_ms_entry;
struct GC_ms_entry *GC_mark_and_push(void *, struct GC_ms_entry *msp, struct GC_ms_entry *, void **) {
  no_custom_marking("GC_mark_and_push");
  return msp;
}
void **GC_new_free_list(void) {
  no_custom_marking("GC_new_free_list");
  return nullptr;
}
void **GC_new_free_list_inner(void) {
  no_custom_marking("GC_new_free_list_inner");
  return nullptr;
}
unsigned GC_new_kind(void **, GC_word, int, int) {
  no_custom_marking("GC_new_kind");
  return kNoKind;
}
unsigned GC_new_kind_inner(void **, GC_word, int, int) {
  no_custom_marking("GC_new_kind_inner");
  return kNoKind;
}
typedef struct GC_ms_entry *(*GC_mark_proc)(GC_word *, struct GC_ms_entry *, struct GC_ms_entry *, GC_word);
unsigned GC_new_proc(GC_mark_proc) {
  no_custom_marking("GC_new_proc");
  return kNoKind;
}
unsigned GC_new_proc_inner(GC_mark_proc) {
  no_custom_marking("GC_new_proc_inner");
  return kNoKind;
}
int GC_is_marked(const void *) {
  no_custom_marking("GC_is_marked");
  return 0;
}
void GC_clear_mark_bit(const void *) { no_custom_marking("GC_clear_mark_bit"); }
void GC_set_mark_bit(const void *) { no_custom_marking("GC_set_mark_bit"); }
void GC_push_all(void *, void *) { no_custom_marking("GC_push_all"); }
void GC_push_all_eager(void *, void *) { no_custom_marking("GC_push_all_eager"); }
void GC_push_conditional(void *, void *, int) { no_custom_marking("GC_push_conditional"); }
void GC_push_finalizer_structures(void) { no_custom_marking("GC_push_finalizer_structures"); }

typedef void(GC_CALLBACK *GC_push_other_roots_proc)(void);
static std::atomic<GC_push_other_roots_proc> g_push_other_roots{nullptr};
void GC_set_push_other_roots(GC_push_other_roots_proc fn) {
  if (fn) no_custom_marking("GC_set_push_other_roots");  // add such roots with GC_add_roots
  g_push_other_roots.store(fn, std::memory_order_release);
}
GC_push_other_roots_proc GC_get_push_other_roots(void) { return g_push_other_roots.load(std::memory_order_acquire); }

typedef void(GC_CALLBACK *GC_reachable_object_proc)(void *, size_t, void *);
void GC_enumerate_reachable_objects_inner(GC_reachable_object_proc, void *) {
  warn("GC_enumerate_reachable_objects_inner: dunegc keeps mark state private to a collection; not supported");
}

typedef void(GC_CALLBACK *GC_describe_type_fn)(void *, char *);
void GC_register_describe_type_fn(int kind, GC_describe_type_fn) {
  warn("GC_register_describe_type_fn(%d): dunegc prints no per-object heap dumps; the function is never called",
       kind);
}

// ---------------------------------------------------------------- gc_gcj.h

int GC_gcj_kind = 0;
int GC_gcj_debug_kind = 0;

void GC_init_gcj_malloc(int, void *) {
  warn("GC_init_gcj_malloc: dunegc has no gcj-style (vtable descriptor) allocation; not supported");
}
void *GC_gcj_malloc(size_t n, void *) {
  warn("GC_gcj_malloc(%zu): dunegc has no gcj-style allocation; returning NULL", n);
  return nullptr;
}
void *GC_debug_gcj_malloc(size_t n, void *, const char *, int) {
  warn("GC_debug_gcj_malloc(%zu): dunegc has no gcj-style allocation; returning NULL", n);
  return nullptr;
}
void *GC_gcj_malloc_ignore_off_page(size_t n, void *) {
  warn("GC_gcj_malloc_ignore_off_page(%zu): dunegc has no gcj-style allocation; returning NULL", n);
  return nullptr;
}

// ---------------------------------------------------------------- gc_disclaim.h

void GC_init_finalized_malloc(void) {
  warn("GC_init_finalized_malloc: dunegc has no disclaim procedures; use GC_register_finalizer_no_order");
}
typedef int(GC_CALLBACK *GC_disclaim_proc)(void *);
void GC_register_disclaim_proc(int kind, GC_disclaim_proc, int) {
  warn("GC_register_disclaim_proc(%d): dunegc has no disclaim procedures; not supported", kind);
}
struct GC_finalizer_closure;
void *GC_finalized_malloc(size_t n, const struct GC_finalizer_closure *) {
  warn("GC_finalized_malloc(%zu): dunegc has no disclaim procedures; returning NULL", n);
  return nullptr;
}

}  // extern "C"
