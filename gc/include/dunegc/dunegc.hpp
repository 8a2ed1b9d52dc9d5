// dunegc.hpp -- the native C++ API of the dunegc collector.
//
// The same collector as <dunegc/dunegc.h>, with C++ types: an Options struct with
// defaults, typed allocation helpers that throw std::bad_alloc, a Layout builder for
// typed objects, RAII thread registration and an allocator for standard containers.
// Every function is an inline forwarder to the C API (one implementation, no overhead).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <new>
#include <utility>

#include "dunegc/dunegc.h"

namespace dunegc {

struct Options {
  size_t initial_heap_bytes = 0;
  size_t max_heap_bytes = 0;       // 0: no limit
  size_t reserve_bytes = 0;        // 0: derived
  unsigned markers = 0;            // 0: online CPUs
  double growth = 0;               // 0: default (1.0)
  size_t min_trigger_bytes = 0;    // 0: default (4 MiB)
  size_t mark_stack_entries = 0;   // 0: default
  int all_interior_pointers = -1;  // -1: keep current setting
  int scan_dynamic_libraries = -1;
  int java_finalization = -1;
  int finalize_on_demand = -1;
  int verify = -1;
  // Not yet implemented: requesting them makes init() fail with -ENOTSUP.
  const char *paging_backend = nullptr;
  bool concurrent = false;
  bool compaction = false;

  dunegc_options to_c() const {
    dunegc_options o;
    dunegc_options_init(&o);
    o.initial_heap_bytes = initial_heap_bytes;
    o.max_heap_bytes = max_heap_bytes;
    o.reserve_bytes = reserve_bytes;
    o.markers = markers;
    o.growth = growth;
    o.min_trigger_bytes = min_trigger_bytes;
    o.mark_stack_entries = mark_stack_entries;
    o.all_interior_pointers = all_interior_pointers;
    o.scan_dynamic_libraries = scan_dynamic_libraries;
    o.java_finalization = java_finalization;
    o.finalize_on_demand = finalize_on_demand;
    o.verify = verify;
    o.paging_backend = paging_backend;
    o.concurrent = concurrent;
    o.compaction = compaction;
    return o;
  }
};

// 0 or -errno (see dunegc_init).
inline int init(const Options &o = Options()) {
  dunegc_options c = o.to_c();
  return dunegc_init(&c);
}
inline bool initialized() { return dunegc_is_initialized(); }
inline const char *last_error() { return dunegc_last_error(); }

enum class Kind { kConservative, kAtomic, kUncollectable };

// Raw allocation: nullptr when out of memory.
inline void *alloc(size_t n) { return dunegc_malloc(n); }
inline void *alloc_atomic(size_t n) { return dunegc_malloc_atomic(n); }
inline void *alloc_uncollectable(size_t n) { return dunegc_malloc_uncollectable(n); }
inline void *alloc_ignore_off_page(size_t n) { return dunegc_malloc_ignore_off_page(n); }
inline void *alloc_atomic_ignore_off_page(size_t n) { return dunegc_malloc_atomic_ignore_off_page(n); }
inline void *alloc_many(size_t n) { return dunegc_malloc_many(n); }
inline void *realloc(void *p, size_t n) { return dunegc_realloc(p, n); }
inline int free(void *p) { return dunegc_free(p); }
inline size_t size(const void *p) { return dunegc_size(p); }
inline void *base(const void *p) { return dunegc_base(p); }

// Where a type's pointers are.
class Layout {
 public:
  Layout() = default;
  explicit Layout(dunegc_layout l) : l_(l) {}
  // Words (8-byte slots) that may hold pointers, by index, for objects of nwords words.
  static Layout words(size_t nwords, std::initializer_list<size_t> pointer_words) {
    uint64_t bits[16] = {};
    if (nwords > 16 * 64) return Layout();
    for (size_t w : pointer_words)
      if (w < nwords) bits[w / 64] |= uint64_t{1} << (w % 64);
    return Layout(dunegc_layout_bitmap(bits, nwords));
  }
  static Layout bitmap(const uint64_t *bits, size_t nwords) { return Layout(dunegc_layout_bitmap(bits, nwords)); }
  static Layout trace(dunegc_trace_fn fn) { return Layout(dunegc_layout_trace(fn)); }
  dunegc_layout get() const { return l_; }
  explicit operator bool() const { return l_ != nullptr; }

 private:
  dunegc_layout l_ = nullptr;
};

inline void *alloc_typed(size_t n, Layout l) { return dunegc_malloc_typed(n, l.get()); }
inline void trace_slot(dunegc_tracer *t, void *const *slot) { dunegc_trace_slot(t, slot); }

// Constructs a T in collected memory (conservatively scanned unless a layout is given).
// Its destructor never runs unless a finalizer is registered. Throws std::bad_alloc.
template <typename T, typename... Args>
T *make(Args &&...args) {
  void *p = dunegc_malloc(sizeof(T));
  if (!p) throw std::bad_alloc();
  return new (p) T(std::forward<Args>(args)...);
}
template <typename T, typename... Args>
T *make_atomic(Args &&...args) {
  void *p = dunegc_malloc_atomic(sizeof(T));
  if (!p) throw std::bad_alloc();
  return new (p) T(std::forward<Args>(args)...);
}
template <typename T, typename... Args>
T *make_typed(Layout l, Args &&...args) {
  void *p = dunegc_malloc_typed(sizeof(T), l.get());
  if (!p) throw std::bad_alloc();
  return new (p) T(std::forward<Args>(args)...);
}

// Roots and threads.
inline int add_roots(void *lo, void *hi) { return dunegc_add_roots(lo, hi); }
inline int remove_roots(void *lo, void *hi) { return dunegc_remove_roots(lo, hi); }
inline void clear_roots() { dunegc_clear_roots(); }
inline int register_thread(const void *stack_base = nullptr) { return dunegc_register_thread(stack_base); }
inline int unregister_thread() { return dunegc_unregister_thread(); }

// Registers the current thread for the scope's lifetime (unless it already was).
class ThreadScope {
 public:
  ThreadScope() : registered_here_(dunegc_register_thread(nullptr) == 0) {}
  ~ThreadScope() {
    if (registered_here_) dunegc_unregister_thread();
  }
  ThreadScope(const ThreadScope &) = delete;
  ThreadScope &operator=(const ThreadScope &) = delete;

 private:
  bool registered_here_;
};

// Collection.
inline void collect() { dunegc_collect(); }
inline bool collect_a_little() { return dunegc_collect_a_little() != 0; }

// Finalization and weak links.
enum class FinalizeOrder {
  kOrdered = DUNEGC_FINALIZE_ORDERED,
  kIgnoreSelf = DUNEGC_FINALIZE_IGNORE_SELF,
  kUnordered = DUNEGC_FINALIZE_UNORDERED,
};
inline int register_finalizer(void *obj, dunegc_finalizer fn, void *data = nullptr,
                              FinalizeOrder order = FinalizeOrder::kOrdered) {
  return dunegc_register_finalizer(obj, fn, data, static_cast<dunegc_finalize_order>(order), nullptr, nullptr);
}
inline int invoke_finalizers() { return dunegc_invoke_finalizers(); }
inline int register_disappearing_link(void **link, const void *obj) {
  return dunegc_register_disappearing_link(link, obj);
}
inline int unregister_disappearing_link(void **link) { return dunegc_unregister_disappearing_link(link); }

// Statistics.
using Stats = dunegc_stats;
inline Stats stats() {
  Stats s{};
  s.struct_size = sizeof s;
  dunegc_get_stats(&s);
  return s;
}

// A standard-library allocator over conservatively scanned collected memory: containers
// using it may hold pointers to collected objects. deallocate() frees explicitly.
template <typename T>
struct allocator {
  using value_type = T;
  allocator() noexcept = default;
  template <typename U>
  allocator(const allocator<U> &) noexcept {}
  T *allocate(size_t n) {
    void *p = dunegc_malloc(n * sizeof(T));
    if (!p) throw std::bad_alloc();
    return static_cast<T *>(p);
  }
  void deallocate(T *p, size_t) noexcept { dunegc_free(p); }
  template <typename U>
  bool operator==(const allocator<U> &) const noexcept { return true; }
};

}  // namespace dunegc
