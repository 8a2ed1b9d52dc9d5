// Internal: managed regions and the process-wide table that finds them from a fault
// address. Everything here that a signal handler touches is lock-free or a spin lock
// (pthread mutexes are not async-signal-safe).
#pragma once

#include <immintrin.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "dunegc/paging/paging.h"

namespace dunegc::paging::detail {

class LinuxBackend;

// A spin lock that a signal handler may take. Never held across a fault on managed memory
// (nothing under it touches managed memory), so the faulting thread cannot hold it.
class SpinLock {
 public:
  void lock() {
    while (flag_.exchange(true, std::memory_order_acquire))
      while (flag_.load(std::memory_order_relaxed)) _mm_pause();
  }
  void unlock() { flag_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> flag_{false};
};

struct SpinGuard {
  explicit SpinGuard(SpinLock &l) : lock(l) { lock.lock(); }
  ~SpinGuard() { lock.unlock(); }
  SpinGuard(const SpinGuard &) = delete;
  SpinGuard &operator=(const SpinGuard &) = delete;
  SpinLock &lock;
};

// One map() or map_alias() result. Per-page arrays are mmap'd at creation (zero, lazily
// backed), so nothing on a fault path allocates.
struct Region {
  uintptr_t base = 0;
  size_t pages = 0;
  LinuxBackend *owner = nullptr;
  Backing backing = Backing::anonymous;
  int memfd = -1;                         // shared regions: the memfd (own descriptor)
  Prot *prot = nullptr;                   // protection the user asked for, per page
  std::atomic<uint64_t> *bits = nullptr;  // per page: written since last collect
  bool tracking = false;                  // dirty_start .. dirty_stop

  size_t len() const { return pages * kPageSize; }
  bool contains(uintptr_t a) const { return a - base < len(); }
  size_t index(uintptr_t a) const { return (a - base) / kPageSize; }
  uintptr_t page_addr(size_t i) const { return base + i * kPageSize; }
  bool bit(size_t i) const {
    return (bits[i / 64].load(std::memory_order_relaxed) >> (i % 64)) & 1;
  }
  void set_bit(size_t i) {
    bits[i / 64].fetch_or(uint64_t(1) << (i % 64), std::memory_order_relaxed);
  }
  void clear_bits() {
    for (size_t w = 0; w < (pages + 63) / 64; w++) bits[w].store(0, std::memory_order_relaxed);
  }

  // Allocates the per-page arrays; returns 0 or -errno.
  int alloc_metadata();
  void free_metadata();
};

// Process-wide: every region of every Linux backend, found by address from a signal
// handler without locks. Insert/remove take a mutex (never called from a handler).
// Unmapping a region while another thread faults on it is undefined, as munmap is.
namespace region_table {
int insert(Region *r);  // -ENOSPC when full
void remove(Region *r);
Region *find(uintptr_t addr);
}  // namespace region_table

// Coalesces per-page values into runs of equal value over contiguous pages and hands each
// run to `emit(start, pages, value)` -> 0 or -errno. After the first error nothing more is
// emitted and error() keeps it.
template <typename Value, typename Emit>
class Runs {
 public:
  explicit Runs(Emit emit) : emit_(emit) {}
  void add(uintptr_t addr, size_t pages, Value v) {
    if (n_ && addr == start_ + n_ * kPageSize && v == value_) {
      n_ += pages;
      return;
    }
    flush();
    start_ = addr;
    n_ = pages;
    value_ = v;
  }
  int flush() {
    if (n_ && !err_) err_ = emit_(start_, n_, value_);
    n_ = 0;
    return err_;
  }
  int error() const { return err_; }

 private:
  Emit emit_;
  uintptr_t start_ = 0;
  size_t n_ = 0;
  Value value_{};
  int err_ = 0;
};

}  // namespace dunegc::paging::detail
