#include "region.h"

#include <sys/mman.h>

#include <cerrno>

#include "address_table.h"

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
AddressTable<Region> table;
}  // namespace

int insert(Region *r) {
  return table.insert(r);
}
void remove(Region *r) {
  table.remove(r);
}
Region *find(uintptr_t addr) {
  return table.find(addr);
}

}  // namespace region_table

}  // namespace dunegc::paging::detail
