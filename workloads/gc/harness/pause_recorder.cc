// PauseRecorder: see pause_recorder.h for what a pause is.
#include "pause_recorder.h"

#include <gc.h>
#include <sys/mman.h>
#include <time.h>

namespace gcwl {

uint64_t PauseRecorder::now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // vDSO: no system call, safe with the world stopped
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

bool PauseRecorder::init(size_t capacity) {
  if (records_) munmap(records_, capacity_ * sizeof(PauseRecord));
  records_ = nullptr;
  capacity_ = n_ = 0;
  frozen_.store(false);
  in_pause_ = implicit_ = mark_done_ = saw_stw_ = in_span_ = in_reclaim_ = false;
  reclaim_owner_ = -1;
  pauses_ = spans_ = DurationTotals{};
  dropped_ = protocol_errors_ = 0;
  // MAP_NORESERVE and untouched until used: an idle buffer adds nothing to peak RSS.
  void *p = mmap(nullptr, capacity * sizeof(PauseRecord), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return false;
  records_ = static_cast<PauseRecord *>(p);
  capacity_ = capacity;
  origin_ns_ = now_ns();
  return true;
}

PauseRecorder::~PauseRecorder() {
  if (records_) munmap(records_, capacity_ * sizeof(PauseRecord));
}

void PauseRecorder::begin_pause(uint64_t now, bool implicit) {
  if (in_pause_) ++protocol_errors_;  // nested: keep the outer start
  else pause_start_ = now;
  in_pause_ = true;
  implicit_ = implicit;
  mark_done_ = false;
  stopped_at_ = implicit ? now : 0;
}

void PauseRecorder::end_pause(uint64_t now) {
  in_pause_ = false;
  uint64_t d = now - pause_start_;
  pauses_.add(d);
  reclaim_owner_ = -1;
  if (n_ == capacity_) {
    ++dropped_;
    return;
  }
  PauseRecord &r = records_[n_];
  r.start_ns = pause_start_ - origin_ns_;
  r.duration_ns = d;
  r.stop_ns = stopped_at_ ? stopped_at_ - pause_start_ : 0;
  r.reclaim_ns = 0;
  r.completed = mark_done_;
  if (mark_done_) reclaim_owner_ = ptrdiff_t(n_);
  ++n_;
}

void PauseRecorder::on_event(int event, uint64_t now) {
  if (frozen_.load(std::memory_order_acquire)) return;
  switch (static_cast<GC_EventType>(event)) {
    case GC_EVENT_PRE_STOP_WORLD:
      saw_stw_ = true;
      begin_pause(now, false);
      break;
    case GC_EVENT_POST_STOP_WORLD:
      if (in_pause_ && !implicit_) stopped_at_ = now;
      else ++protocol_errors_;
      break;
    case GC_EVENT_MARK_START:
      if (!in_pause_) {
        if (saw_stw_) ++protocol_errors_;  // marking outside a stopped world: unexpected
        else begin_pause(now, true);       // collector without stop-world events
      }
      break;
    case GC_EVENT_MARK_END:
      if (!in_pause_) {
        ++protocol_errors_;
        break;
      }
      mark_done_ = true;
      if (implicit_) end_pause(now);
      break;
    case GC_EVENT_POST_START_WORLD:
      if (in_pause_ && !implicit_) end_pause(now);
      else ++protocol_errors_;
      break;
    case GC_EVENT_RECLAIM_START:
      in_reclaim_ = true;
      reclaim_start_ = now;
      break;
    case GC_EVENT_RECLAIM_END:
      if (!in_reclaim_) {
        ++protocol_errors_;
        break;
      }
      in_reclaim_ = false;
      if (reclaim_owner_ >= 0) records_[reclaim_owner_].reclaim_ns = now - reclaim_start_;
      reclaim_owner_ = -1;
      break;
    case GC_EVENT_START:
      in_span_ = true;
      span_start_ = now;
      break;
    case GC_EVENT_END:
      if (in_span_) spans_.add(now - span_start_);
      else ++protocol_errors_;
      in_span_ = false;
      break;
    default:  // PRE_START_WORLD; thread suspend/resume events come through another hook
      break;
  }
}

PauseRecorder &PauseRecorder::global() {
  static PauseRecorder r;
  return r;
}

static void GC_CALLBACK on_collection_event(GC_EventType e) {
  PauseRecorder::global().on_event(e, PauseRecorder::now_ns());
}

bool PauseRecorder::install(size_t capacity) {
  if (!global().init(capacity)) return false;
  GC_set_on_collection_event(on_collection_event);
  return true;
}

}  // namespace gcwl
