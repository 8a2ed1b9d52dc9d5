// GcHeap: the collector's view of the allocators -- object kinds, per-class span lists,
// lazy sweeping, and the mapping from any word to the object it points into.
//
// Every small span holds objects of one (kind, size class) and sits on that class's list.
// A collection increments the heap epoch, which makes every span "unswept"; allocating
// threads then sweep spans lazily, one at a time, when they need a fresh free list
// (refill): a span's mark bits say which objects survived, the others are threaded into a
// free list (zeroed unless the kind is atomic) and the mark bits are cleared. A span with
// no survivor goes back to the PageHeap. Spans not reached before the next collection
// simply have their (stale) mark bits cleared then: unmarked garbage stays garbage.
//
// Uncollectable objects keep a permanently set bit while allocated (the bit means
// "allocated" for them) and are never swept; they are roots. Large objects (one span
// each) are swept eagerly at the end of each collection. Not thread-safe: the collector
// calls it with its lock held or with the world stopped; resolve() is read-only.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "dunegc/allocators/large_object_space.h"
#include "dunegc/allocators/page_heap.h"
#include "dunegc/allocators/size_classes.h"
#include "dunegc/allocators/span.h"
#include "layout.h"

namespace dunegc::gc {

using allocators::kMaxSmallSize;
using allocators::kNumClasses;
using allocators::kPageSize;
using allocators::Span;
using allocators::SpanState;

enum Kind : uint8_t {
  kNormal = 0,         // conservatively scanned
  kAtomic = 1,         // never scanned
  kTyped = 2,          // scanned by layout (pointer in the slot's last word / span client)
  kUncollectable = 3,  // scanned as a root; freed explicitly only
  kNumKinds = 4,
};
inline constexpr unsigned kCachedKinds = 3;  // kinds with per-thread free lists

// Span::client_flags
inline constexpr uint8_t kIgnoreOffPage = 1;  // large: only pointers into page 0 count

// The poison written over reclaimed objects when verifying.
inline constexpr unsigned char kPoison = 0xdb;

// A thread's allocation buffers: one free list per cached kind and size class, linked
// through the objects' first words (the rest of a non-atomic object is already zero).
struct ThreadCache {
  void *lists[kCachedKinds][kNumClasses];
};

struct ObjRef {
  Span *span;
  unsigned index;  // object index in a small span; 0 for large
  uintptr_t base;
};

// Mark state. Collectable spans carry a side array of one mark byte per object (span->side,
// a multiple of 64 bytes): parallel markers set bytes with plain stores, no atomic
// read-modify-write; two markers racing on one object both scan it, which is harmless.
// Uncollectable spans have no mark bytes: their allocated bit is their mark.
inline uint8_t *mark_bytes(const Span *s) { return static_cast<uint8_t *>(s->side); }
inline bool is_marked(const ObjRef &r) {
  if (r.span->kind == kUncollectable) return r.span->test_bit(r.index);
  return std::atomic_ref<uint8_t>(mark_bytes(r.span)[r.index]).load(std::memory_order_relaxed) != 0;
}
// Single-threaded marking (the collecting thread outside parallel rounds). Returns
// whether this call marked it.
inline bool set_marked(const ObjRef &r) {
  if (r.span->kind == kUncollectable) return false;
  std::atomic_ref<uint8_t> m(mark_bytes(r.span)[r.index]);
  if (m.load(std::memory_order_relaxed)) return false;
  m.store(1, std::memory_order_relaxed);
  return true;
}

struct SweepStats {
  uint64_t spans_swept = 0;
  uint64_t spans_released = 0;
  uint64_t large_released = 0;
};

class GcHeap {
 public:
  struct Config {
    size_t reserve_bytes;
    size_t limit_bytes;
    size_t initial_bytes;
    bool verify;
  };

  GcHeap() : large_(pages_) {}
  int init(const Config &c);

  // The object p points into (or at, when !interior), if any.
  bool resolve(uintptr_t p, bool interior, ObjRef *r) const {
    Span *s = pages_.span_of(p);
    if (!s) return false;
    if (s->state == SpanState::kSmall) {
      unsigned i = s->index_of(p);
      if (i >= s->nobjs) return false;
      uintptr_t b = s->object(i);
      if (!interior && b != p) return false;
      *r = {s, i, b};
      return true;
    }
    if (s->state == SpanState::kLarge) {
      uintptr_t off = p - s->start;
      if (off >= s->size || (off && !interior) ||
          (off >= kPageSize && (s->client_flags & kIgnoreOffPage)))
        return false;
      *r = {s, 0, s->start};
      return true;
    }
    return false;
  }
  static const Layout *layout_of(const ObjRef &r) {
    return r.span->state == SpanState::kSmall
               ? *reinterpret_cast<const Layout *const *>(r.base + r.span->size - sizeof(void *))
               : reinterpret_cast<const Layout *>(r.span->client);
  }
  // Bytes the caller may use in an object (typed small objects lose their layout word).
  static size_t usable_size(const ObjRef &r) {
    return r.span->kind == kTyped && r.span->state == SpanState::kSmall ? r.span->size - sizeof(void *)
                                                                          : r.span->size;
  }

  uintptr_t base() const { return pages_.base(); }
  uintptr_t frontier() const { return pages_.frontier(); }
  allocators::PageHeap &pages() { return pages_; }
  const allocators::PageHeap &pages() const { return pages_; }

  // --- allocation (collector lock held) ---
  // A free list of (kind, cls) objects from lazily swept or new spans; *n gets its length.
  // nullptr when the PageHeap cannot supply a span (limit or reservation reached).
  void *refill(Kind kind, unsigned cls, unsigned *n);
  Span *alloc_large(size_t bytes, Kind kind, uint8_t flags, const Layout *layout);
  void *alloc_uncollectable(unsigned cls);
  void free_uncollectable(const ObjRef &r);
  void free_large(Span *s);
  // Lazily sweeps up to max_spans spans, leaving their free lists parked for refill.
  // Returns whether spans remain unswept.
  bool sweep_some(unsigned max_spans);
  size_t unswept_spans() const { return unswept_; }

  // --- collection (world stopped) ---
  // Empties a thread's free lists, clearing their link words so a stale pointer into a
  // free object cannot drag a chain of free objects into the next marking.
  void drop_cache(ThreadCache *c);
  // Before marking: clear the stale bits of spans left unswept, drop parked free lists.
  void prepare_marking();
  // After marking: free unmarked large objects, start a new sweep epoch, and (verifying)
  // sweep every span now, poisoning what is reclaimed.
  void reclaim();
  // Calls f(ObjRef) for each marked (or uncollectable) object of a scanned kind.
  template <typename F>
  void for_each_marked_object(F &&f);
  // Calls f(Span*) for every uncollectable span, small or large.
  template <typename F>
  void for_each_uncollectable_span(F &&f);
  // Bytes of live uncollectable objects.
  size_t uncollectable_bytes() const { return uncollectable_bytes_; }

  SweepStats sweep_stats() const { return sweep_stats_; }
  allocators::LargeSpaceStats large_stats() const { return large_.stats(); }
  bool verifying() const { return verify_; }

 private:
  struct ClassList {
    allocators::SpanList spans;
    Span *cursor = nullptr;    // refill looks for reusable spans from here on
    Span *presweep = nullptr;  // sweep_some() works from here (never behind cursor)
  };

  Span *advance(ClassList &cl);
  void remove_span(ClassList &cl, Span *s);
  // Sweeps a stale span. Returns its free list (or nullptr: full, or empty and released).
  void *sweep_span(ClassList &cl, Span *s, unsigned *n);
  void *take_parked(Span *s, unsigned *n);
  Span *new_small_span(Kind kind, unsigned cls);
  void release_span(Span *s);
  void poison_free_list(void *head, const Span *s);
  // Mark-byte arrays: 64-byte multiples from metadata blocks, one free list per length.
  uint8_t *new_marks(unsigned nobjs);
  void free_marks(uint8_t *m, unsigned nobjs);
  static size_t marks_len(unsigned nobjs) { return (size_t(nobjs) + 63) & ~size_t{63}; }
  static void clear_marks(Span *s) { memset(s->side, 0, marks_len(s->nobjs)); }

  allocators::PageHeap pages_;
  allocators::LargeObjectSpace large_;
  ClassList lists_[kNumKinds][kNumClasses];
  uint64_t epoch_ = 1;
  size_t unswept_ = 0;
  unsigned sweep_class_ = 0;  // sweep_some()'s round-robin position
  size_t uncollectable_bytes_ = 0;
  bool verify_ = false;
  void *free_marks_[allocators::kMaxObjectsPerSpan / 64 + 1] = {};
  char *marks_bump_ = nullptr;
  size_t marks_room_ = 0;
  SweepStats sweep_stats_;
};

template <typename F>
void GcHeap::for_each_marked_object(F &&f) {
  for (unsigned k = 0; k < kNumKinds; k++) {
    if (k == kAtomic) continue;
    for (unsigned c = 1; c < kNumClasses; c++) {
      for (Span *s = lists_[k][c].spans.head; s; s = s->next) {
        for (unsigned i = 0; i < s->nobjs; i++) {
          ObjRef r{s, i, s->object(i)};
          if (is_marked(r)) f(r);
        }
      }
    }
  }
  large_.for_each([&](Span *s) {
    ObjRef r{s, 0, s->start};
    if (s->kind != kAtomic && is_marked(r)) f(r);
  });
}

template <typename F>
void GcHeap::for_each_uncollectable_span(F &&f) {
  for (unsigned c = 1; c < kNumClasses; c++)
    for (Span *s = lists_[kUncollectable][c].spans.head; s; s = s->next) f(s);
  large_.for_each([&](Span *s) {
    if (s->kind == kUncollectable) f(s);
  });
}

}  // namespace dunegc::gc
