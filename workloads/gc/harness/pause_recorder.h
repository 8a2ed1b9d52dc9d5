// PauseRecorder: turns a collector's collection events (Boehm 8.2's
// GC_set_on_collection_event, which the dunegc-bdw layer implements too) into pause records.
//
// A pause is one stop-the-world interval: from GC_EVENT_PRE_STOP_WORLD (the collector starts
// stopping the mutator threads) to GC_EVENT_POST_START_WORLD (they have all been restarted).
// Every mutator thread is halted for all of it, in every collector mode. Boehm's incremental
// mode may abandon a stopped mark at its time limit and restart the world; each such interval
// is a pause of its own (completed = false). For a collector that emits no stop/start-world
// events (a Boehm built without threads), MARK_START..MARK_END stands in for the interval.
//
// Also recorded: for each pause, how long it took to stop the world (PRE..POST_STOP_WORLD) and
// the reclaim that followed a completed mark (RECLAIM_START..RECLAIM_END: finalisation and
// sweep set-up, world running, collecting thread held); and START..END spans (a whole
// non-incremental collection on the collecting thread). Incremental marking steps that run
// with the world going emit no events and are not pauses; they cost throughput.
//
// The callback runs with the collector's lock held and possibly the world stopped, so it
// must not allocate (a stopped thread may hold malloc's lock): records go into a buffer
// mapped once at install(); when it is full, later pauses are still counted in the totals
// and reported as dropped.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace gcwl {

struct PauseRecord {
  uint64_t start_ns;     // since PauseRecorder::origin_ns()
  uint64_t duration_ns;  // stop-the-world interval
  uint64_t stop_ns;      // of which: stopping the threads
  uint64_t reclaim_ns;   // world-running reclaim right after a completed mark (0 if none)
  bool completed;        // marking finished inside this pause (false: abandoned attempt)
};

struct DurationTotals {
  uint64_t count = 0, total_ns = 0, max_ns = 0;
  void add(uint64_t d) {
    ++count;
    total_ns += d;
    if (d > max_ns) max_ns = d;
  }
};

class PauseRecorder {
 public:
  // `event` is a GC_EventType value; `now_ns` a CLOCK_MONOTONIC time. Public so that tests
  // can feed synthetic sequences.
  void on_event(int event, uint64_t now_ns);

  // (Re)starts recording: maps room for `capacity` records, clears all counts and starts the
  // clock. False (errno set) if mmap fails.
  bool init(size_t capacity);
  void freeze() { frozen_.store(true, std::memory_order_release); }

  uint64_t origin_ns() const { return origin_ns_; }
  size_t size() const { return n_; }
  const PauseRecord &operator[](size_t i) const { return records_[i]; }
  const DurationTotals &pauses() const { return pauses_; }
  const DurationTotals &spans() const { return spans_; }
  uint64_t dropped() const { return dropped_; }
  // Events out of the expected order (e.g. nested PRE_STOP_WORLD): should stay 0.
  uint64_t protocol_errors() const { return protocol_errors_; }

  // The process-wide recorder the collector callback feeds; install() registers it with
  // GC_set_on_collection_event after init().
  static PauseRecorder &global();
  static bool install(size_t capacity);
  static uint64_t now_ns();

  ~PauseRecorder();

 private:
  void begin_pause(uint64_t now, bool implicit);
  void end_pause(uint64_t now);

  PauseRecord *records_ = nullptr;
  size_t capacity_ = 0, n_ = 0;
  uint64_t origin_ns_ = 0;
  std::atomic<bool> frozen_{false};

  bool in_pause_ = false, implicit_ = false, mark_done_ = false, saw_stw_ = false;
  uint64_t pause_start_ = 0, stopped_at_ = 0, reclaim_start_ = 0, span_start_ = 0;
  bool in_span_ = false, in_reclaim_ = false;
  ptrdiff_t reclaim_owner_ = -1;  // record that the next reclaim belongs to
  DurationTotals pauses_, spans_;
  uint64_t dropped_ = 0, protocol_errors_ = 0;
};

}  // namespace gcwl
