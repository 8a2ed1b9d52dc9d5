#include "linux_backend.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <new>
#include <vector>

namespace dunegc::paging::detail {

namespace {

// Regions per backend, for the destructor. Not touched on fault paths.
std::mutex owned_mutex;
std::vector<Region *> owned;

bool page_aligned(uintptr_t a) {
  return a % kPageSize == 0;
}

// Every region sits between two PROT_NONE guard pages: they catch overruns, and they keep
// the region's VMA from ever merging with a neighbour's. The kernel marks every new or
// expanded VMA soft-dirty as a whole and ignores that mark when merging, so a merge could
// make untouched pages of a region tracked by the softdirty backend read as written.
void *place(size_t pages, int fd) {
  size_t len = pages * kPageSize;
  void *res = mmap(nullptr, len + 2 * kPageSize, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (res == MAP_FAILED) return MAP_FAILED;
  void *want = static_cast<char *>(res) + kPageSize;
  int flags = fd >= 0 ? MAP_SHARED | MAP_FIXED : MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
  void *p = mmap(want, len, PROT_READ | PROT_WRITE, flags, fd, 0);
  if (p == MAP_FAILED) {
    int e = errno;
    munmap(res, len + 2 * kPageSize);
    errno = e;
  }
  return p;
}

void release(uintptr_t base, size_t pages) {
  munmap(reinterpret_cast<void *>(base - kPageSize), (pages + 2) * kPageSize);
}

}  // namespace

LinuxBackend::~LinuxBackend() {
  std::vector<Region *> mine;
  {
    std::lock_guard<std::mutex> g(owned_mutex);
    for (Region *r : owned)
      if (r->owner == this) mine.push_back(r);
  }
  // Derived destructors ran already; unmapping only needs the memory and the table.
  for (Region *r : mine) destroy(r);
}

void LinuxBackend::destroy(Region *r) {
  region_table::remove(r);
  release(r->base, r->pages);
  if (r->memfd >= 0) close(r->memfd);
  r->free_metadata();
  {
    std::lock_guard<std::mutex> g(owned_mutex);
    owned.erase(std::find(owned.begin(), owned.end(), r));
  }
  delete r;
}

int LinuxBackend::add_region(uintptr_t base, size_t pages, Backing backing, int memfd, void **out) {
  auto *r = new (std::nothrow) Region;
  int err = r ? 0 : -ENOMEM;
  if (r) {
    r->base = base;
    r->pages = pages;
    r->owner = this;
    r->backing = backing;
    r->memfd = memfd;
    err = r->alloc_metadata();
  }
  if (!err) err = on_map(*r);
  if (!err) {
    std::lock_guard<std::mutex> g(owned_mutex);
    err = region_table::insert(r);
    if (!err) owned.push_back(r);
  }
  if (err) {
    if (r) r->free_metadata();
    delete r;
    release(base, pages);
    if (memfd >= 0) close(memfd);
    return err;
  }
  *out = reinterpret_cast<void *>(base);
  return 0;
}

int LinuxBackend::map(size_t len, Backing backing, void **out) {
  if (len == 0 || len > (size_t(1) << 47) || !out) return -EINVAL;  // beyond any address space
  size_t pages = (len + kPageSize - 1) / kPageSize;
  int fd = -1;
  if (backing == Backing::shared) {
    fd = shared_memfd(pages * kPageSize);
    if (fd < 0) return fd;
  }
  void *p = place(pages, fd);
  if (p == MAP_FAILED) {
    int e = -errno;
    if (fd >= 0) close(fd);
    return e;
  }
  return add_region(reinterpret_cast<uintptr_t>(p), pages, backing, fd, out);
}

int LinuxBackend::map_alias(void *region, void **out) {
  Region *r;
  if (int e = region_at(region, &r); e != 0) return e;
  if (r->backing != Backing::shared || !out) return -EINVAL;
  int fd = dup(r->memfd);
  if (fd < 0) return -errno;
  void *p = place(r->pages, fd);
  if (p == MAP_FAILED) {
    int e = -errno;
    close(fd);
    return e;
  }
  return add_region(reinterpret_cast<uintptr_t>(p), r->pages, Backing::shared, fd, out);
}

int LinuxBackend::unmap(void *region) {
  Region *r;
  if (int e = region_at(region, &r); e != 0) return e;
  on_unmap(*r);
  destroy(r);
  return 0;
}

void LinuxBackend::set_fault_handler(FaultHandler handler, void *arg) {
  handler_arg_.store(arg, std::memory_order_relaxed);
  handler_.store(handler, std::memory_order_release);
}

int LinuxBackend::accessed_collect(void *addr, size_t len, PageBitmap &out) {
  (void)addr;
  (void)len;
  (void)out;
  return -EOPNOTSUPP;
}

bool LinuxBackend::on_signal_fault(Region &, void *, Access, int) {
  return false;
}

int LinuxBackend::region_of(const void *addr, size_t len, Region **out) const {
  uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  Region *r = nullptr;
  if (len && page_aligned(a) && page_aligned(len)) {
    r = region_table::find(a);
    if (r && (r->owner != this || !r->contains(a + len - 1))) r = nullptr;
  }
  *out = r;
  return r ? 0 : -EINVAL;
}

int LinuxBackend::region_at(const void *start, Region **out) const {
  if (int e = region_of(start, kPageSize, out); e != 0) return e;
  return (*out)->base == reinterpret_cast<uintptr_t>(start) ? 0 : -EINVAL;
}

FaultResult LinuxBackend::upcall(void *addr, Access access) {
  FaultHandler h = handler_.load(std::memory_order_acquire);
  if (!h) return FaultResult::unhandled;
  return h(Fault{this, addr, access}, handler_arg_.load(std::memory_order_relaxed));
}

}  // namespace dunegc::paging::detail
