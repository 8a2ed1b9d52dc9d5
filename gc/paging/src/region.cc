#include "region.h"

#include <sys/mman.h>

#include <cerrno>
#include <mutex>

namespace dunegc::paging::detail {

namespace {

size_t prot_bytes(size_t pages) {
  return (pages + kPageSize - 1) / kPageSize * kPageSize;
}
size_t bits_bytes(size_t pages) {
  return ((pages + 63) / 64 * 8 + kPageSize - 1) / kPageSize * kPageSize;
}

}  // namespace

int Region::alloc_metadata() {
  void *p =
      mmap(nullptr, prot_bytes(pages), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -errno;
  void *b =
      mmap(nullptr, bits_bytes(pages), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (b == MAP_FAILED) {
    int e = -errno;
    munmap(p, prot_bytes(pages));
    return e;
  }
  prot = static_cast<Prot *>(p);
  bits = static_cast<std::atomic<uint64_t> *>(b);
  for (size_t i = 0; i < pages; i++) prot[i] = Prot::rw;
  return 0;
}

void Region::free_metadata() {
  if (prot) munmap(prot, prot_bytes(pages));
  if (bits) munmap(bits, bits_bytes(pages));
  prot = nullptr;
  bits = nullptr;
}

namespace region_table {

namespace {
// Fixed capacity: a handler scans up to the high-water mark. A collector maps its heap in
// large regions, so a few thousand slots are plenty and the scan stays short.
constexpr size_t kSlots = 4096;
std::atomic<Region *> slots[kSlots];
std::atomic<size_t> high_water{0};
std::mutex insert_mutex;
}  // namespace

int insert(Region *r) {
  std::lock_guard<std::mutex> g(insert_mutex);
  size_t hw = high_water.load(std::memory_order_relaxed);
  for (size_t i = 0; i < kSlots; i++) {
    if (slots[i].load(std::memory_order_relaxed) == nullptr) {
      slots[i].store(r, std::memory_order_release);
      if (i >= hw) high_water.store(i + 1, std::memory_order_release);
      return 0;
    }
  }
  return -ENOSPC;
}

void remove(Region *r) {
  std::lock_guard<std::mutex> g(insert_mutex);
  size_t hw = high_water.load(std::memory_order_relaxed);
  for (size_t i = 0; i < hw; i++) {
    if (slots[i].load(std::memory_order_relaxed) == r) {
      slots[i].store(nullptr, std::memory_order_release);
      break;
    }
  }
}

Region *find(uintptr_t addr) {
  size_t hw = high_water.load(std::memory_order_acquire);
  for (size_t i = 0; i < hw; i++) {
    Region *r = slots[i].load(std::memory_order_acquire);
    if (r && r->contains(addr)) return r;
  }
  return nullptr;
}

}  // namespace region_table

}  // namespace dunegc::paging::detail
