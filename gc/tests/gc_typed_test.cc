// Typed objects: only the words their layout names are pointers. Pointer-like values in the
// other words retain nothing -- by bitmap or by trace callback, small or large -- while the
// same values in a conservative object do (the control).
#include <gtest/gtest.h>

#include <cerrno>

#include "dunegc/dunegc.hpp"
#include "gc_test_util.h"

using namespace gctest;

namespace {

constexpr int kTargets = 64;

struct Record {  // word 0: a pointer; words 1..3: data that happens to look like pointers
  void *ptr;
  uintptr_t data[3];
};

void trace_record(void *obj, size_t, dunegc_tracer *t) {
  dunegc_trace_slot(t, &static_cast<Record *>(obj)->ptr);
}

// Holders are roots. volatile: the test never reads them back, and a store to a global
// nobody reads may otherwise be dropped.
void *volatile g_holders[kTargets];

// Each holder's ptr word keeps target 2i; its data words hold (pointers to) target 2i+1.
__attribute__((noinline)) void fill(Watch &w, int which, size_t size, dunegc_layout layout) {
  for (int i = 0; i < kTargets / 2; i++) {
    Record *h;
    switch (which) {
      case 0: h = static_cast<Record *>(dunegc_malloc_typed(size, layout)); break;
      default: h = static_cast<Record *>(dunegc_malloc(size)); break;
    }
    ASSERT_NE(h, nullptr);
    void *kept = dunegc_malloc(48), *not_kept = dunegc_malloc(48);
    w.watch(size_t(2 * i), kept);
    w.watch(size_t(2 * i + 1), not_kept);
    h->ptr = kept;
    h->data[0] = reinterpret_cast<uintptr_t>(not_kept);       // its start
    h->data[1] = reinterpret_cast<uintptr_t>(not_kept) + 16;  // an interior address
    h->data[2] = reinterpret_cast<uintptr_t>(not_kept);
    g_holders[i] = h;
  }
}

size_t alive_with_parity(const Watch &w, int parity) {
  size_t n = 0;
  for (int i = parity; i < kTargets; i += 2) n += w.alive(size_t(i));
  return n;
}

dunegc_layout record_bitmap() {
  uint64_t bits = 1;  // word 0 only
  return dunegc_layout_bitmap(&bits, 4);
}

}  // namespace

// Holders of `size` bytes with `layout`: what their ptr words reach survives, what their
// data words reach does not.
void expect_only_pointer_words_retain(size_t size, dunegc_layout layout) {
  init_or_die();
  Watch w(kTargets);
  fill(w, 0, size, layout);
  collect_clean();
  EXPECT_EQ(alive_with_parity(w, 0), size_t(kTargets / 2));  // through ptr: kept
  EXPECT_EQ(alive_with_parity(w, 1), 0u);                    // through data: not
}

TEST(Typed, BitmapLayoutScansOnlyItsPointerWords) { expect_only_pointer_words_retain(sizeof(Record), record_bitmap()); }

TEST(Typed, TraceCallbackLayoutScansOnlyWhatItReports) {
  expect_only_pointer_words_retain(sizeof(Record), dunegc_layout_trace(&trace_record));
}

// Words past the bitmap hold no pointers either, and the layout lives in the span.
TEST(Typed, LargeTypedObjectsKeepTheirLayout) { expect_only_pointer_words_retain(100000, record_bitmap()); }

TEST(Typed, TheSameWordsInAConservativeObjectRetainEverything) {
  init_or_die();
  Watch w(kTargets);
  fill(w, 1, sizeof(Record), nullptr);
  collect_clean();
  EXPECT_EQ(w.alive_count(), size_t(kTargets));
}

TEST(Typed, LayoutsAreInternedAndValidated) {
  init_or_die();
  capture_warnings();
  uint64_t a = 0b101, b = 0b101 | (uint64_t{1} << 10);  // bit 10 lies past nwords = 4
  EXPECT_EQ(dunegc_layout_bitmap(&a, 4), dunegc_layout_bitmap(&b, 4));
  EXPECT_NE(dunegc_layout_bitmap(&a, 4), dunegc_layout_bitmap(&a, 5));
  EXPECT_EQ(dunegc_layout_trace(&trace_record), dunegc_layout_trace(&trace_record));
  EXPECT_EQ(dunegc_layout_bitmap(&a, 0), nullptr);
  EXPECT_EQ(dunegc_layout_bitmap(nullptr, 4), nullptr);
  EXPECT_EQ(dunegc_layout_trace(nullptr), nullptr);
  EXPECT_TRUE(warned("dunegc_layout_bitmap"));
  EXPECT_EQ(dunegc_malloc_typed(16, nullptr), nullptr);
  // An object is at least as long as its bitmap, and typed objects come back zeroed.
  uint64_t wide[2] = {~uint64_t{0}, ~uint64_t{0}};
  auto *p = static_cast<uint64_t *>(dunegc_malloc_typed(8, dunegc_layout_bitmap(wide, 100)));
  ASSERT_NE(p, nullptr);
  EXPECT_GE(dunegc_size(p), 800u);
  for (int i = 0; i < 100; i++) ASSERT_EQ(p[i], 0u);
  // The C++ builder.
  EXPECT_EQ(dunegc::Layout::words(4, {0}).get(), record_bitmap());
}
