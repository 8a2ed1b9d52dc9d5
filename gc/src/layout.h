// Layouts of typed objects: where their pointers are.
//
// A typed object's layout pointer sits in the last word of its slot (small objects) or in
// its span's client word (large objects); the marker reads it to scan only the pointer
// fields. Layouts are interned (one per distinct bitmap or callback) in metadata memory
// and never freed, so a layout pointer stays valid in any object forever.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dunegc/dunegc.h"

struct dunegc_layout_s {
  enum Type : uint32_t { kBitmap, kTrace };
  Type type;
  uint32_t nwords;        // kBitmap: words the bitmap covers
  dunegc_trace_fn trace;  // kTrace
  uint64_t bits[];         // kBitmap: (nwords + 63) / 64 words
};

// What a trace callback is given: the collector's visitor for one object.
struct dunegc_tracer {
  void (*visit)(dunegc_tracer *self, uintptr_t value);
};

namespace dunegc::gc {

using Layout = dunegc_layout_s;

inline constexpr size_t kMaxLayoutWords = size_t{1} << 20;

// Interns a layout (caller holds the collector lock). nullptr when out of memory.
const Layout *intern_bitmap_layout(const uint64_t *bits, size_t nwords);
const Layout *intern_trace_layout(dunegc_trace_fn fn);

}  // namespace dunegc::gc
