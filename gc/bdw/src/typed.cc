// Typed allocation (gc_typed.h) over dunegc's layouts.
//
// A descriptor is the interned bitmap layout itself (dunegc_layout_bitmap has Boehm's
// bit order); 0 means "no pointers", and kConservative, which no layout address can be,
// means "scan every word" (what Boehm also falls back to when it cannot build one).
// Arrays (GC_calloc_explicitly_typed) use one trace layout that repeats the element's
// bitmap; the element layout and count sit in the object's last three words.
#include <cerrno>
#include <cstring>

#include "alloc_fast.h"
#include "bdw.h"

using namespace dunegc::bdw;
using dunegc::gc::Layout;
using dunegc::gc::warn;

namespace {

constexpr GC_descr kConservative = 1;

struct ArrayInfo {  // at the end of an array object's usable bytes
  const Layout *elem;
  size_t elem_words;
  size_t count;  // written last: a collection before then sees an empty array
};

void trace_array(void *obj, size_t bytes, dunegc_tracer *t) {
  if (bytes < sizeof(ArrayInfo)) return;
  auto *info = reinterpret_cast<const ArrayInfo *>(static_cast<char *>(obj) + bytes - sizeof(ArrayInfo));
  size_t count = __atomic_load_n(&info->count, __ATOMIC_ACQUIRE);
  const Layout *l = info->elem;
  if (!count || !l || info->elem_words == 0) return;
  auto *const *words = static_cast<void *const *>(obj);
  for (size_t e = 0; e < count; e++, words += info->elem_words) {
    for (uint32_t w = 0; w * 64 < l->nwords; w++) {
      for (uint64_t bits = l->bits[w]; bits; bits &= bits - 1)
        dunegc_trace_slot(t, words + w * 64 + unsigned(__builtin_ctzll(bits)));
    }
  }
}

dunegc_layout array_layout() {
  static std::atomic<dunegc_layout> l{nullptr};
  dunegc_layout have = l.load(std::memory_order_acquire);
  if (!have) {
    have = dunegc_layout_trace(trace_array);  // interned: racing callers get the same one
    l.store(have, std::memory_order_release);
  }
  return have;
}

__attribute__((noinline)) void *typed_slow(size_t n, const Layout *l, bool off_page) {
  ensure_init();
  if (off_page && n + sizeof(void *) > dunegc::allocators::kMaxSmallSize)
    return C().alloc_large(dunegc::gc::typed_request(n, l), dunegc::gc::kTyped, dunegc::gc::kIgnoreOffPage, l);
  return dunegc_malloc_typed(n, l);
}

void *zeroed_atomic(size_t n) {
  void *p = GC_malloc_atomic(n);
  if (p) memset(p, 0, n);
  return p;
}

}  // namespace

extern "C" {

GC_descr GC_make_descriptor(const GC_word *bm, size_t len) {
  size_t last = 0;  // words up to the last pointer word
  for (size_t i = 0; i < len; i++)
    if (bm[i / 64] >> (i % 64) & 1) last = i + 1;
  if (last == 0) return 0;
  dunegc_layout l = dunegc_layout_bitmap(bm, last);
  return l ? reinterpret_cast<GC_descr>(l) : kConservative;  // the failure was warned
}

void *GC_malloc_explicitly_typed(size_t n, GC_descr d) {
  if (d == 0) return zeroed_atomic(n);
  if (d == kConservative) return GC_malloc(n);
  auto *l = reinterpret_cast<const Layout *>(d);
  n = dunegc::gc::typed_request(n, l);
  if (void *p = dunegc::gc::alloc_typed_fast(n, l)) return p;
  return typed_slow(n, l, false);
}

void *GC_malloc_explicitly_typed_ignore_off_page(size_t n, GC_descr d) {
  if (d == 0) {
    void *p = GC_malloc_atomic_ignore_off_page(n);
    if (p) memset(p, 0, n);
    return p;
  }
  if (d == kConservative) return GC_malloc_ignore_off_page(n);
  return typed_slow(n, reinterpret_cast<const Layout *>(d), true);
}

void *GC_calloc_explicitly_typed(size_t count, size_t elem_size, GC_descr d) {
  if (elem_size && count > SIZE_MAX / elem_size) {
    warn("GC_calloc_explicitly_typed(%zu, %zu): the size overflows", count, elem_size);
    return nullptr;
  }
  size_t bytes = count * elem_size;
  if (d == 0) return zeroed_atomic(bytes);
  if (d == kConservative) return GC_malloc(bytes);
  auto *l = reinterpret_cast<const Layout *>(d);
  if (elem_size % sizeof(GC_word) || elem_size < size_t(l->nwords) * sizeof(GC_word)) {
    warn("GC_calloc_explicitly_typed(%zu, %zu): the element size must be a multiple of the word and cover the "
         "descriptor's %u words",
         count, elem_size, l->nwords);
    return nullptr;
  }
  if (count <= 1) return GC_malloc_explicitly_typed(elem_size, d);
  if (bytes > SIZE_MAX - sizeof(ArrayInfo)) return nullptr;
  ensure_init();
  dunegc_layout al = array_layout();
  if (!al) return nullptr;
  void *p = dunegc_malloc_typed(bytes + sizeof(ArrayInfo), al);
  if (!p) return nullptr;
  auto *info = reinterpret_cast<ArrayInfo *>(static_cast<char *>(p) + dunegc_size(p) - sizeof(ArrayInfo));
  info->elem = l;
  info->elem_words = elem_size / sizeof(GC_word);
  __atomic_store_n(&info->count, count, __ATOMIC_RELEASE);
  return p;
}

}  // extern "C"
