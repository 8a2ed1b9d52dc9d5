// Allocation: Boehm's malloc family, object kinds, alignment, realloc/free, and the
// debugging allocator's entry points (which allocate plainly: dunegc has none).
#include <cerrno>
#include <cstring>

#include "alloc_fast.h"
#include "bdw.h"

using namespace dunegc::bdw;
using dunegc::gc::Kind;
using dunegc::gc::warn;

namespace {

// The slow paths: initialise on first use, then the collector's own entry points.
__attribute__((noinline)) void *malloc_slow(size_t n) {
  ensure_init();
  return dunegc_malloc(n);
}
__attribute__((noinline)) void *malloc_atomic_slow(size_t n) {
  ensure_init();
  return dunegc_malloc_atomic(n);
}

void note_debug_allocation() {
  BDW_WARN_ONCE("GC_debug_* allocation: dunegc has no debugging allocator; objects are allocated plainly "
                "(no debug headers, no overwrite checks)");
}

bool is_pow2(size_t n) { return n && !(n & (n - 1)); }

}  // namespace

extern "C" {

void *GC_malloc(size_t n) {
  if (void *p = dunegc::gc::alloc_normal_fast(n)) return p;
  return malloc_slow(n);
}

void *GC_malloc_atomic(size_t n) {
  if (void *p = dunegc::gc::pop_cached(dunegc::gc::kAtomic, n)) return p;
  return malloc_atomic_slow(n);
}

void *GC_malloc_uncollectable(size_t n) {
  ensure_init();
  return dunegc_malloc_uncollectable(n);
}

// dunegc has no pointer-free uncollectable kind: the object is scanned like any other
// uncollectable one. That may retain more, never less; it is still freed only by GC_free.
void *GC_malloc_atomic_uncollectable(size_t n) { return GC_malloc_uncollectable(n); }

void *GC_malloc_ignore_off_page(size_t n) {
  ensure_init();
  return dunegc_malloc_ignore_off_page(n);
}

void *GC_malloc_atomic_ignore_off_page(size_t n) {
  ensure_init();
  return dunegc_malloc_atomic_ignore_off_page(n);
}

// "Stubborn" objects are gone from Boehm too: plain objects, changes need no notice.
void *GC_malloc_stubborn(size_t n) { return GC_malloc(n); }
void GC_change_stubborn(const void *) {}
// Matters only for incremental collection with manual dirty bits, which dunegc has not.
void GC_end_stubborn_change(const void *) {}
void GC_ptr_store_and_dirty(void *p, const void *q) { *static_cast<const void **>(p) = q; }

void *GC_malloc_many(size_t n) {
  ensure_init();
  return dunegc_malloc_many(n);
}

char *GC_strdup(const char *s) {
  if (!s) return nullptr;
  size_t n = strlen(s) + 1;
  auto *p = static_cast<char *>(GC_malloc_atomic(n));
  if (p) memcpy(p, s, n);
  return p;
}

char *GC_strndup(const char *s, size_t max) {
  size_t n = strnlen(s, max);
  auto *p = static_cast<char *>(GC_malloc_atomic(n + 1));
  if (p) {
    memcpy(p, s, n);
    p[n] = 0;
  }
  return p;
}

// Every object is 16-byte aligned; power-of-two classes up to 8 KiB hold objects at
// multiples of their size from a page boundary, and large objects start on a page. Past
// a page, the object is over-allocated and an interior pointer returned (as Boehm does).
void *GC_memalign(size_t align, size_t n) {
  if (!is_pow2(align)) {
    warn("GC_memalign(%zu, %zu): the alignment must be a power of two", align, n);
    errno = EINVAL;
    return nullptr;
  }
  if (align <= dunegc::allocators::kGranule) return GC_malloc(n);
  if (align <= dunegc::allocators::kPageSize) {
    size_t want = n > align ? n : align;
    if (want <= dunegc::allocators::kMaxSmallSize) want = size_t{1} << (64 - __builtin_clzll(want - 1));
    return GC_malloc(want);
  }
  ensure_init();
  if (!dunegc_get_all_interior_pointers()) {
    warn("GC_memalign(%zu, %zu): alignments past a page return an interior pointer, which does not keep the "
         "object alive with interior pointers off",
         align, n);
    errno = EINVAL;
    return nullptr;
  }
  if (n > SIZE_MAX - align) {
    errno = ENOMEM;
    return nullptr;
  }
  auto *p = static_cast<char *>(GC_malloc(n + align - 1));
  if (!p) return nullptr;
  uintptr_t a = (reinterpret_cast<uintptr_t>(p) + align - 1) & ~(uintptr_t(align) - 1);
  return reinterpret_cast<void *>(a);
}

int GC_posix_memalign(void **out, size_t align, size_t n) {
  if (!is_pow2(align) || align % sizeof(void *)) return EINVAL;
  void *p = GC_memalign(align, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

void *GC_realloc(void *p, size_t n) {
  if (!p) return GC_malloc(n);
  ensure_init();
  return dunegc_realloc(p, n);
}

void GC_free(void *p) {
  if (p) dunegc_free(p);
}

void *GC_base(void *p) { return GC_is_init_called() ? dunegc_base(p) : nullptr; }

int GC_is_heap_ptr(const void *p) {
  return GC_is_init_called() && C().heap().pages().in_heap(reinterpret_cast<uintptr_t>(p));
}

size_t GC_size(const void *p) { return GC_is_init_called() ? dunegc_size(p) : 0; }

// Requested-to-actual size (bytes) for sizes up to the largest small object; -1 past it.
size_t GC_get_size_map_at(int i) {
  if (i < 0 || size_t(i) > dunegc::allocators::kMaxSmallSize) return size_t(-1);
  return dunegc::allocators::class_size(dunegc::allocators::size_to_class(size_t(i)));
}

// ---------------------------------------------------------------- object kinds (gc_mark.h)

void *GC_generic_malloc(size_t n, int kind) {
  switch (kind) {
    case kPtrFree: return GC_malloc_atomic(n);
    case kNormalKind: return GC_malloc(n);
    case kUncollectableKind:
    case kAtomicUncollectableKind: return GC_malloc_uncollectable(n);
    default:
      warn("GC_generic_malloc(%zu, %d): kind %d is not one of Boehm's predefined kinds (0-3); dunegc has no "
           "custom kinds",
           n, kind, kind);
      return nullptr;
  }
}

void *GC_generic_malloc_ignore_off_page(size_t n, int kind) {
  if (kind == kPtrFree) return GC_malloc_atomic_ignore_off_page(n);
  if (kind == kNormalKind) return GC_malloc_ignore_off_page(n);
  return GC_generic_malloc(n, kind);
}

void *GC_generic_malloc_uncollectable(size_t n, int kind) {
  if (kind == kUncollectableKind || kind == kAtomicUncollectableKind || kind == kPtrFree || kind == kNormalKind)
    return GC_malloc_uncollectable(n);
  return GC_generic_malloc(n, kind);
}

void *GC_generic_or_special_malloc(size_t n, int kind) { return GC_generic_malloc(n, kind); }
void *GC_malloc_kind(size_t n, int kind) { return GC_generic_malloc(n, kind); }
void *GC_malloc_kind_global(size_t n, int kind) { return GC_generic_malloc(n, kind); }

// A list of one or more objects linked through their first words. Only conservative
// objects come several at a time: in pointer-free ones the links would not be scanned.
void GC_generic_malloc_many(size_t n, int kind, void **result) {
  *result = kind == kNormalKind ? GC_malloc_many(n) : GC_generic_malloc(n, kind);
}

// The kind of the object at p (typed objects report 4, the next kind Boehm would create
// for them) and its size.
int GC_get_kind_and_size(const void *p, size_t *psize) {
  dunegc::gc::ObjRef r;
  if (!GC_is_init_called() || !C().heap().resolve(reinterpret_cast<uintptr_t>(p), false, &r)) {
    warn("GC_get_kind_and_size(%p): not the start of a heap object", p);
    if (psize) *psize = 0;
    return -1;
  }
  if (psize) *psize = dunegc::gc::GcHeap::usable_size(r);
  switch (r.span->kind) {
    case dunegc::gc::kAtomic: return kPtrFree;
    case dunegc::gc::kNormal: return kNormalKind;
    case dunegc::gc::kUncollectable: return kUncollectableKind;
    default: return 4;
  }
}

// ---------------------------------------------------------------- debugging allocation

void *GC_debug_malloc(size_t n, const char *, int) {
  note_debug_allocation();
  return GC_malloc(n);
}
void *GC_debug_malloc_atomic(size_t n, const char *, int) {
  note_debug_allocation();
  return GC_malloc_atomic(n);
}
void *GC_debug_malloc_uncollectable(size_t n, const char *, int) {
  note_debug_allocation();
  return GC_malloc_uncollectable(n);
}
void *GC_debug_malloc_atomic_uncollectable(size_t n, const char *, int) {
  note_debug_allocation();
  return GC_malloc_atomic_uncollectable(n);
}
void *GC_debug_malloc_stubborn(size_t n, const char *, int) {
  note_debug_allocation();
  return GC_malloc(n);
}
void *GC_debug_malloc_ignore_off_page(size_t n, const char *, int) {
  note_debug_allocation();
  return GC_malloc_ignore_off_page(n);
}
void *GC_debug_malloc_atomic_ignore_off_page(size_t n, const char *, int) {
  note_debug_allocation();
  return GC_malloc_atomic_ignore_off_page(n);
}
char *GC_debug_strdup(const char *s, const char *, int) {
  note_debug_allocation();
  return GC_strdup(s);
}
char *GC_debug_strndup(const char *s, size_t n, const char *, int) {
  note_debug_allocation();
  return GC_strndup(s, n);
}
void *GC_debug_malloc_replacement(size_t n) {
  note_debug_allocation();
  return GC_malloc(n);
}
void *GC_debug_realloc(void *p, size_t n, const char *, int) {
  note_debug_allocation();
  return GC_realloc(p, n);
}
void *GC_debug_realloc_replacement(void *p, size_t n) {
  note_debug_allocation();
  return GC_realloc(p, n);
}
void *GC_debug_generic_or_special_malloc(size_t n, int kind, const char *, int) {
  note_debug_allocation();
  return GC_generic_malloc(n, kind);
}
void GC_debug_free(void *p) { GC_free(p); }
void GC_debug_change_stubborn(const void *) {}
void GC_debug_end_stubborn_change(const void *) {}
void GC_debug_ptr_store_and_dirty(void *p, const void *q) { GC_ptr_store_and_dirty(p, q); }

// No debug headers: user pointers are object starts (gc_mark.h).
extern const size_t GC_debug_header_size;
const size_t GC_debug_header_size = 0;
size_t GC_get_debug_header_size(void) { return 0; }

}  // extern "C"
