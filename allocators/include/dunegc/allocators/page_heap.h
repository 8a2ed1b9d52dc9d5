// PageHeap: spans of whole pages carved from one ChunkProvider reservation.
//
// Free spans are kept in per-length lists (exact lengths below kBuckets pages, one
// best-fit list above) and coalesced with free neighbours on release, found through the
// pagemap: one entry per page of the reservation pointing at the span that covers it.
// Pages of in-use spans all map to their span (so any interior address resolves in O(1),
// which conservative pointer lookup needs); a free span maps only its first and last page
// (for coalescing) and its interior pages to nullptr, so that a stale lookup can never
// reach a recycled descriptor.
//
// Memory is committed at the frontier (the high-water mark of the reservation) in steps of
// Options::grow_bytes, never beyond Options::limit_bytes of committed memory. Free spans
// that stay unused for a while can be decommitted (decommit_idle); decommitted and
// committed free spans are kept apart and never merged, so the committed-bytes figure is
// exact. Thread-safe: one internal mutex; span_of() takes no lock.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "dunegc/allocators/chunk_provider.h"
#include "dunegc/allocators/span.h"

namespace dunegc::allocators {

struct PageHeapStats {
  size_t reserved_bytes = 0;     // the reservation
  size_t committed_bytes = 0;    // in-use + free committed pages (the "heap size")
  size_t in_use_bytes = 0;       // pages of small and large spans
  size_t free_bytes = 0;         // committed pages in free spans
  size_t decommitted_bytes = 0;  // free pages given back to the kernel
  size_t limit_bytes = 0;        // 0: none
  size_t spans_in_use = 0;
  uint64_t grow_calls = 0;       // frontier extensions
  uint64_t decommitted_total = 0;  // bytes ever decommitted
};

class PageHeap {
 public:
  static constexpr size_t kBuckets = 128;  // exact free lists for 1..127 pages

  struct Options {
    size_t reserve_bytes = size_t{32} << 30;  // address space only
    size_t grow_bytes = size_t{1} << 20;      // commit step at the frontier
    size_t limit_bytes = 0;                   // cap on committed bytes; 0 = none
  };

  // Why the last allocate() returned nullptr.
  enum class Failure { kNone, kLimit, kReservation, kSystem };

  PageHeap();
  ~PageHeap();
  PageHeap(const PageHeap &) = delete;
  PageHeap &operator=(const PageHeap &) = delete;

  int init(const Options &opt);  // 0 or -errno (-EINVAL for a bad option)

  // A span of exactly npages pages in state `state` (kSmall or kLarge), all its pages
  // mapped to it; page_flags tell whether its memory is known to be zero. nullptr when the
  // limit or the reservation is reached (see last_failure()).
  Span *allocate(size_t npages, SpanState state);
  // Returns an in-use span's pages; its memory becomes free (contents undefined).
  void release(Span *s);

  // Commits (at least) `bytes` more at the frontier as free pages, within the limit.
  int expand(size_t bytes);
  // Decommits free spans released at least `min_age` ticks ago; returns bytes decommitted.
  size_t decommit_idle(uint64_t min_age);
  void tick() { tick_.fetch_add(1, std::memory_order_relaxed); }

  void set_limit(size_t bytes);
  size_t limit() const { return limit_; }
  Failure last_failure() const { return last_failure_; }

  // The span covering p, or nullptr when p is not in a committed page of the heap or lies
  // inside a free span. Lock-free; callers that race with release() of p's span must
  // re-check the state. A free span's first/last page return it (state kFree).
  Span *span_of(uintptr_t p) const {
    uintptr_t off = p - base_;
    if (off >= frontier_off_.load(std::memory_order_relaxed)) return nullptr;
    return pagemap_[off >> kPageShift].load(std::memory_order_relaxed);
  }
  bool in_heap(uintptr_t p) const {
    return p - base_ < frontier_off_.load(std::memory_order_relaxed);
  }
  uintptr_t base() const { return base_; }
  // The pagemap itself, for lookups that have already range-checked against frontier().
  const std::atomic<Span *> *pagemap() const { return pagemap_; }
  // End of the range ever committed (the frontier).
  uintptr_t frontier() const { return base_ + frontier_off_.load(std::memory_order_relaxed); }

  PageHeapStats stats() const;
  size_t committed_bytes() const { return committed_.load(std::memory_order_relaxed); }

 private:
  struct FreeSet {
    SpanList exact[kBuckets];
    SpanList big;
  };

  Span *new_descriptor();
  void delete_descriptor(Span *s);
  void map_span(Span *s, Span *value);   // every page -> value
  // first/last -> s; interior -> nullptr when clear_interior (else known to be nullptr)
  void map_free(Span *s, bool clear_interior);
  FreeSet &set_of(const Span *s) { return (s->page_flags & kPagesDecommitted) ? returned_ : free_; }
  void insert_free(Span *s);
  void remove_free(Span *s);
  Span *join(Span *lo, Span *hi);
  Span *coalesce(Span *s);
  Span *find_fit(FreeSet &set, size_t npages);
  Span *grow(size_t npages);
  Span *carve(Span *s, size_t npages);
  bool within_limit(size_t extra) const {
    return limit_ == 0 || committed_.load(std::memory_order_relaxed) + extra <= limit_;
  }

  mutable pthread_mutex_t mu_ = PTHREAD_MUTEX_INITIALIZER;
  ChunkProvider chunks_;
  uintptr_t base_ = 0;
  std::atomic<Span *> *pagemap_ = nullptr;
  size_t pagemap_bytes_ = 0;
  std::atomic<uintptr_t> frontier_off_{0};
  std::atomic<size_t> committed_{0};
  size_t in_use_ = 0, free_committed_ = 0, decommitted_ = 0, spans_in_use_ = 0;
  uint64_t grow_calls_ = 0, decommitted_total_ = 0;
  size_t limit_ = 0;
  size_t grow_bytes_ = 0;
  std::atomic<uint64_t> tick_{0};
  Failure last_failure_ = Failure::kNone;
  FreeSet free_, returned_;
  // Descriptor arena: blocks of Spans from map_metadata, recycled through a free list.
  Span *free_descriptors_ = nullptr;
  void *arena_blocks_ = nullptr;  // each block's first word links to the next block
};

}  // namespace dunegc::allocators
