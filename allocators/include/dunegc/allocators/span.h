// Span: a run of contiguous pages and the descriptor that says what it holds.
//
// Descriptors live outside the pages they describe (side metadata), so the heap's pages
// hold only objects: a page can later be protected, evacuated or handed to another address
// space without its metadata moving with it. A span is free (owned by the PageHeap), small
// (objects of one size class) or large (one object). The first cache line holds what a
// pointer lookup reads; the second is a per-object bitmap whose meaning belongs to the
// client (the collector records there which uncollectable objects are allocated; the
// manual heap leaves it unused), as does the `side` array a client may attach.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "dunegc/allocators/size_classes.h"

namespace dunegc::allocators {

enum class SpanState : uint8_t {
  kUnused = 0,  // descriptor not describing any pages
  kFree,        // in the PageHeap's free lists
  kSmall,       // objects of size class `cls`
  kLarge,       // one object of `size` bytes at `start`
};

// page_flags, set and read by the PageHeap.
inline constexpr uint8_t kPagesZeroed = 1;       // every byte is known to be zero
inline constexpr uint8_t kPagesDecommitted = 2;  // free and given back to the kernel

struct Span {
  // --- line 0: read by every pointer lookup ---
  uintptr_t start = 0;
  uint64_t size = 0;      // small: object size; large: object bytes
  uint32_t npages = 0;
  uint32_t recip = 0;     // small: see SizeClass::recip
  uint16_t nobjs = 0;     // small: objects in the span; large: 1
  uint8_t cls = 0;        // small: size class
  SpanState state = SpanState::kUnused;
  uint8_t kind = 0;         // client's tag (the collector's object kind)
  uint8_t client_flags = 0; // client's flags
  uint8_t page_flags = 0;   // kPages*
  uint8_t reserved_ = 0;
  uint16_t used = 0;        // manual heap: objects handed out from this span
  uint16_t bump = 0;        // manual heap: objects never handed out start at this index
  void *freelist = nullptr; // objects free in this span, linked through their first word
  Span *next = nullptr;     // links of whichever list owns the span
  Span *prev = nullptr;
  uint64_t epoch = 0;       // free: PageHeap tick when freed; in use: the client's
  uintptr_t client = 0;     // client word (the collector: a large typed object's layout)
  void *side = nullptr;     // client's per-span side array (the collector: mark bytes)

  // --- line 2: the client's per-object bitmap ---
  alignas(64) std::atomic<uint64_t> bits[kMaxObjectsPerSpan / 64];

  uintptr_t end() const { return start + (uintptr_t(npages) << kPageShift); }
  bool contains(uintptr_t p) const { return p - start < (uintptr_t(npages) << kPageShift); }
  // Index of the object containing p (small spans; p inside the span). May be >= nobjs
  // when p lies in the tail the objects do not fill.
  unsigned index_of(uintptr_t p) const {
    return unsigned(((p - start) * uint64_t(recip)) >> 32);
  }
  uintptr_t object(unsigned i) const { return start + uintptr_t(i) * size; }

  bool test_bit(unsigned i) const {
    return (bits[i >> 6].load(std::memory_order_relaxed) >> (i & 63)) & 1;
  }
  // Sets bit i; returns true when this call set it (it was clear).
  bool set_bit_atomic(unsigned i) {
    uint64_t m = uint64_t{1} << (i & 63);
    std::atomic<uint64_t> &w = bits[i >> 6];
    if (w.load(std::memory_order_relaxed) & m) return false;
    return !(w.fetch_or(m, std::memory_order_relaxed) & m);
  }
  void set_bit(unsigned i) {
    bits[i >> 6].store(bits[i >> 6].load(std::memory_order_relaxed) | (uint64_t{1} << (i & 63)),
                       std::memory_order_relaxed);
  }
  void clear_bit(unsigned i) {
    bits[i >> 6].store(bits[i >> 6].load(std::memory_order_relaxed) & ~(uint64_t{1} << (i & 63)),
                       std::memory_order_relaxed);
  }
  void clear_bits() {
    for (auto &w : bits) w.store(0, std::memory_order_relaxed);
  }
  unsigned count_bits() const {
    unsigned n = 0;
    for (const auto &w : bits) n += unsigned(__builtin_popcountll(w.load(std::memory_order_relaxed)));
    return n;
  }
};

// An intrusive doubly-linked list of spans (through next/prev); a span is on at most one.
struct SpanList {
  Span *head = nullptr;
  size_t count = 0;

  bool empty() const { return head == nullptr; }
  void push_front(Span *s) {
    s->prev = nullptr;
    s->next = head;
    if (head) head->prev = s;
    head = s;
    count++;
  }
  void remove(Span *s) {
    if (s->prev) s->prev->next = s->next;
    else head = s->next;
    if (s->next) s->next->prev = s->prev;
    s->next = s->prev = nullptr;
    count--;
  }
  Span *pop_front() {
    Span *s = head;
    if (s) remove(s);
    return s;
  }
};

// Threads a free list through the objects of a small span whose bit in `live` is clear
// (live == nullptr: all of them),
// in address order, and returns its head (nullptr when every object is live); *nfree gets
// the count. With zero, each free object is cleared first (callers that hand out memory
// as zeroed pass true unless the span's pages are known to be zero).
void *build_free_list(Span *s, const uint64_t *live, bool zero, unsigned *nfree);

}  // namespace dunegc::allocators
