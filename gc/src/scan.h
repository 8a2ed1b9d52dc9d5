// Reading an object's (or a root range's) candidate pointers, shared by the marker and
// the heap verifier: a visitor v(uintptr_t word) sees every word that may be a pointer.
#pragma once

#include <cstdint>

#include "gc_heap.h"
#include "layout.h"

// Conservative scanning reads whole stacks and data segments, including the redzones
// AddressSanitizer plants there: those reads are legitimate. The word loop and the mark
// visitor are forced inline for speed -- except under ASan, where forcing code across the
// no_sanitize boundary either loses the exemption or leaves stale scope poison behind.
#define DUNEGC_NO_ASAN __attribute__((no_sanitize("address")))
#if defined(__SANITIZE_ADDRESS__)
#define DUNEGC_SCAN_INLINE
#else
#define DUNEGC_SCAN_INLINE __attribute__((always_inline))
#endif

namespace dunegc::gc {

template <typename V>
DUNEGC_NO_ASAN DUNEGC_SCAN_INLINE inline void scan_words(uintptr_t lo, uintptr_t hi, V &v) {
  lo = (lo + 7) & ~uintptr_t{7};
  hi &= ~uintptr_t{7};
  for (auto *p = reinterpret_cast<const uintptr_t *>(lo); p < reinterpret_cast<const uintptr_t *>(hi); p++)
    v(*p);
}

template <typename V>
__attribute__((always_inline)) inline void scan_bitmap(uintptr_t obj, const Layout *l, V &v) {
  const auto *words = reinterpret_cast<const uintptr_t *>(obj);
  for (uint32_t w = 0; w * 64 < l->nwords; w++) {
    uint64_t bits = l->bits[w];
    while (bits) {
      unsigned i = w * 64 + unsigned(__builtin_ctzll(bits));
      bits &= bits - 1;
      v(words[i]);
    }
  }
}

template <typename V>
inline void scan_trace(uintptr_t obj, size_t bytes, const Layout *l, V &v) {
  struct Tracer : dunegc_tracer {
    V *v;
  } t;
  t.visit = [](dunegc_tracer *self, uintptr_t w) { (*static_cast<Tracer *>(self)->v)(w); };
  t.v = &v;
  l->trace(reinterpret_cast<void *>(obj), bytes, &t);
}

// All candidate pointers of one object, by its kind.
template <typename V>
inline void scan_object(const ObjRef &r, V &v) {
  switch (r.span->kind) {
    case kNormal:
    case kUncollectable:
      scan_words(r.base, r.base + r.span->size, v);
      break;
    case kTyped:
      if (const Layout *l = GcHeap::layout_of(r)) {
        if (l->type == Layout::kBitmap) scan_bitmap(r.base, l, v);
        else scan_trace(r.base, GcHeap::usable_size(r), l, v);
      }
      break;
    default:
      break;
  }
}

}  // namespace dunegc::gc
