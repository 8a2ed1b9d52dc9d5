#include <cstring>

#include "dunegc/allocators/span.h"

namespace dunegc::allocators {

void *build_free_list(Span *s, const uint64_t *live, bool zero, unsigned *nfree) {
  void *head = nullptr;
  void **tail = &head;
  unsigned n = 0;
  const size_t size = s->size;
  const unsigned nobjs = s->nobjs;
  for (unsigned w = 0; w * 64 < nobjs; w++) {
    uint64_t free_bits = live ? ~live[w] : ~uint64_t{0};
    if (nobjs - w * 64 < 64) free_bits &= (uint64_t{1} << (nobjs - w * 64)) - 1;
    while (free_bits) {
      // One run of adjacent free objects: zeroed with a single memset, then linked.
      unsigned b = unsigned(__builtin_ctzll(free_bits));
      uint64_t rest = ~(free_bits >> b);
      unsigned len = rest ? unsigned(__builtin_ctzll(rest)) : 64 - b;
      free_bits = b + len >= 64 ? 0 : free_bits & ~(((uint64_t{1} << len) - 1) << b);
      char *p = reinterpret_cast<char *>(s->object(w * 64 + b));
      if (zero) memset(p, 0, len * size);
      for (unsigned k = 0; k < len; k++, p += size) {
        *tail = p;
        tail = reinterpret_cast<void **>(p);
      }
      n += len;
    }
  }
  *tail = nullptr;
  *nfree = n;
  return head;
}

}  // namespace dunegc::allocators
