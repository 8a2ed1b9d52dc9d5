#include "dunegc/allocators/page_heap.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <new>

namespace dunegc::allocators {

namespace {

constexpr size_t kArenaBlock = size_t{1} << 20;

struct Lock {
  explicit Lock(pthread_mutex_t &m) : m_(m) { pthread_mutex_lock(&m_); }
  ~Lock() { pthread_mutex_unlock(&m_); }
  pthread_mutex_t &m_;
};

}  // namespace

PageHeap::PageHeap() = default;

PageHeap::~PageHeap() {
  if (pagemap_) munmap(pagemap_, pagemap_bytes_);
  while (arena_blocks_) {
    void *next = *static_cast<void **>(arena_blocks_);
    ChunkProvider::unmap_metadata(arena_blocks_, kArenaBlock);
    arena_blocks_ = next;
  }
}

int PageHeap::init(const Options &opt) {
  if (pagemap_) return -EBUSY;
  if (opt.grow_bytes == 0 || opt.reserve_bytes < kPageSize) return -EINVAL;
  if (int rc = chunks_.reserve(opt.reserve_bytes); rc != 0) return rc;
  base_ = chunks_.base();
  pagemap_bytes_ = (chunks_.size() >> kPageShift) * sizeof(*pagemap_);
  void *pm = mmap(nullptr, pagemap_bytes_, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (pm == MAP_FAILED) return -errno;
  pagemap_ = static_cast<std::atomic<Span *> *>(pm);  // zero-filled: every entry nullptr
  grow_bytes_ = (opt.grow_bytes + kPageSize - 1) & ~(kPageSize - 1);
  limit_ = opt.limit_bytes;
  return 0;
}

Span *PageHeap::new_descriptor() {
  if (!free_descriptors_) {
    void *block = ChunkProvider::map_metadata(kArenaBlock);
    if (!block) return nullptr;
    *static_cast<void **>(block) = arena_blocks_;
    arena_blocks_ = block;
    auto *first = reinterpret_cast<Span *>(static_cast<char *>(block) + alignof(Span));
    size_t n = (kArenaBlock - alignof(Span)) / sizeof(Span);
    for (size_t i = 0; i < n; i++) {
      Span *s = new (first + i) Span();
      s->next = free_descriptors_;
      free_descriptors_ = s;
    }
  }
  Span *s = free_descriptors_;
  free_descriptors_ = s->next;
  return new (s) Span();
}

void PageHeap::delete_descriptor(Span *s) {
  s->state = SpanState::kUnused;
  s->next = free_descriptors_;
  free_descriptors_ = s;
}

void PageHeap::map_span(Span *s, Span *value) {
  size_t first = (s->start - base_) >> kPageShift;
  for (size_t i = 0; i < s->npages; i++) pagemap_[first + i].store(value, std::memory_order_relaxed);
}

void PageHeap::map_free(Span *s, bool clear_interior) {
  size_t first = (s->start - base_) >> kPageShift, last = first + s->npages - 1;
  if (clear_interior)
    for (size_t i = first + 1; i < last; i++) pagemap_[i].store(nullptr, std::memory_order_relaxed);
  pagemap_[first].store(s, std::memory_order_relaxed);
  pagemap_[last].store(s, std::memory_order_relaxed);
}

void PageHeap::insert_free(Span *s) {
  FreeSet &set = set_of(s);
  if (s->npages < kBuckets) set.exact[s->npages].push_front(s);
  else set.big.push_front(s);
}

void PageHeap::remove_free(Span *s) {
  FreeSet &set = set_of(s);
  if (s->npages < kBuckets) set.exact[s->npages].remove(s);
  else set.big.remove(s);
}

// Joins free span hi into its left neighbour lo (both out of the lists); the pages where
// they met become interior pages of the result.
Span *PageHeap::join(Span *lo, Span *hi) {
  size_t lo_first = (lo->start - base_) >> kPageShift, hi_first = lo_first + lo->npages;
  if (lo->npages > 1) pagemap_[hi_first - 1].store(nullptr, std::memory_order_relaxed);
  if (hi->npages > 1) pagemap_[hi_first].store(nullptr, std::memory_order_relaxed);
  lo->npages += hi->npages;
  lo->page_flags &= hi->page_flags;
  lo->epoch = std::max(lo->epoch, hi->epoch);
  pagemap_[lo_first + lo->npages - 1].store(lo, std::memory_order_relaxed);
  delete_descriptor(hi);
  return lo;
}

// Merges free span s (mapped, in no list) with free neighbours in the same commit state.
Span *PageHeap::coalesce(Span *s) {
  const uint8_t state = s->page_flags & kPagesDecommitted;
  auto mergeable = [&](Span *n) {
    return n && n->state == SpanState::kFree && (n->page_flags & kPagesDecommitted) == state;
  };
  size_t first = (s->start - base_) >> kPageShift;
  if (first > 0) {
    Span *prev = pagemap_[first - 1].load(std::memory_order_relaxed);  // its last page
    if (mergeable(prev)) {
      remove_free(prev);
      s = join(prev, s);
      first = (s->start - base_) >> kPageShift;
    }
  }
  size_t after = first + s->npages;
  if (after < (frontier_off_.load(std::memory_order_relaxed) >> kPageShift)) {
    Span *next = pagemap_[after].load(std::memory_order_relaxed);  // its first page
    if (mergeable(next)) {
      remove_free(next);
      s = join(s, next);
    }
  }
  return s;
}

Span *PageHeap::find_fit(FreeSet &set, size_t npages) {
  for (size_t b = npages; b < kBuckets; b++) {
    if (Span *s = set.exact[b].head) {
      set.exact[b].remove(s);
      return s;
    }
  }
  Span *best = nullptr;
  for (Span *s = set.big.head; s; s = s->next) {
    if (s->npages >= npages &&
        (!best || s->npages < best->npages || (s->npages == best->npages && s->start < best->start)))
      best = s;
  }
  if (best) set.big.remove(best);
  return best;
}

// Commits fresh pages at the frontier; the new free span (coalesced with a free committed
// span just below the frontier) is returned in no list.
Span *PageHeap::grow(size_t npages) {
  size_t need = npages << kPageShift;
  size_t off = frontier_off_.load(std::memory_order_relaxed);
  size_t room = chunks_.size() - off;
  if (need > room) {
    last_failure_ = Failure::kReservation;
    return nullptr;
  }
  size_t want = std::min(std::max(need, grow_bytes_), room);
  if (!within_limit(want)) want = need;
  if (!within_limit(want)) {
    last_failure_ = Failure::kLimit;
    return nullptr;
  }
  Span *s = new_descriptor();
  if (!s || chunks_.commit(base_ + off, want) != 0) {
    if (s) delete_descriptor(s);
    last_failure_ = Failure::kSystem;
    return nullptr;
  }
  s->start = base_ + off;
  s->npages = uint32_t(want >> kPageShift);
  s->state = SpanState::kFree;
  s->page_flags = kPagesZeroed;
  s->epoch = tick_.load(std::memory_order_relaxed);
  map_free(s, false);  // pages past the old frontier were never mapped
  frontier_off_.store(off + want, std::memory_order_release);
  committed_.fetch_add(want, std::memory_order_relaxed);
  free_committed_ += want;
  grow_calls_++;
  return coalesce(s);
}

// Splits free span s (in no list) into its first npages, returned in use, and a free rest.
Span *PageHeap::carve(Span *s, size_t npages) {
  if (s->npages > npages) {
    Span *rest = new_descriptor();
    if (!rest) {
      insert_free(s);
      last_failure_ = Failure::kSystem;
      return nullptr;
    }
    rest->start = s->start + (npages << kPageShift);
    rest->npages = uint32_t(s->npages - npages);
    rest->state = SpanState::kFree;
    rest->page_flags = s->page_flags;
    rest->epoch = s->epoch;
    map_free(rest, false);  // rest's interior was s's interior: already nullptr
    insert_free(rest);
    s->npages = uint32_t(npages);
  }
  size_t bytes = npages << kPageShift;
  if (s->page_flags & kPagesDecommitted) {
    committed_.fetch_add(bytes, std::memory_order_relaxed);
    decommitted_ -= bytes;
    s->page_flags &= uint8_t(~kPagesDecommitted);  // still zeroed: refaulted pages read zero
  } else {
    free_committed_ -= bytes;
  }
  in_use_ += bytes;
  spans_in_use_++;
  map_span(s, s);
  return s;
}

Span *PageHeap::allocate(size_t npages, SpanState state) {
  if (npages == 0 || npages > UINT32_MAX ||
      (state != SpanState::kSmall && state != SpanState::kLarge)) {
    last_failure_ = Failure::kSystem;
    return nullptr;
  }
  Lock lock(mu_);
  last_failure_ = Failure::kNone;
  Span *s = find_fit(free_, npages);
  if (!s && within_limit(npages << kPageShift)) s = find_fit(returned_, npages);
  if (!s) s = grow(npages);
  if (!s) {
    if (last_failure_ == Failure::kNone) last_failure_ = Failure::kLimit;
    return nullptr;
  }
  s = carve(s, npages);
  if (!s) return nullptr;
  s->state = state;
  s->freelist = nullptr;
  s->next = s->prev = nullptr;
  s->used = s->bump = 0;
  s->client = 0;
  s->side = nullptr;
  return s;
}

void PageHeap::release(Span *s) {
  Lock lock(mu_);
  size_t bytes = size_t(s->npages) << kPageShift;
  in_use_ -= bytes;
  spans_in_use_--;
  free_committed_ += bytes;
  s->state = SpanState::kFree;
  s->page_flags = 0;
  s->freelist = nullptr;
  s->kind = s->client_flags = 0;
  s->epoch = tick_.load(std::memory_order_relaxed);
  map_free(s, true);
  insert_free(coalesce(s));
}

int PageHeap::expand(size_t bytes) {
  if (bytes == 0) return 0;
  Lock lock(mu_);
  size_t npages = (bytes + kPageSize - 1) >> kPageShift;
  size_t saved = grow_bytes_;
  grow_bytes_ = npages << kPageShift;  // exactly what was asked, not the usual step
  Span *s = grow(npages);
  grow_bytes_ = saved;
  if (!s) return last_failure_ == Failure::kLimit ? -ENOMEM : last_failure_ == Failure::kReservation ? -ENOSPC : -EAGAIN;
  insert_free(s);
  return 0;
}

size_t PageHeap::decommit_idle(uint64_t min_age) {
  Lock lock(mu_);
  uint64_t now = tick_.load(std::memory_order_relaxed);
  Span *chain = nullptr;
  auto pick = [&](SpanList &list) {
    for (Span *s = list.head, *next; s; s = next) {
      next = s->next;
      if (now - s->epoch >= min_age) {
        list.remove(s);
        s->next = chain;
        chain = s;
      }
    }
  };
  for (auto &l : free_.exact) pick(l);
  pick(free_.big);
  size_t total = 0;
  while (chain) {
    Span *s = chain;
    chain = s->next;
    size_t bytes = size_t(s->npages) << kPageShift;
    if (chunks_.decommit(s->start, bytes) != 0) {
      insert_free(s);
      continue;
    }
    s->page_flags = kPagesZeroed | kPagesDecommitted;
    committed_.fetch_sub(bytes, std::memory_order_relaxed);
    free_committed_ -= bytes;
    decommitted_ += bytes;
    total += bytes;
    insert_free(coalesce(s));
  }
  decommitted_total_ += total;
  return total;
}

void PageHeap::set_limit(size_t bytes) {
  Lock lock(mu_);
  limit_ = bytes;
}

PageHeapStats PageHeap::stats() const {
  Lock lock(mu_);
  PageHeapStats st;
  st.reserved_bytes = chunks_.size();
  st.committed_bytes = committed_.load(std::memory_order_relaxed);
  st.in_use_bytes = in_use_;
  st.free_bytes = free_committed_;
  st.decommitted_bytes = decommitted_;
  st.limit_bytes = limit_;
  st.spans_in_use = spans_in_use_;
  st.grow_calls = grow_calls_;
  st.decommitted_total = decommitted_total_;
  return st;
}

}  // namespace dunegc::allocators
