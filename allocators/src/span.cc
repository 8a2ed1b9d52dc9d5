#include <cstring>

#include "dunegc/alloc/span.h"

namespace dunegc::alloc {

void *build_free_list(Span *s, const std::atomic<uint64_t> *live, bool zero, unsigned *nfree) {
  void *head = nullptr;
  void **tail = &head;
  unsigned n = 0;
  const size_t size = s->size;
  const unsigned nobjs = s->nobjs;
  for (unsigned w = 0; w * 64 < nobjs; w++) {
    uint64_t free_bits = live ? ~live[w].load(std::memory_order_relaxed) : ~uint64_t{0};
    if (nobjs - w * 64 < 64) free_bits &= (uint64_t{1} << (nobjs - w * 64)) - 1;
    while (free_bits) {
      unsigned i = w * 64 + unsigned(__builtin_ctzll(free_bits));
      free_bits &= free_bits - 1;
      void *p = reinterpret_cast<void *>(s->object(i));
      if (zero) memset(p, 0, size);
      *tail = p;
      tail = static_cast<void **>(p);
      n++;
    }
  }
  *tail = nullptr;
  *nfree = n;
  return head;
}

}  // namespace dunegc::alloc
