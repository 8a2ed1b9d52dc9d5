// Marker: parallel marking with explicit mark stacks, work sharing and overflow recovery.
//
// Each marker thread (the collecting thread is marker 0; the others are helper threads
// started on first use and parked on a futex between collections) owns a fixed-size mark
// stack. Entries are (address, info): a conservative range of bytes or a typed object
// with its layout. Marking a word: resolve it to an object (pagemap -> span -> object
// index by reciprocal multiplication), check and set the object's byte in the span's
// side array of mark bytes (plain byte stores: markers racing on one object both scan
// it, which costs a little and loses nothing), and push the object's contents unless it
// is atomic. Popped entries pass through a small FIFO that prefetches each object a
// few scans before it is read (Cher, Hosking & Vijaykumar's prefetch buffer).
//
// Roots are handed over as ranges cut into chunks that markers claim with an atomic
// counter, so root scanning is parallel too. Helpers are woken for a round only when it
// has work for them: many root chunks, or, found while marking, a few thousand objects
// marked with more pending (most heaps hang off a handful of roots). A marker with two or
// more pending entries while another is idle hands half of its oldest ones (up to a
// packet) to a shared pool: marking depth first, the oldest are the biggest subgraphs, so
// even a tree, whose stack holds no more entries than its depth, is shared. When a stack
// and the pool are both full, the entry is dropped and the overflow flag set: the object
// is already marked, so after the drain a recovery pass rescans every marked object and
// drains again, until a pass ends without overflow (each such pass marks at least one
// more object, so this terminates). Root ranges are never dropped: they are scanned whole.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "gc_heap.h"
#include "meta.h"

namespace dunegc::gc {

struct MarkEntry {
  uintptr_t start;
  // Bits 1..0: 00, a range of (info >> 2) bytes; 10, a small typed object of (info >> 2)
  // bytes whose layout is in its last word (read when the entry is scanned, after the
  // prefetch); 01, a typed object with its layout: Layout* | 1.
  uintptr_t info;
};

struct Range {
  uintptr_t lo, hi;
};

class Marker {
 public:
  static constexpr unsigned kMaxMarkers = 64;

  struct Config {
    unsigned markers = 1;
    size_t stack_entries = size_t{1} << 18;
  };

  Marker() = default;
  ~Marker();
  int init(GcHeap *heap, const Config &c);
  unsigned markers() const { return nmarkers_; }

  // --- one collection, driven by the collecting thread ---
  void begin(bool interior_pointers);
  int add_root_range(uintptr_t lo, uintptr_t hi);  // scanned by the next drain
  void mark_candidate(uintptr_t word);             // a conservative root word
  bool is_marked(uintptr_t obj) const;             // exact object start
  void set_mark(const ObjRef &r);                  // mark without scanning
  // Marks r (if not yet) and scans it. Returns whether this call marked it.
  bool mark_object(const ObjRef &r);
  // Scans r's contents now without marking r itself (ordered finalization); with
  // ignore_self, pointers into r itself are skipped.
  void scan_contents(const ObjRef &r, bool ignore_self);
  void drain();
  // After fork(), in the child: the helper threads do not exist there.
  void forget_helpers() {
    helpers_started_ = false;
    helpers_running_ = 0;
  }

  const MetaVector<Range> &roots() const { return roots_; }
  uint64_t objects_marked() const;
  uint64_t helper_objects_marked() const;  // by markers other than the collecting thread
  uint64_t bytes_marked() const;
  bool overflowed_this_cycle() const { return overflow_rounds_ > 0; }

 private:
  struct alignas(64) Local {
    MarkEntry *buf = nullptr;
    size_t mask = 0;
    size_t top = 0, bottom = 0;  // a ring: push/pop at top, donate from bottom
    uint64_t objects = 0, bytes = 0;
    size_t size() const { return top - bottom; }
  };

  // A marker's working state in local variables while it marks (mark.cc).
  struct Scanner;

  bool donate(Local &L, size_t n);
  bool take(Local &L);
  bool claim_root(Local &L);
  void scan_traced(Local &L, uintptr_t obj, const Layout *l);
  void process(Local &L);
  void work(Local &L);
  bool has_shared_work() const;
  void run_round(bool parallel);
  void wake_helpers();
  void recover();
  int start_helpers();
  static void *helper_main(void *arg);

  GcHeap *heap_ = nullptr;
  unsigned nmarkers_ = 1;
  size_t stack_entries_ = 0;
  Local locals_[kMaxMarkers];
  bool interior_ = true;
  uintptr_t heap_lo_ = 0, heap_len_ = 0;
  const std::atomic<Span *> *pagemap_ = nullptr;

  MetaVector<Range> roots_;
  std::atomic<size_t> next_root_{0};

  // Shared pool of entries for work sharing and overflow.
  pthread_spinlock_t pool_lock_{};
  MarkEntry *pool_ = nullptr;
  size_t pool_cap_ = 0;
  std::atomic<size_t> pool_count_{0};

  std::atomic<unsigned> waiting_{0};
  // The current round: generation << 32 | markers joined << 1 | closed.
  std::atomic<uint64_t> round_{0};
  std::atomic<bool> overflowed_{false};
  unsigned overflow_rounds_ = 0;

  // Helper threads: woken per round through job_, report through done_.
  struct HelperArg {
    Marker *marker;
    unsigned index;
  };
  bool helpers_started_ = false;
  unsigned helpers_running_ = 0;
  pthread_t helpers_[kMaxMarkers];
  HelperArg helper_args_[kMaxMarkers];
  std::atomic<uint32_t> job_{0};
  uint32_t round_gen_ = 0;                    // the current round's generation
  std::atomic<bool> helpers_woken_{false};    // this round's job_ was posted
  bool may_wake_ = false;                     // this round may use helpers
  uint64_t round_objects_ = 0;                // marker 0's count when the round began
  std::atomic<uint32_t> done_{0};
  // Idle markers sleep on wake_; donations and the round's closing bump it.
  std::atomic<uint32_t> wake_{0};
  std::atomic<unsigned> sleepers_{0};
};

}  // namespace dunegc::gc
