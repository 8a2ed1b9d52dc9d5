#include "mark.h"

#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "report.h"
#include "scan.h"

namespace dunegc::gc {

namespace {

constexpr size_t kPacket = 256;            // entries moved to or from the pool at a time
constexpr size_t kRootChunk = 64 * 1024;   // bytes of a root range one claim scans
constexpr size_t kObjectChunk = 16 * 1024; // large objects are scanned this much at a time
constexpr unsigned kFifo = 8;              // prefetch distance, in objects
constexpr size_t kParallelRoots = 64;      // root chunks that are worth waking helpers for
constexpr uint64_t kWakeAfter = 2048;      // objects marked alone before helpers are woken

void futex_wait(std::atomic<uint32_t> *a, uint32_t val) {
  syscall(SYS_futex, reinterpret_cast<uint32_t *>(a), FUTEX_WAIT_PRIVATE, val, nullptr, nullptr, 0);
}
void futex_wake(std::atomic<uint32_t> *a, int n) {
  syscall(SYS_futex, reinterpret_cast<uint32_t *>(a), FUTEX_WAKE_PRIVATE, n, nullptr, nullptr, 0);
}

}  // namespace

Marker::~Marker() {
  // Helpers are parked forever on job_; the process exit takes them down. Stacks and the
  // pool are metadata mappings that live as long as the collector.
}

int Marker::init(GcHeap *heap, const Config &c) {
  heap_ = heap;
  nmarkers_ = c.markers < 1 ? 1 : c.markers > kMaxMarkers ? kMaxMarkers : c.markers;
  size_t entries = 64;
  while (entries < c.stack_entries) entries <<= 1;
  stack_entries_ = entries;
  for (unsigned i = 0; i < nmarkers_; i++) {
    locals_[i].buf = static_cast<MarkEntry *>(ChunkProvider::map_metadata(entries * sizeof(MarkEntry)));
    if (!locals_[i].buf) return -ENOMEM;
    locals_[i].mask = entries - 1;
  }
  pool_cap_ = nmarkers_ > 1 ? entries : kPacket;
  pool_ = static_cast<MarkEntry *>(ChunkProvider::map_metadata(pool_cap_ * sizeof(MarkEntry)));
  if (!pool_) return -ENOMEM;
  pthread_spin_init(&pool_lock_, PTHREAD_PROCESS_PRIVATE);
  return 0;
}

void Marker::begin(bool interior_pointers) {
  interior_ = interior_pointers;
  heap_lo_ = heap_->base();
  heap_len_ = heap_->frontier() - heap_->base();
  pagemap_ = heap_->pages().pagemap();
  roots_.clear();
  next_root_.store(0, std::memory_order_relaxed);
  pool_count_.store(0, std::memory_order_relaxed);
  overflowed_.store(false, std::memory_order_relaxed);
  overflow_rounds_ = 0;
  for (unsigned i = 0; i < nmarkers_; i++) {
    locals_[i].top = locals_[i].bottom = 0;
    locals_[i].objects = locals_[i].bytes = 0;
  }
}

int Marker::add_root_range(uintptr_t lo, uintptr_t hi) {
  while (lo < hi) {
    uintptr_t end = hi - lo > kRootChunk ? lo + kRootChunk : hi;
    if (!roots_.push({lo, end})) return -ENOMEM;
    lo = end;
  }
  return 0;
}

// While a marker works, its stack indices and counters and the heap's bounds live in a
// Scanner: a local variable whose address never leaves the inlined marking loop, so the
// compiler keeps its fields in registers. Read through Local& and this, every field was
// reloaded after each mark-byte store (a byte store may alias anything) and each push of
// an entry: 40% of the instructions spent marking a linked list. Calls that need the
// Local (donate, take) get it flushed first and reload it after.
struct Marker::Scanner {
  Marker &m;
  Local &home;
  MarkEntry *const buf;
  const size_t mask;
  size_t top, bottom;
  uint64_t objects, bytes;
  const uintptr_t heap_lo, heap_len;
  const std::atomic<Span *> *const pagemap;
  const bool interior;

  Scanner(Marker &mk, Local &L)
      : m(mk), home(L), buf(L.buf), mask(L.mask), top(L.top), bottom(L.bottom), objects(L.objects),
        bytes(L.bytes), heap_lo(mk.heap_lo_), heap_len(mk.heap_len_), pagemap(mk.pagemap_),
        interior(mk.interior_) {}
  size_t size() const { return top - bottom; }
  void flush() {
    home.top = top;
    home.bottom = bottom;
    home.objects = objects;
    home.bytes = bytes;
  }
  void reload() {
    top = home.top;
    bottom = home.bottom;
  }

  void push(MarkEntry e) {
    if (__builtin_expect(size() > mask, 0)) {
      // Full: give half to the pool; if the pool is full too, drop the entry (its object
      // is marked, and recover() will rescan it).
      flush();
      bool room = m.donate(home, size() / 2);
      reload();
      if (!room) {
        m.overflowed_.store(true, std::memory_order_relaxed);
        return;
      }
    }
    buf[top++ & mask] = e;
  }

  // Resolves one candidate word and, if it points to an unmarked object, marks and
  // pushes it. The hot loop of marking: kept branch-light and inlined into every scanner.
  DUNEGC_SCAN_INLINE void visit(uintptr_t w) {
    uintptr_t off = w - heap_lo;
    if (off >= heap_len) return;
    Span *s = pagemap[off >> allocators::kPageShift].load(std::memory_order_relaxed);
    if (!s) return;
    uintptr_t base;
    unsigned i;
    if (__builtin_expect(s->state == SpanState::kSmall, 1)) {
      i = s->index_of(w);
      if (i >= s->nobjs) return;
      base = s->object(i);
      if (!interior && base != w) return;
    } else {
      ObjRef r;
      if (!m.heap_->resolve(w, interior, &r)) return;
      base = r.base;
      i = 0;
    }
    const uint8_t kind = s->kind;  // read before the mark store, which may alias anything
    const uintptr_t size = s->size;
    if (kind == kUncollectable) return;  // always "marked"; scanned as roots
    std::atomic_ref<uint8_t> mark(mark_bytes(s)[i]);
    if (mark.load(std::memory_order_relaxed)) return;
    mark.store(1, std::memory_order_relaxed);
    objects++;
    bytes += size;
    if (kind == kNormal) {
      push({base, size << 2});
    } else if (kind == kTyped) {
      // A small object's layout is in its last word: read it when the entry is scanned,
      // after the prefetch, not now (a cache miss per object at push time). A large
      // one's is in the span, at hand.
      if (s->state == SpanState::kSmall) push({base, size << 2 | 2});
      else if (const Layout *l = GcHeap::layout_of(ObjRef{s, i, base})) push({base, reinterpret_cast<uintptr_t>(l) | 1});
    }
  }

  DUNEGC_SCAN_INLINE void scan(const MarkEntry &e) {
    auto v = [&](uintptr_t w) DUNEGC_SCAN_INLINE { visit(w); };
    if (!(e.info & 3)) {
      uintptr_t lo = e.start, hi = e.start + (e.info >> 2);
      if (hi - lo > kObjectChunk) {  // scan a chunk, leave the rest for later (or others)
        push({lo + kObjectChunk, (hi - lo - kObjectChunk) << 2});
        hi = lo + kObjectChunk;
      }
      scan_words(lo, hi, v);
      return;
    }
    const Layout *l;
    if (e.info & 2) {
      l = *reinterpret_cast<const Layout *const *>(e.start + (e.info >> 2) - sizeof(void *));
      if (!l) return;  // a free slot reached through a stale pointer
    } else {
      l = reinterpret_cast<const Layout *>(e.info & ~uintptr_t{1});
    }
    if (l->type == Layout::kBitmap) {
      scan_bitmap(e.start, l, v);
    } else {
      flush();  // the trace callback gets a visitor of its own: this one must not escape
      m.scan_traced(home, e.start, l);
      reload();
      objects = home.objects;
      bytes = home.bytes;
    }
  }
};

bool Marker::donate(Local &L, size_t n) {
  if (n == 0) return false;
  pthread_spin_lock(&pool_lock_);
  size_t have = pool_count_.load(std::memory_order_relaxed);
  if (have + n > pool_cap_) n = pool_cap_ - have;
  for (size_t i = 0; i < n; i++) pool_[have + i] = L.buf[(L.bottom + i) & L.mask];
  L.bottom += n;
  pool_count_.store(have + n, std::memory_order_release);
  pthread_spin_unlock(&pool_lock_);
  if (n && sleepers_.load(std::memory_order_acquire)) {
    wake_.fetch_add(1, std::memory_order_acq_rel);
    futex_wake(&wake_, 1);
  }
  return n > 0;
}

bool Marker::take(Local &L) {
  if (pool_count_.load(std::memory_order_acquire) == 0) return false;
  pthread_spin_lock(&pool_lock_);
  size_t have = pool_count_.load(std::memory_order_relaxed);
  size_t room = L.mask + 1 - L.size();
  size_t n = have < kPacket ? have : kPacket;
  if (n > room) n = room;
  for (size_t i = 0; i < n; i++) L.buf[L.top++ & L.mask] = pool_[have - n + i];
  pool_count_.store(have - n, std::memory_order_relaxed);
  pthread_spin_unlock(&pool_lock_);
  return n > 0;
}

bool Marker::claim_root(Local &L) {
  size_t i = next_root_.fetch_add(1, std::memory_order_relaxed);
  if (i >= roots_.size()) return false;
  Scanner sc(*this, L);
  auto v = [&](uintptr_t w) DUNEGC_SCAN_INLINE { sc.visit(w); };
  scan_words(roots_[i].lo, roots_[i].hi, v);
  sc.flush();
  return true;
}

void Marker::scan_traced(Local &L, uintptr_t obj, const Layout *l) {
  ObjRef r;
  if (!heap_->resolve(obj, false, &r)) return;
  Scanner sc(*this, L);
  auto v = [&](uintptr_t w) { sc.visit(w); };
  scan_trace(obj, GcHeap::usable_size(r), l, v);
  sc.flush();
}

// Drains the local stack through the prefetch FIFO, sharing work when others are idle.
void Marker::process(Local &L) {
  Scanner sc(*this, L);
  MarkEntry fifo[kFifo];
  unsigned head = 0, tail = 0, since_share = 0;
  for (;;) {
    if (tail == head && sc.size() == 1) {
      // One entry and nothing queued (a list): no other fetch to overlap with, so the
      // FIFO would only add a store and a load to the chain's critical path.
      MarkEntry e = sc.buf[--sc.top & sc.mask];
      sc.scan(e);
    } else {
      while (tail - head < kFifo && sc.size()) {
        MarkEntry e = sc.buf[--sc.top & sc.mask];
        __builtin_prefetch(reinterpret_cast<const void *>(e.start));
        if (e.info & 2) __builtin_prefetch(reinterpret_cast<const void *>(e.start + (e.info >> 2) - sizeof(void *)));
        fifo[tail++ % kFifo] = e;
      }
      if (tail == head) break;
      sc.scan(fifo[head++ % kFifo]);
    }
    if (++since_share == 32) {
      since_share = 0;
      // Something to share: the oldest entries, which in a tree or a graph marked depth
      // first are the biggest subgraphs -- worth handing over even when there are few.
      if (sc.size() >= 2) {
        if (!helpers_woken_.load(std::memory_order_relaxed)) {
          if (may_wake_ && sc.objects - round_objects_ >= kWakeAfter) wake_helpers();
        } else if (waiting_.load(std::memory_order_relaxed) &&
                   pool_count_.load(std::memory_order_relaxed) < kPacket) {
          sc.flush();
          donate(L, sc.size() / 2 < kPacket ? sc.size() / 2 : kPacket);
          sc.reload();
        }
      }
    }
  }
  sc.flush();
}

bool Marker::has_shared_work() const {
  return pool_count_.load(std::memory_order_acquire) || next_root_.load(std::memory_order_relaxed) < roots_.size();
}

// Marks until the round is over: every marker that joined it is idle with no work left.
// The last one to see that closes the round; helpers that wake up after it closed do not
// join, so a descheduled helper never holds the collection up.
void Marker::work(Local &L) {
  for (;;) {
    process(L);
    if (claim_root(L) || take(L)) continue;
    waiting_.fetch_add(1, std::memory_order_acq_rel);
    for (unsigned spins = 0;; spins++) {
      if (has_shared_work()) {
        waiting_.fetch_sub(1, std::memory_order_acq_rel);
        break;
      }
      uint64_t st = round_.load(std::memory_order_acquire);
      if (st & 1) return;  // closed
      if (waiting_.load(std::memory_order_acquire) == ((st >> 1) & 0xffff) && !has_shared_work() &&
          round_.compare_exchange_strong(st, st | 1, std::memory_order_acq_rel)) {
        wake_.fetch_add(1, std::memory_order_acq_rel);
        futex_wake(&wake_, INT_MAX);  // sleeping markers see the round closed
        return;
      }
      if (spins < 512) {
        __builtin_ia32_pause();
      } else {
        // Idle for a while (a chain being marked offers nothing to share): sleep until work
        // is donated or the round closes, rather than take the CPU from the one marking.
        uint32_t seen = wake_.load(std::memory_order_acquire);
        if (has_shared_work() || (round_.load(std::memory_order_acquire) & 1)) continue;
        sleepers_.fetch_add(1, std::memory_order_acq_rel);
        futex_wait(&wake_, seen);
        sleepers_.fetch_sub(1, std::memory_order_acq_rel);
        spins = 0;
      }
    }
  }
}

void *Marker::helper_main(void *arg) {
  auto *a = static_cast<HelperArg *>(arg);
  Marker *m = a->marker;
  uint32_t seen = 0;
  for (;;) {
    uint32_t g;
    while ((g = m->job_.load(std::memory_order_acquire)) == seen) futex_wait(&m->job_, seen);
    seen = g;
    // Join the round we were woken for, if it is still open.
    uint64_t st = m->round_.load(std::memory_order_acquire);
    while ((st >> 32) == g && !(st & 1)) {
      if (m->round_.compare_exchange_weak(st, st + 2, std::memory_order_acq_rel)) {
        m->work(m->locals_[a->index]);
        m->done_.fetch_add(1, std::memory_order_acq_rel);
        futex_wake(&m->done_, 1);
        break;
      }
    }
  }
  return nullptr;
}

int Marker::start_helpers() {
  helpers_started_ = true;
  // Helpers take no signals: process-directed ones must go to mutators, and they are not
  // registered threads, so the world stopper never signals them.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  for (unsigned i = 1; i < nmarkers_; i++) {
    helper_args_[i] = {this, i};
    if (pthread_create(&helpers_[i], nullptr, &Marker::helper_main, &helper_args_[i]) != 0) break;
    pthread_detach(helpers_[i]);
    helpers_running_++;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (helpers_running_ + 1 < nmarkers_)
    warn("could start only %u of %u marker threads; marking with fewer", helpers_running_ + 1, nmarkers_);
  return 0;
}

// Helpers are woken for a round only once it shows enough work: many root chunks at the
// start, or, while the collecting thread marks, a few thousand objects with more pending
// (a large graph reached from few roots -- the common case). Small rounds never pay for
// the wake-up.
void Marker::wake_helpers() {
  if (helpers_woken_.exchange(true, std::memory_order_acq_rel)) return;
  job_.store(round_gen_, std::memory_order_release);
  futex_wake(&job_, INT_MAX);
}

void Marker::run_round(bool parallel) {
  waiting_.store(0, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  round_gen_ = job_.load(std::memory_order_relaxed) + 1;
  round_.store(uint64_t(round_gen_) << 32 | 2, std::memory_order_release);  // open, one marker: us
  helpers_woken_.store(false, std::memory_order_relaxed);
  may_wake_ = parallel;
  round_objects_ = locals_[0].objects;
  size_t claimed = next_root_.load(std::memory_order_relaxed);
  if (parallel && claimed < roots_.size() && roots_.size() - claimed >= kParallelRoots) wake_helpers();
  work(locals_[0]);
  uint32_t helpers = uint32_t((round_.load(std::memory_order_acquire) >> 1) & 0xffff) - 1, d;
  while ((d = done_.load(std::memory_order_acquire)) < helpers) futex_wait(&done_, d);
}

void Marker::drain() {
  bool parallel = nmarkers_ > 1;
  if (parallel && !helpers_started_) start_helpers();
  run_round(parallel && helpers_running_ > 0);
  while (overflowed_.load(std::memory_order_relaxed)) {
    overflowed_.store(false, std::memory_order_relaxed);
    overflow_rounds_++;
    recover();
    run_round(false);
  }
}

// Rescans every marked object: those whose entries were dropped get scanned this time.
void Marker::recover() {
  Local &L = locals_[0];
  Scanner sc(*this, L);
  auto v = [&](uintptr_t w) DUNEGC_SCAN_INLINE { sc.visit(w); };
  heap_->for_each_marked_object([&](const ObjRef &r) {
    scan_object(r, v);
    if (sc.size() > sc.mask / 2) {
      sc.flush();
      process(L);
      sc.reload();
      sc.objects = L.objects;
      sc.bytes = L.bytes;
    }
  });
  sc.flush();
}

void Marker::mark_candidate(uintptr_t word) {
  Scanner sc(*this, locals_[0]);
  sc.visit(word);
  sc.flush();
}

bool Marker::is_marked(uintptr_t obj) const {
  ObjRef r;
  return heap_->resolve(obj, false, &r) && gc::is_marked(r);
}

void Marker::set_mark(const ObjRef &r) {
  if (set_marked(r)) {
    locals_[0].objects++;
    locals_[0].bytes += r.span->size;
  }
}

bool Marker::mark_object(const ObjRef &r) {
  if (!set_marked(r)) return false;
  locals_[0].objects++;
  locals_[0].bytes += r.span->size;
  Scanner sc(*this, locals_[0]);
  auto v = [&](uintptr_t w) { sc.visit(w); };
  scan_object(r, v);
  sc.flush();
  return true;
}

void Marker::scan_contents(const ObjRef &r, bool ignore_self) {
  uintptr_t lo = r.base, len = r.span->size;
  Scanner sc(*this, locals_[0]);
  auto v = [&](uintptr_t w) {
    if (!ignore_self || w - lo >= len) sc.visit(w);
  };
  scan_object(r, v);
  sc.flush();
}

uint64_t Marker::objects_marked() const {
  uint64_t n = 0;
  for (unsigned i = 0; i < nmarkers_; i++) n += locals_[i].objects;
  return n;
}

uint64_t Marker::helper_objects_marked() const {
  uint64_t n = 0;
  for (unsigned i = 1; i < nmarkers_; i++) n += locals_[i].objects;
  return n;
}

uint64_t Marker::bytes_marked() const {
  uint64_t n = 0;
  for (unsigned i = 0; i < nmarkers_; i++) n += locals_[i].bytes;
  return n;
}

}  // namespace dunegc::gc
