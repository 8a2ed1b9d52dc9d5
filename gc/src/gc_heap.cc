#include "gc_heap.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <emmintrin.h>

#include "report.h"

namespace dunegc::gc {

using allocators::kClasses;
using allocators::kPagesZeroed;

int GcHeap::init(const Config &c) {
  allocators::PageHeap::Options po;
  po.reserve_bytes = c.reserve_bytes;
  po.limit_bytes = c.limit_bytes;
  verify_ = c.verify;
  if (int rc = pages_.init(po); rc != 0) return rc;
  if (c.initial_bytes) return pages_.expand(c.initial_bytes);
  return 0;
}

Span *GcHeap::advance(ClassList &cl) {
  Span *s = cl.cursor;
  if (s) {
    cl.cursor = s->next;
    if (cl.presweep == s) cl.presweep = s->next;
  }
  return s;
}

void GcHeap::remove_span(ClassList &cl, Span *s) {
  if (cl.cursor == s) cl.cursor = s->next;
  if (cl.presweep == s) cl.presweep = s->next;
  cl.spans.remove(s);
}

// Poison covers an object but its first word (the free-list link) and, in typed spans,
// its last word: a stale pointer may still mark a free typed object, and the marker reads
// the layout there -- it must read "no layout", not poison.
static size_t poison_end(const Span *s) { return s->kind == kTyped ? s->size - sizeof(void *) : s->size; }

void GcHeap::poison_free_list(void *head, const Span *s) {
  size_t end = poison_end(s);
  for (void *p = head; p; p = *static_cast<void **>(p)) {
    memset(static_cast<char *>(p) + sizeof(void *), kPoison, end - sizeof(void *));
    if (end < s->size) *reinterpret_cast<void **>(static_cast<char *>(p) + end) = nullptr;
  }
}

uint8_t *GcHeap::new_marks(unsigned nobjs) {
  size_t len = marks_len(nobjs), bucket = len / 64;
  if (void *m = free_marks_[bucket]) {
    free_marks_[bucket] = *static_cast<void **>(m);
    memset(m, 0, len);
    return static_cast<uint8_t *>(m);
  }
  if (len > marks_room_) {
    marks_bump_ = static_cast<char *>(allocators::ChunkProvider::map_metadata(size_t{1} << 20));  // zeroed
    if (!marks_bump_) {
      marks_room_ = 0;
      return nullptr;
    }
    marks_room_ = size_t{1} << 20;
  }
  auto *m = reinterpret_cast<uint8_t *>(marks_bump_);
  marks_bump_ += len;
  marks_room_ -= len;
  return m;
}

void GcHeap::free_marks(uint8_t *m, unsigned nobjs) {
  if (!m) return;
  size_t bucket = marks_len(nobjs) / 64;
  *reinterpret_cast<void **>(m) = free_marks_[bucket];
  free_marks_[bucket] = m;
}

void GcHeap::release_span(Span *s) {
  free_marks(mark_bytes(s), s->nobjs);
  s->side = nullptr;
  pages_.release(s);
}

namespace {

// The live mask of a span from its mark bytes: bit i set when byte i is non-zero.
void live_mask(const uint8_t *marks, unsigned nobjs, uint64_t *mask, unsigned *live) {
  unsigned n = 0;
  const __m128i zero = _mm_setzero_si128();
  for (unsigned w = 0; w * 64 < nobjs; w++) {
    uint64_t m = 0;
    for (unsigned q = 0; q < 4; q++) {
      __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i *>(marks + w * 64 + q * 16));
      m |= uint64_t(uint16_t(~_mm_movemask_epi8(_mm_cmpeq_epi8(v, zero)))) << (q * 16);
    }
    if (nobjs - w * 64 < 64) m &= (uint64_t{1} << (nobjs - w * 64)) - 1;
    mask[w] = m;
    n += unsigned(__builtin_popcountll(m));
  }
  *live = n;
}

}  // namespace

void *GcHeap::sweep_span(ClassList &cl, Span *s, unsigned *n) {
  unswept_--;
  sweep_stats_.spans_swept++;
  *n = 0;
  uint64_t mask[allocators::kMaxObjectsPerSpan / 64];
  unsigned live;
  live_mask(mark_bytes(s), s->nobjs, mask, &live);
  if (live == 0) {
    remove_span(cl, s);
    if (verify_) memset(reinterpret_cast<void *>(s->start), kPoison, s->end() - s->start);
    release_span(s);
    sweep_stats_.spans_released++;
    return nullptr;
  }
  s->epoch = epoch_;
  clear_marks(s);
  if (live == s->nobjs) return nullptr;
  // Verifying, reclaimed objects are poisoned now and checked when handed out; else they
  // are zeroed now, just before the allocating thread uses them.
  bool zero = !verify_ && s->kind != kAtomic;
  void *head = allocators::build_free_list(s, mask, zero, n);
  if (verify_) poison_free_list(head, s);
  return head;
}

void *GcHeap::take_parked(Span *s, unsigned *n) {
  void *head = s->freelist;
  *n = s->used;
  s->freelist = nullptr;
  s->used = 0;
  if (verify_) {
    size_t end = poison_end(s);
    for (void *p = head; p; p = *static_cast<void **>(p)) {
      const unsigned char *b = static_cast<const unsigned char *>(p);
      for (size_t i = sizeof(void *); i < end; i++) {
        if (b[i] != kPoison) {
          fatal("verify: reclaimed object %p (%zu bytes) was written at offset %zu after the "
                "collector freed it: a live object was reclaimed, or a dangling pointer used",
                p, size_t(s->size), i);
        }
      }
      if (s->kind != kAtomic) memset(static_cast<char *>(p) + sizeof(void *), 0, s->size - sizeof(void *));
    }
  }
  return head;
}

Span *GcHeap::new_small_span(Kind kind, unsigned cls) {
  const allocators::SizeClass &sc = kClasses[cls];
  Span *s = pages_.allocate(sc.pages, SpanState::kSmall);
  if (!s) return nullptr;
  s->cls = uint8_t(cls);
  s->size = sc.size;
  s->recip = sc.recip;
  s->nobjs = uint16_t(sc.objects);
  s->kind = kind;
  s->client_flags = 0;
  s->epoch = epoch_;
  s->clear_bits();
  if (kind != kUncollectable && !(s->side = new_marks(s->nobjs))) {
    pages_.release(s);
    return nullptr;
  }
  lists_[kind][cls].spans.push_front(s);  // before the cursors: counts as swept
  return s;
}

void *GcHeap::refill(Kind kind, unsigned cls, unsigned *n) {
  ClassList &cl = lists_[kind][cls];
  while (Span *s = advance(cl)) {
    if (s->epoch == epoch_) {
      if (s->freelist) return take_parked(s, n);
      continue;
    }
    if (void *head = sweep_span(cl, s, n)) {
      if (!verify_) return head;
      // Verifying: objects were just poisoned; check and clean them like parked ones.
      s->freelist = head;
      s->used = uint16_t(*n);
      return take_parked(s, n);
    }
  }
  Span *s = new_small_span(kind, cls);
  if (!s) return nullptr;
  bool zero = kind != kAtomic && !(s->page_flags & kPagesZeroed);
  s->page_flags &= uint8_t(~kPagesZeroed);
  return allocators::build_free_list(s, nullptr, zero, n);
}

bool GcHeap::sweep_some(unsigned max_spans) {
  for (unsigned tries = 0; max_spans && unswept_ && tries < kCachedKinds * kNumClasses; tries++) {
    unsigned k = sweep_class_ / kNumClasses, c = sweep_class_ % kNumClasses;
    ClassList &cl = lists_[k][c];
    while (max_spans && cl.presweep) {
      Span *s = cl.presweep;
      cl.presweep = s->next;
      if (s->epoch == epoch_) continue;
      unsigned nfree;
      if (void *head = sweep_span(cl, s, &nfree)) {
        s->freelist = head;
        s->used = uint16_t(nfree);
      }
      max_spans--;
    }
    if (!cl.presweep) sweep_class_ = (sweep_class_ + 1) % (kCachedKinds * kNumClasses);
  }
  return unswept_ > 0;
}

Span *GcHeap::alloc_large(size_t bytes, Kind kind, uint8_t flags, const Layout *layout) {
  bytes = (bytes + allocators::kGranule - 1) & ~(allocators::kGranule - 1);
  Span *s = large_.allocate(bytes, kind != kAtomic);
  if (!s) return nullptr;
  if (kind != kUncollectable && !(s->side = new_marks(1))) {
    large_.release(s);
    return nullptr;
  }
  s->kind = kind;
  s->client_flags = flags;
  s->client = reinterpret_cast<uintptr_t>(layout);
  if (kind == kUncollectable) {
    s->set_bit(0);
    uncollectable_bytes_ += bytes;
  }
  return s;
}

void GcHeap::free_large(Span *s) {
  if (s->kind == kUncollectable) uncollectable_bytes_ -= s->size;
  if (verify_) memset(reinterpret_cast<void *>(s->start), kPoison, s->size);
  free_marks(mark_bytes(s), 1);
  s->side = nullptr;
  large_.release(s);
}

void *GcHeap::alloc_uncollectable(unsigned cls) {
  ClassList &cl = lists_[kUncollectable][cls];
  Span *s = cl.spans.head;
  for (; s; s = s->next)
    if (s->count_bits() < s->nobjs) break;
  if (!s && !(s = new_small_span(kUncollectable, cls))) return nullptr;
  // Keep spans with room at the front so the search above stays short.
  if (s != cl.spans.head) {
    cl.spans.remove(s);
    cl.spans.push_front(s);
  }
  for (unsigned w = 0; w * 64 < s->nobjs; w++) {
    uint64_t free_bits = ~s->bits[w].load(std::memory_order_relaxed);
    if (s->nobjs - w * 64 < 64) free_bits &= (uint64_t{1} << (s->nobjs - w * 64)) - 1;
    if (!free_bits) continue;
    unsigned i = w * 64 + unsigned(__builtin_ctzll(free_bits));
    s->set_bit(i);
    void *p = reinterpret_cast<void *>(s->object(i));
    memset(p, 0, s->size);
    uncollectable_bytes_ += s->size;
    return p;
  }
  return nullptr;  // unreachable: the span had room
}

void GcHeap::free_uncollectable(const ObjRef &r) {
  r.span->clear_bit(r.index);
  uncollectable_bytes_ -= r.span->size;
  if (verify_) memset(reinterpret_cast<void *>(r.base), kPoison, r.span->size);
}

void GcHeap::drop_cache(ThreadCache *c) {
  for (unsigned k = 0; k < kCachedKinds; k++) {
    for (unsigned cls = 1; cls < kNumClasses; cls++) {
      void *p = c->lists[k][cls];
      c->lists[k][cls] = nullptr;
      if (k == kAtomic) continue;  // never scanned: links are harmless
      while (p) {
        void *next = *static_cast<void **>(p);
        *static_cast<void **>(p) = nullptr;
        p = next;
      }
    }
  }
}

void GcHeap::prepare_marking() {
  for (unsigned k = 0; k < kCachedKinds; k++) {
    for (unsigned c = 1; c < kNumClasses; c++) {
      for (Span *s = lists_[k][c].cursor; s; s = s->next) {
        if (s->epoch != epoch_) {
          clear_marks(s);
        } else if (s->freelist) {
          ThreadCache one{};  // reuse drop_cache's link clearing for the parked list
          one.lists[k][c] = s->freelist;
          drop_cache(&one);
          s->freelist = nullptr;
          s->used = 0;
        }
      }
    }
  }
}

void GcHeap::reclaim() {
  large_.for_each([&](Span *s) {
    if (s->kind == kUncollectable) return;
    if (mark_bytes(s)[0]) {
      mark_bytes(s)[0] = 0;
    } else {
      free_large(s);
      sweep_stats_.large_released++;
    }
  });
  epoch_++;
  unswept_ = 0;
  for (unsigned k = 0; k < kCachedKinds; k++) {
    for (unsigned c = 1; c < kNumClasses; c++) {
      ClassList &cl = lists_[k][c];
      cl.cursor = cl.presweep = cl.spans.head;
      unswept_ += cl.spans.count;
    }
  }
  if (verify_) {
    // Sweep everything now so reclaimed memory is poisoned while the mutator runs.
    while (sweep_some(1u << 20)) {
    }
  }
  pages_.tick();
  pages_.decommit_idle(4);  // free spans unused for four collections go back to the kernel
}

}  // namespace dunegc::gc
