// Debugging aids: pointer checks (GC_same_obj, GC_is_visible, ...), dumps of the
// collector's state (to the log file descriptor), and small helpers clients call.
#include <link.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "alloc_fast.h"
#include "bdw.h"

using namespace dunegc::bdw;

namespace {

std::atomic<int> g_log_fd{STDERR_FILENO};

void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_line(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0) (void)!write(g_log_fd.load(std::memory_order_relaxed), buf, size_t(n) < sizeof buf ? size_t(n) : sizeof buf - 1);
}

// Whether the word at address p may hold a pointer the collector follows.
bool word_is_scanned(uintptr_t p) {
  dunegc::gc::ObjRef r;
  if (C().heap().resolve(p, true, &r)) {
    switch (r.span->kind) {
      case dunegc::gc::kAtomic: return false;
      case dunegc::gc::kTyped: {
        const dunegc::gc::Layout *l = dunegc::gc::GcHeap::layout_of(r);
        if (!l || l->type != dunegc::gc::Layout::kBitmap) return l != nullptr;  // traced: its own call
        size_t w = (p - r.base) / sizeof(void *);
        return w < l->nwords && (l->bits[w / 64] >> (w % 64) & 1);
      }
      default: return true;
    }
  }
  return C().in_roots(p);
}

struct TmpRootQuery {
  uintptr_t p;
  bool main = true;
  bool found = false;
};

// Boehm's temporary roots are the data segments of shared libraries, found anew at each
// collection: is p in a writable segment of a loaded library (not the executable)?
int find_library_segment(dl_phdr_info *info, size_t, void *arg) {
  auto *q = static_cast<TmpRootQuery *>(arg);
  bool is_main = q->main;
  q->main = false;
  if (is_main) return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) &ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_W)) continue;
    uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    if (q->p >= lo && q->p < lo + ph.p_memsz) {
      q->found = true;
      return 1;
    }
  }
  return 0;
}

}  // namespace

extern "C" {

void GC_set_log_fd(int fd) { g_log_fd.store(fd, std::memory_order_relaxed); }

// Boehm's own printing helpers (exported by its libgc.so.1): to the log fd or stderr.
void GC_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void GC_log_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void GC_err_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define BDW_VPRINT(fd)                                       \
  do {                                                       \
    va_list ap;                                              \
    va_start(ap, fmt);                                       \
    char buf[1024];                                          \
    int n = vsnprintf(buf, sizeof buf, fmt, ap);             \
    va_end(ap);                                              \
    if (n > 0) (void)!write(fd, buf, size_t(n) < sizeof buf ? size_t(n) : sizeof buf - 1); \
  } while (0)
void GC_printf(const char *fmt, ...) { BDW_VPRINT(g_log_fd.load(std::memory_order_relaxed)); }
void GC_log_printf(const char *fmt, ...) { BDW_VPRINT(g_log_fd.load(std::memory_order_relaxed)); }
void GC_err_printf(const char *fmt, ...) { BDW_VPRINT(STDERR_FILENO); }

void GC_noop1(GC_word x) { asm volatile("" : : "r"(x) : "memory"); }

// Overwrites dead stack below the caller, so stale pointers there retain nothing.
__attribute__((noinline)) void *GC_clear_stack(void *arg) {
  volatile GC_word junk[1024];
  for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) junk[i] = 0;
  asm volatile("" : : "r"(junk) : "memory");
  return arg;
}

void *GC_same_obj(void *p, void *q) {
  if (!GC_is_init_called()) return p;
  void *bp = dunegc_base(p), *bq = dunegc_base(q);
  if (bp != bq) GC_same_obj_print_proc(p, q);
  return p;
}

void *GC_pre_incr(void **p, ptrdiff_t how_much) {
  void *initial = *p;
  void *result = GC_same_obj(static_cast<char *>(initial) + how_much, initial);
  *p = result;
  return result;
}

void *GC_post_incr(void **p, ptrdiff_t how_much) {
  void *initial = *p;
  *p = GC_same_obj(static_cast<char *>(initial) + how_much, initial);
  return initial;
}

void *GC_is_visible(void *p) {
  if (GC_is_init_called() && !word_is_scanned(reinterpret_cast<uintptr_t>(p))) GC_is_visible_print_proc(p);
  return p;
}

// A heap pointer must point into an object (or at its start, interior pointers off).
void *GC_is_valid_displacement(void *p) {
  if (!GC_is_init_called() || !GC_is_heap_ptr(p)) return p;
  dunegc::gc::ObjRef r;
  if (!C().heap().resolve(reinterpret_cast<uintptr_t>(p), dunegc_get_all_interior_pointers() != 0, &r))
    GC_is_valid_displacement_print_proc(p);
  return p;
}

int GC_is_tmp_root(void *p) {
  TmpRootQuery q{reinterpret_cast<uintptr_t>(p)};
  dl_iterate_phdr(find_library_segment, &q);
  return q.found && !GC_get_no_dls();
}

void GC_dump_regions(void) {
  if (!GC_is_init_called()) return;
  dunegc::allocators::PageHeapStats s = C().heap().pages().stats();
  log_line("***Heap: one reservation at %#lx, %zu bytes\n", (unsigned long)C().heap().base(), s.reserved_bytes);
  log_line("  committed %zu bytes (in use %zu in %zu spans, free %zu), decommitted %zu, limit %zu\n",
           s.committed_bytes, s.in_use_bytes, s.spans_in_use, s.free_bytes, s.decommitted_bytes, s.limit_bytes);
}

void GC_dump_finalization(void) {
  if (!GC_is_init_called()) return;
  Collector::FinalizationCounts c = C().finalization_counts();
  log_line("***Finalization: %zu finalizers registered, %zu ready to run; %zu disappearing links, %zu long links\n",
           c.registered, c.pending, c.links, c.long_links);
}

void GC_dump_named(const char *name) {
  if (name) log_line("***GC Dump %s\n", name);
  else log_line("***GC Dump collection #%lu\n", GC_gc_no);
  if (!GC_is_init_called()) return;
  dunegc_print_stats(g_log_fd.load(std::memory_order_relaxed));
  GC_dump_regions();
  GC_dump_finalization();
}

void GC_dump(void) { GC_dump_named(nullptr); }

// gc_inline.h: the calling thread's free list of one kind and size (in 16-byte granules).
void GC_print_free_list(int kind, size_t granules) {
  dunegc::gc::ThreadRecord *t = dunegc::gc::t_self;
  size_t bytes = granules * dunegc::allocators::kGranule;
  dunegc::gc::Kind k = kind == kPtrFree ? dunegc::gc::kAtomic : dunegc::gc::kNormal;
  if (!t || bytes == 0 || bytes > dunegc::allocators::kMaxSmallSize || (kind != kPtrFree && kind != kNormalKind)) {
    log_line("free list of kind %d, %zu granules: none for this thread\n", kind, granules);
    return;
  }
  size_t n = 0;
  for (void *p = t->cache.lists[k][dunegc::allocators::size_to_class(bytes)]; p; p = *static_cast<void **>(p)) n++;
  log_line("free list of kind %d, %zu granules: %zu objects\n", kind, granules, n);
}

}  // extern "C"
