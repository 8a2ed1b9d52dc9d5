// The allocation fast paths, inline for every API layer over the collector (the native C
// API in api.cc, the Boehm-compatible one in gc/bdw): when the calling thread is
// registered and its free list for the size class is non-empty, an allocation is a
// thread-local load, a table lookup, a pop and a store -- no lock, no atomic, no call.
// A nullptr result means "take the slow path" (Collector::alloc_*).
#pragma once

#include <cstddef>

#include "layout.h"
#include "threads.h"

namespace dunegc::gc {

// Pops the calling thread's free list for (kind, n).
__attribute__((always_inline)) inline void *pop_cached(Kind kind, size_t n) {
  ThreadRecord *t = t_self;
  if (__builtin_expect(t == nullptr || n > kMaxSmallSize, 0)) return nullptr;
  void **list = &t->cache.lists[kind][allocators::size_to_class(n)];
  void *p = *list;
  if (__builtin_expect(p != nullptr, 1)) *list = *static_cast<void **>(p);
  return p;
}

// A conservative object: the rest of it was zeroed when its span was swept.
__attribute__((always_inline)) inline void *alloc_normal_fast(size_t n) {
  void *p = pop_cached(kNormal, n);
  if (p) *static_cast<void **>(p) = nullptr;
  return p;
}

// The bytes a typed request takes: at least the words its bitmap describes.
inline size_t typed_request(size_t n, const Layout *layout) {
  if (layout->type == Layout::kBitmap && n < size_t(layout->nwords) * sizeof(void *))
    n = size_t(layout->nwords) * sizeof(void *);
  return n;
}

// A small typed object carries its layout in the last word of its slot (n: bytes from
// typed_request; the slot holds n + one word).
__attribute__((always_inline)) inline void *alloc_typed_fast(size_t n, const Layout *layout) {
  size_t slot = n + sizeof(void *);
  void *p = pop_cached(kTyped, slot);
  if (p) {
    *static_cast<void **>(p) = nullptr;
    size_t size = allocators::class_size(allocators::size_to_class(slot));
    *reinterpret_cast<const Layout **>(static_cast<char *>(p) + size - sizeof(void *)) = layout;
  }
  return p;
}

}  // namespace dunegc::gc
