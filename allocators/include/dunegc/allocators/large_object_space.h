// LargeObjectSpace: objects above kMaxSmallSize, one span each.
//
// A large object starts on a page boundary and owns whole pages, so freeing it gives the
// pages straight back to the PageHeap (where idle ones are decommitted) and pointer lookup
// needs no size-class arithmetic. The space keeps a list of its spans so a client can walk
// them (the collector sweeps large objects from it). Not synchronised: the owner locks.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dunegc/allocators/page_heap.h"
#include "dunegc/allocators/span.h"

namespace dunegc::allocators {

struct LargeSpaceStats {
  size_t objects = 0;
  size_t bytes = 0;        // object bytes
  size_t page_bytes = 0;   // pages they occupy
  uint64_t allocated_total = 0, released_total = 0;  // objects, ever
};

class LargeObjectSpace {
 public:
  explicit LargeObjectSpace(PageHeap &pages) : pages_(pages) {}

  // A span holding one object of `bytes` bytes at span->start; its memory is zero when
  // `zero` (skipped for pages the PageHeap knows to be zero). nullptr when the PageHeap
  // cannot supply the pages.
  Span *allocate(size_t bytes, bool zero);
  void release(Span *s);

  // Calls f(span) for each large object; f may release the span it is given.
  template <typename F>
  void for_each(F &&f) {
    for (Span *s = list_.head, *next; s; s = next) {
      next = s->next;
      f(s);
    }
  }

  LargeSpaceStats stats() const { return stats_; }

 private:
  PageHeap &pages_;
  SpanList list_;
  LargeSpaceStats stats_;
};

}  // namespace dunegc::allocators
