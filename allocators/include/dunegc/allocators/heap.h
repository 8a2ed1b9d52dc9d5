// Heap: a general-purpose explicit-free allocator (malloc/free) over PageHeap.
//
// Small objects come from per-thread caches: one free list per size class, popped and
// pushed without a lock or an atomic instruction. A cache refills from, and overflows
// into, a per-class central list (one mutex per class), which carves spans from the
// PageHeap and hands emptied spans back to it. Large objects go to the LargeObjectSpace.
// deallocate() finds the object's span through the pagemap, so a pointer that is not the
// start of an object of this heap is refused with -EINVAL instead of corrupting it.
// (A double free of a small object is not detected.)
//
// Several Heaps may coexist; each thread gets one cache per Heap it uses (found through
// a one-entry thread-local lookaside, then a pthread key), returned when the thread exits.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "dunegc/allocators/large_object_space.h"
#include "dunegc/allocators/page_heap.h"
#include "dunegc/allocators/size_classes.h"

namespace dunegc::allocators {

namespace detail {
// The last (Heap, cache) pair this thread used: the fast path's only thread-local read.
struct CacheLookaside {
  uint64_t heap_id;
  void *cache;
};
inline thread_local CacheLookaside t_lookaside __attribute__((tls_model("initial-exec")));
}  // namespace detail

struct HeapStats {
  PageHeapStats pages;
  LargeSpaceStats large;
  size_t small_bytes_in_use = 0;  // objects handed to callers (excludes thread caches)
  size_t small_bytes_cached = 0;  // free objects held in thread caches
  size_t thread_caches = 0;
  uint64_t small_spans_created = 0, small_spans_released = 0;
};

class Heap {
 public:
  struct Options {
    size_t reserve_bytes = size_t{32} << 30;
    size_t limit_bytes = 0;  // cap on committed memory; 0 = none
  };

  Heap();
  ~Heap();
  Heap(const Heap &) = delete;
  Heap &operator=(const Heap &) = delete;

  int init(const Options &opt);  // 0 or -errno
  int init() { return init(Options{}); }

  // nullptr (errno = ENOMEM) when out of memory. allocate(0) returns a unique object.
  void *allocate(size_t n) {
    if (n <= kMaxSmallSize) {
      unsigned cls = size_to_class(n);
      ThreadCache *tc = cache();
      if (tc) {
        FreeList &fl = tc->lists[cls];
        if (void *p = fl.head) {
          fl.head = *static_cast<void **>(p);
          fl.len.store(fl.len.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
          return p;
        }
      }
      return allocate_small_slow(cls);
    }
    return allocate_large(n, false);
  }
  void *allocate_zeroed(size_t n);
  // 0, or -EINVAL when p is not the start of a live object of this heap (p == nullptr: 0).
  int deallocate(void *p);
  // C realloc: nullptr p allocates; on failure the old object is untouched.
  void *reallocate(void *p, size_t n);
  size_t usable_size(const void *p) const;  // 0 when p is not an object start of this heap
  bool owns(const void *p) const { return pages_.in_heap(reinterpret_cast<uintptr_t>(p)); }

  void flush_thread_cache();       // return this thread's cached objects to the central lists
  size_t release_free_memory();    // decommit every free span; returns bytes
  HeapStats stats() const;
  PageHeap &pages() { return pages_; }

 private:
  struct FreeList {
    void *head = nullptr;
    std::atomic<uint32_t> len{0};  // written by the owner only; read by stats()
  };
  struct ThreadCache {
    FreeList lists[kNumClasses];
    Heap *heap = nullptr;
    ThreadCache *next = nullptr, *prev = nullptr;
  };
  struct alignas(64) Central {
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    SpanList nonempty;        // spans with a free object (free list or untouched tail)
    size_t outstanding = 0;   // objects handed to thread caches
  };

  ThreadCache *cache() {
    detail::CacheLookaside &l = detail::t_lookaside;
    if (l.heap_id == id_) return static_cast<ThreadCache *>(l.cache);
    return cache_slow();
  }
  ThreadCache *cache_slow();
  void *allocate_small_slow(unsigned cls);
  void *allocate_large(size_t n, bool zero);
  unsigned fetch(unsigned cls, unsigned want, void **head);
  void release_list(unsigned cls, void *head, unsigned n);
  void release_cache(ThreadCache *tc);
  static void thread_exit(void *tc);

  PageHeap pages_;
  LargeObjectSpace large_;
  mutable pthread_mutex_t large_mu_ = PTHREAD_MUTEX_INITIALIZER;
  mutable Central central_[kNumClasses];
  mutable pthread_mutex_t caches_mu_ = PTHREAD_MUTEX_INITIALIZER;
  ThreadCache *caches_ = nullptr;
  pthread_key_t key_{};
  bool key_made_ = false;
  uint64_t id_ = 0;  // distinguishes Heaps in the thread-local lookaside
  std::atomic<uint64_t> spans_created_{0}, spans_released_{0};
};

}  // namespace dunegc::allocators
