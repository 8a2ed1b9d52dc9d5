// Internal: a process-wide table of regions that a fault handler searches by address
// without locks (it may run in a signal handler, or in the Dune page-fault handler).
// Insert/remove take a mutex and are never called from a handler. Unmapping a region while
// another thread faults on it is undefined, as munmap is.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace dunegc::paging::detail {

// R needs `bool contains(uintptr_t) const`.
template <typename R>
class AddressTable {
 public:
  int insert(R *r) {  // 0, or -ENOSPC when full
    std::lock_guard<std::mutex> g(mutex_);
    size_t hw = high_water_.load(std::memory_order_relaxed);
    for (size_t i = 0; i < kSlots; i++) {
      if (slots_[i].load(std::memory_order_relaxed) == nullptr) {
        slots_[i].store(r, std::memory_order_release);
        if (i >= hw) high_water_.store(i + 1, std::memory_order_release);
        return 0;
      }
    }
    return -ENOSPC;
  }

  void remove(R *r) {
    std::lock_guard<std::mutex> g(mutex_);
    size_t hw = high_water_.load(std::memory_order_relaxed);
    for (size_t i = 0; i < hw; i++) {
      if (slots_[i].load(std::memory_order_relaxed) == r) {
        slots_[i].store(nullptr, std::memory_order_release);
        break;
      }
    }
  }

  R *find(uintptr_t addr) const {
    size_t hw = high_water_.load(std::memory_order_acquire);
    for (size_t i = 0; i < hw; i++) {
      R *r = slots_[i].load(std::memory_order_acquire);
      if (r && r->contains(addr)) return r;
    }
    return nullptr;
  }

 private:
  // Fixed capacity: a handler scans up to the high-water mark. A collector maps its heap
  // in large regions, so a few thousand slots are plenty and the scan stays short.
  static constexpr size_t kSlots = 4096;
  std::atomic<R *> slots_[kSlots]{};
  std::atomic<size_t> high_water_{0};
  std::mutex mutex_;
};

}  // namespace dunegc::paging::detail
