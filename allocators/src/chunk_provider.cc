#include "dunegc/allocators/chunk_provider.h"

#include <sys/mman.h>

#include <cerrno>

#include "dunegc/allocators/size_classes.h"

namespace dunegc::allocators {

ChunkProvider::~ChunkProvider() {
  if (base_) munmap(reinterpret_cast<void *>(base_), size_);
}

int ChunkProvider::reserve(size_t bytes) {
  if (base_) return -EBUSY;
  if (bytes == 0 || bytes > (size_t{1} << 46)) return -EINVAL;
  size_t size = (bytes + kAlign - 1) & ~(kAlign - 1);
  // Over-reserve by one alignment unit, then trim both ends to the aligned range.
  size_t span = size + kAlign;
  void *p = mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return -errno;
  uintptr_t raw = reinterpret_cast<uintptr_t>(p);
  uintptr_t aligned = (raw + kAlign - 1) & ~(kAlign - 1);
  if (aligned > raw) munmap(p, aligned - raw);
  uintptr_t tail = aligned + size;
  if (raw + span > tail) munmap(reinterpret_cast<void *>(tail), raw + span - tail);
  base_ = aligned;
  size_ = size;
  return 0;
}

int ChunkProvider::commit(uintptr_t addr, size_t len) {
  if (!contains(addr, len) || (addr | len) & (kPageSize - 1)) return -EINVAL;
  if (mprotect(reinterpret_cast<void *>(addr), len, PROT_READ | PROT_WRITE) != 0) return -errno;
  return 0;
}

int ChunkProvider::decommit(uintptr_t addr, size_t len) {
  if (!contains(addr, len) || (addr | len) & (kPageSize - 1)) return -EINVAL;
  if (madvise(reinterpret_cast<void *>(addr), len, MADV_DONTNEED) != 0) return -errno;
  return 0;
}

void *ChunkProvider::map_metadata(size_t bytes) {
  void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void ChunkProvider::unmap_metadata(void *p, size_t bytes) {
  if (p) munmap(p, bytes);
}

}  // namespace dunegc::allocators
