#include "dunegc/allocators/heap.h"

#include <array>
#include <cerrno>
#include <cstring>
#include <new>

namespace dunegc::allocators {

namespace {

std::atomic<uint64_t> g_next_heap_id{1};

// Objects moved between a thread cache and its central list at a time: ~32 KiB worth,
// between 2 and 64 objects. A cache holds at most two batches per class.
constexpr std::array<uint8_t, kNumClasses> kBatch = [] {
  std::array<uint8_t, kNumClasses> b{};
  for (unsigned c = 1; c < kNumClasses; c++) {
    unsigned n = 32768 / kClasses[c].size;
    b[c] = uint8_t(n < 2 ? 2 : n > 64 ? 64 : n);
  }
  return b;
}();
inline unsigned batch_of(unsigned cls) { return kBatch[cls]; }

struct Lock {
  explicit Lock(pthread_mutex_t &m) : m_(m) { pthread_mutex_lock(&m_); }
  ~Lock() { pthread_mutex_unlock(&m_); }
  pthread_mutex_t &m_;
};

}  // namespace

Heap::Heap() : large_(pages_) {}

Heap::~Heap() {
  if (key_made_) pthread_key_delete(key_);
  // Caches of threads that are still running simply die with the heap: their lookaside
  // holds an id no Heap will have again.
  detail::CacheLookaside &l = detail::t_lookaside;
  if (l.heap_id == id_) l = {0, nullptr};
  while (caches_) {
    ThreadCache *tc = caches_;
    caches_ = tc->next;
    ChunkProvider::unmap_metadata(tc, sizeof(ThreadCache));
  }
}

int Heap::init(const Options &opt) {
  if (id_) return -EBUSY;
  PageHeap::Options po;
  po.reserve_bytes = opt.reserve_bytes;
  po.limit_bytes = opt.limit_bytes;
  if (int rc = pages_.init(po); rc != 0) return rc;
  if (int rc = pthread_key_create(&key_, &Heap::thread_exit); rc != 0) return -rc;
  key_made_ = true;
  id_ = g_next_heap_id.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

Heap::ThreadCache *Heap::cache_slow() {
  if (!id_) return nullptr;
  auto *tc = static_cast<ThreadCache *>(pthread_getspecific(key_));
  if (!tc) {
    void *mem = ChunkProvider::map_metadata(sizeof(ThreadCache));
    if (!mem) return nullptr;
    tc = new (mem) ThreadCache();
    tc->heap = this;
    {
      Lock lock(caches_mu_);
      tc->next = caches_;
      if (caches_) caches_->prev = tc;
      caches_ = tc;
    }
    pthread_setspecific(key_, tc);
  }
  detail::t_lookaside = {id_, tc};
  return tc;
}

void Heap::thread_exit(void *p) {
  auto *tc = static_cast<ThreadCache *>(p);
  tc->heap->release_cache(tc);
}

void Heap::release_cache(ThreadCache *tc) {
  for (unsigned c = 1; c < kNumClasses; c++) {
    FreeList &fl = tc->lists[c];
    if (fl.head) release_list(c, fl.head, fl.len.load(std::memory_order_relaxed));
    fl.head = nullptr;
    fl.len.store(0, std::memory_order_relaxed);
  }
  {
    Lock lock(caches_mu_);
    if (tc->prev) tc->prev->next = tc->next;
    else caches_ = tc->next;
    if (tc->next) tc->next->prev = tc->prev;
  }
  detail::CacheLookaside &l = detail::t_lookaside;
  if (l.cache == tc) l = {0, nullptr};
  ChunkProvider::unmap_metadata(tc, sizeof(ThreadCache));
}

void Heap::flush_thread_cache() {
  ThreadCache *tc = cache();
  if (!tc) return;
  for (unsigned c = 1; c < kNumClasses; c++) {
    FreeList &fl = tc->lists[c];
    if (fl.head) release_list(c, fl.head, fl.len.load(std::memory_order_relaxed));
    fl.head = nullptr;
    fl.len.store(0, std::memory_order_relaxed);
  }
}

// Takes up to `want` objects of class cls from the central list as a linked list.
unsigned Heap::fetch(unsigned cls, unsigned want, void **head) {
  Central &c = central_[cls];
  const SizeClass &sc = kClasses[cls];
  void *list = nullptr;
  unsigned got = 0;
  Lock lock(c.mu);
  while (got < want) {
    Span *s = c.nonempty.head;
    if (!s) {
      s = pages_.allocate(sc.pages, SpanState::kSmall);
      if (!s) break;
      s->cls = uint8_t(cls);
      s->size = sc.size;
      s->recip = sc.recip;
      s->nobjs = uint16_t(sc.objects);
      s->page_flags &= uint8_t(~kPagesZeroed);
      c.nonempty.push_front(s);
      spans_created_.fetch_add(1, std::memory_order_relaxed);
    }
    while (got < want && s->freelist) {
      void *p = s->freelist;
      s->freelist = *static_cast<void **>(p);
      *static_cast<void **>(p) = list;
      list = p;
      got++;
      s->used++;
    }
    while (got < want && s->bump < s->nobjs) {
      void *p = reinterpret_cast<void *>(s->object(s->bump++));
      *static_cast<void **>(p) = list;
      list = p;
      got++;
      s->used++;
    }
    if (!s->freelist && s->bump == s->nobjs) c.nonempty.remove(s);
  }
  c.outstanding += got;
  *head = list;
  return got;
}

// Returns n objects (a list through their first words) to their spans; spans that become
// empty go back to the PageHeap.
void Heap::release_list(unsigned cls, void *head, unsigned n) {
  Central &c = central_[cls];
  Lock lock(c.mu);
  c.outstanding -= n;
  while (head) {
    void *p = head;
    head = *static_cast<void **>(p);
    Span *s = pages_.span_of(reinterpret_cast<uintptr_t>(p));
    bool was_full = !s->freelist && s->bump == s->nobjs;
    *static_cast<void **>(p) = s->freelist;
    s->freelist = p;
    s->used--;
    if (s->used == 0) {
      if (!was_full) c.nonempty.remove(s);
      pages_.release(s);
      spans_released_.fetch_add(1, std::memory_order_relaxed);
    } else if (was_full) {
      c.nonempty.push_front(s);
    }
  }
}

void *Heap::allocate_small_slow(unsigned cls) {
  ThreadCache *tc = cache();
  void *list = nullptr;
  unsigned got = fetch(cls, tc ? batch_of(cls) : 1, &list);
  if (got == 0) {
    errno = ENOMEM;
    return nullptr;
  }
  void *p = list;
  list = *static_cast<void **>(p);
  if (tc) {
    tc->lists[cls].head = list;
    tc->lists[cls].len.store(got - 1, std::memory_order_relaxed);
  }
  return p;
}

void *Heap::allocate_large(size_t n, bool zero) {
  Span *s;
  {
    Lock lock(large_mu_);
    s = large_.allocate(n, zero);
  }
  if (!s) {
    errno = ENOMEM;
    return nullptr;
  }
  return reinterpret_cast<void *>(s->start);
}

void *Heap::allocate_zeroed(size_t n) {
  if (n > kMaxSmallSize) return allocate_large(n, true);
  void *p = allocate(n);
  if (p) memset(p, 0, class_size(size_to_class(n)));
  return p;
}

int Heap::deallocate(void *p) {
  if (!p) return 0;
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  Span *s = pages_.span_of(a);
  if (!s) return -EINVAL;
  if (s->state == SpanState::kSmall) {
    unsigned i = s->index_of(a);
    if (i >= s->nobjs || s->object(i) != a) return -EINVAL;
    unsigned cls = s->cls;
    ThreadCache *tc = cache();
    if (!tc) {
      *static_cast<void **>(p) = nullptr;
      release_list(cls, p, 1);
      return 0;
    }
    FreeList &fl = tc->lists[cls];
    *static_cast<void **>(p) = fl.head;
    fl.head = p;
    uint32_t len = fl.len.load(std::memory_order_relaxed) + 1;
    unsigned batch = batch_of(cls);
    if (len > 2 * batch) {
      // Give the central list the first `batch` objects (the most recently freed stay
      // behind: they are the warmest in cache).
      void *keep_last = fl.head;
      for (unsigned k = 1; k < len - batch; k++) keep_last = *static_cast<void **>(keep_last);
      void *give = *static_cast<void **>(keep_last);
      *static_cast<void **>(keep_last) = nullptr;
      release_list(cls, give, batch);
      len -= batch;
    }
    fl.len.store(len, std::memory_order_relaxed);
    return 0;
  }
  if (s->state == SpanState::kLarge && a == s->start) {
    Lock lock(large_mu_);
    large_.release(s);
    return 0;
  }
  return -EINVAL;
}

size_t Heap::usable_size(const void *p) const {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  Span *s = pages_.span_of(a);
  if (!s) return 0;
  if (s->state == SpanState::kSmall) {
    unsigned i = s->index_of(a);
    return i < s->nobjs && s->object(i) == a ? s->size : 0;
  }
  if (s->state == SpanState::kLarge && a == s->start) return size_t(s->npages) << kPageShift;
  return 0;
}

void *Heap::reallocate(void *p, size_t n) {
  if (!p) return allocate(n);
  size_t have = usable_size(p);
  if (have == 0) {
    errno = EINVAL;
    return nullptr;
  }
  // Keep the object when the new size still belongs where it is (same small class, or a
  // large object that shrinks by less than half).
  if (n <= have && (have <= kMaxSmallSize ? (n > kMaxSmallSize ? false : class_size(size_to_class(n)) == have)
                                          : n > kMaxSmallSize && n >= have / 2))
    return p;
  void *q = allocate(n);
  if (!q) return nullptr;
  memcpy(q, p, n < have ? n : have);
  deallocate(p);
  return q;
}

size_t Heap::release_free_memory() { return pages_.decommit_idle(0); }

HeapStats Heap::stats() const {
  HeapStats st;
  st.pages = pages_.stats();
  {
    Lock lock(large_mu_);
    st.large = large_.stats();
  }
  size_t cached[kNumClasses] = {};
  {
    Lock lock(caches_mu_);
    for (ThreadCache *tc = caches_; tc; tc = tc->next) {
      st.thread_caches++;
      for (unsigned c = 1; c < kNumClasses; c++) cached[c] += tc->lists[c].len.load(std::memory_order_relaxed);
    }
  }
  for (unsigned c = 1; c < kNumClasses; c++) {
    size_t out;
    {
      Lock lock(central_[c].mu);
      out = central_[c].outstanding;
    }
    size_t held = cached[c] < out ? cached[c] : out;
    st.small_bytes_cached += held * class_size(c);
    st.small_bytes_in_use += (out - held) * class_size(c);
  }
  st.small_spans_created = spans_created_.load(std::memory_order_relaxed);
  st.small_spans_released = spans_released_.load(std::memory_order_relaxed);
  return st;
}

}  // namespace dunegc::allocators
