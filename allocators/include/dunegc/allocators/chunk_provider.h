// ChunkProvider: one large aligned range of address space, committed and decommitted on
// demand.
//
// The whole heap lives in a single reservation so that "is this word a heap address?" is
// one subtraction and compare, and so that later layers can treat the heap as one region
// (protect it, map it into a Dune guest, track its dirty pages). Reserved memory is
// PROT_NONE and MAP_NORESERVE: it costs neither RAM nor commit charge until committed.
// Decommitted memory stays mapped read/write (madvise(MADV_DONTNEED)): it reads as zero
// and is refaulted on touch, so decommit never splits the mapping into many VMAs.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dunegc::allocators {

class ChunkProvider {
 public:
  static constexpr size_t kAlign = size_t{2} << 20;  // 2 MiB: a large-page boundary

  ChunkProvider() = default;
  ~ChunkProvider();
  ChunkProvider(const ChunkProvider &) = delete;
  ChunkProvider &operator=(const ChunkProvider &) = delete;

  // Reserves `bytes` (rounded up to kAlign) at a kAlign-aligned address. 0 or -errno.
  int reserve(size_t bytes);
  // [addr, addr + len) must lie in the reservation and be page-aligned. 0 or -errno.
  int commit(uintptr_t addr, size_t len);
  int decommit(uintptr_t addr, size_t len);

  uintptr_t base() const { return base_; }
  size_t size() const { return size_; }
  bool contains(uintptr_t addr, size_t len) const {
    return addr >= base_ && len <= size_ && addr - base_ <= size_ - len;
  }

  // Page-granular anonymous memory for metadata that must not live in the heap (and must
  // not come from malloc, which may be locked by a thread the collector has stopped).
  static void *map_metadata(size_t bytes);
  static void unmap_metadata(void *p, size_t bytes);

 private:
  uintptr_t base_ = 0;
  size_t size_ = 0;
};

}  // namespace dunegc::allocators
