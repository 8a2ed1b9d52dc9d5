#include "dunegc/allocators/large_object_space.h"

#include <cstring>

namespace dunegc::allocators {

Span *LargeObjectSpace::allocate(size_t bytes, bool zero) {
  size_t npages = pages_for(bytes ? bytes : 1);
  Span *s = pages_.allocate(npages, SpanState::kLarge);
  if (!s) return nullptr;
  s->size = bytes;
  s->nobjs = 1;
  s->cls = 0;
  s->recip = 0;
  s->clear_bits();
  if (zero && !(s->page_flags & kPagesZeroed)) memset(reinterpret_cast<void *>(s->start), 0, bytes);
  s->page_flags &= uint8_t(~kPagesZeroed);  // from now on the owner writes it
  list_.push_front(s);
  stats_.objects++;
  stats_.bytes += bytes;
  stats_.page_bytes += npages << kPageShift;
  stats_.allocated_total++;
  return s;
}

void LargeObjectSpace::release(Span *s) {
  list_.remove(s);
  stats_.objects--;
  stats_.bytes -= s->size;
  stats_.page_bytes -= size_t(s->npages) << kPageShift;
  stats_.released_total++;
  pages_.release(s);
}

}  // namespace dunegc::allocators
