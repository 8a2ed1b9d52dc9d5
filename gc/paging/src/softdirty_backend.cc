// The `softdirty` backend: DIRTY from the soft-dirty PTE bit. Writing "4" to
// /proc/self/clear_refs clears the bit in every PTE of the process (and write-protects
// them, so the next write faults and sets it again); /proc/self/pagemap shows it as bit 55.
//
// Soft-dirty has no fault notification, so this backend traps nothing: it offers DIRTY and
// MAP2 only. clear_refs is process-wide, so every collect first harvests the bits of every
// tracked region (of every softdirty backend in the process) into the region's pending
// bitmap, then clears; a region's pages are reported when that region is collected. The
// harvest and the clear are two system calls: a write that lands between them is lost
// (Feature::dirty_atomic says so) -- collect with the writers stopped, as a final
// stop-the-world rescan does. Regions are MADV_NOHUGEPAGE: a transparent huge page carries
// one soft-dirty bit for 2 MiB, which is not an exact answer.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <vector>

#include "linux_backend.h"

namespace dunegc::paging::detail {

namespace {

constexpr uint64_t kPmSoftDirty = uint64_t(1) << 55;

// Process-wide, because clear_refs is.
struct Shared {
  std::mutex mutex;
  std::vector<Region *> tracked;
  int pagemap_fd = -1;
  int clear_refs_fd = -1;
};
Shared &shared() {
  static Shared s;
  return s;
}

// pagemap entries of pages [first, first+n) of the address space starting at `base`.
int read_pagemap(int fd, uintptr_t base, size_t n, uint64_t *out) {
  size_t bytes = n * sizeof(uint64_t), done = 0;
  off_t off = off_t(base / kPageSize * sizeof(uint64_t));
  while (done < bytes) {
    ssize_t got = pread(fd, reinterpret_cast<char *>(out) + done, bytes - done, off + off_t(done));
    if (got <= 0) return got < 0 ? -errno : -EIO;
    done += size_t(got);
  }
  return 0;
}

int clear_refs(int fd) {
  return write(fd, "4", 1) == 1 ? 0 : -errno;
}

// Lock held. Moves every tracked page's soft-dirty bit into its region's pending bits, then
// clears the bits of the whole process.
int harvest_and_clear(Shared &s) {
  uint64_t entries[512];
  for (Region *r : s.tracked) {
    for (size_t first = 0; first < r->pages; first += std::size(entries)) {
      size_t n = std::min(std::size(entries), r->pages - first);
      if (int e = read_pagemap(s.pagemap_fd, r->page_addr(first), n, entries); e != 0) return e;
      for (size_t k = 0; k < n; k++)
        if (entries[k] & kPmSoftDirty) r->set_bit(first + k);
    }
  }
  return clear_refs(s.clear_refs_fd);
}

std::string kernel_release() {
  utsname u{};
  uname(&u);
  return u.release;
}

// Runs once, before any softdirty backend exists (open() probes before it makes one), so
// the process-wide clear here cannot erase anybody's record.
Probe run_probe() {
  Probe p;
  Shared &s = shared();
  s.pagemap_fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  s.clear_refs_fd = ::open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (s.pagemap_fd < 0 || s.clear_refs_fd < 0) {
    p.why = std::string("cannot open /proc/self/pagemap and clear_refs: ") + error_text(errno);
    return p;
  }
  auto *m = static_cast<volatile char *>(
      mmap(nullptr, 2 * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (m == MAP_FAILED) {
    p.why = std::string("mmap failed: ") + error_text(errno);
    return p;
  }
  madvise(const_cast<char *>(m), 2 * kPageSize, MADV_NOHUGEPAGE);
  m[0] = 1;
  m[kPageSize] = 1;
  uint64_t e[2] = {0, 0};
  int err = clear_refs(s.clear_refs_fd);
  if (!err) {
    m[0] = 2;  // written after the clear; m[kPageSize] is not
    err = read_pagemap(s.pagemap_fd, reinterpret_cast<uintptr_t>(m), 2, e);
  }
  munmap(const_cast<char *>(m), 2 * kPageSize);
  if (err) {
    p.why = std::string("clear_refs/pagemap failed: ") + error_text(-err);
  } else if (!(e[0] & kPmSoftDirty)) {
    p.why =
        "pagemap bit 55 (soft-dirty) stayed clear on a page written after clear_refs=4: "
        "this kernel (" +
        kernel_release() + ") does not track soft-dirty";
  } else if (e[1] & kPmSoftDirty) {
    p.why = "pagemap bit 55 (soft-dirty) is set on a page not written since clear_refs=4";
  } else {
    p.ok = true;
  }
  return p;
}

constexpr std::string_view kNoTraps =
    "soft-dirty only records writes; it has no protections and no fault notification";
constexpr std::string_view kNotAtomic =
    "the pagemap read and the clear_refs write are two system calls: a write between them "
    "is lost";
constexpr std::string_view kNoAccessed =
    "Linux shows user space no accessed bits (clear_refs can clear them but pagemap does "
    "not show them)";

class SoftDirtyBackend final : public LinuxBackend {
 public:
  ~SoftDirtyBackend() override {  // the base unmaps the regions; forget them here first
    std::lock_guard<std::mutex> g(shared().mutex);
    auto &t = shared().tracked;
    t.erase(std::remove_if(t.begin(), t.end(), [this](Region *r) { return r->owner == this; }),
            t.end());
  }

  std::string_view name() const override { return "softdirty"; }

  Support supports(Feature f) const override {
    switch (f) {
      case Feature::dirty:
      case Feature::dirty_kernel_writes:  // the kernel's write sets the bit like any other
      case Feature::kernel_writes_checked:
      case Feature::map2:
        return {true, {}};
      case Feature::dirty_atomic:
        return {false, kNotAtomic};
      case Feature::accessed:
        return {false, kNoAccessed};
      default:
        return {false, kNoTraps};
    }
  }

  int apply(const Change *, size_t) override { return -EOPNOTSUPP; }

  int dirty_start(void *region) override {
    Region *r;
    if (int e = region_at(region, &r); e != 0) return e;
    Shared &s = shared();
    std::lock_guard<std::mutex> g(s.mutex);
    if (r->tracking) return -EBUSY;
    if (int e = harvest_and_clear(s); e != 0) return e;
    r->clear_bits();
    r->tracking = true;
    s.tracked.push_back(r);
    return 0;
  }

  int dirty_stop(void *region) override {
    Region *r;
    if (int e = region_at(region, &r); e != 0) return e;
    std::lock_guard<std::mutex> g(shared().mutex);
    if (!r->tracking) return -EINVAL;
    untrack(*r);
    return 0;
  }

  int dirty_collect(void *addr, size_t len, PageBitmap &out) override {
    Region *r;
    if (int e = region_of(addr, len, &r); e != 0) return e;
    Shared &s = shared();
    std::lock_guard<std::mutex> g(s.mutex);
    if (!r->tracking) return -EINVAL;
    if (int e = harvest_and_clear(s); e != 0) return e;
    size_t first = r->index(reinterpret_cast<uintptr_t>(addr)), n = len / kPageSize;
    out.reset(addr, n);
    for (size_t i = first; i < first + n; i++) {
      if (!r->bit(i)) continue;
      out.set(i - first);
      r->bits[i / 64].fetch_and(~(uint64_t(1) << (i % 64)), std::memory_order_relaxed);
    }
    return 0;
  }

 private:
  int on_map(Region &r) override {
    return madvise(reinterpret_cast<void *>(r.base), r.len(), MADV_NOHUGEPAGE) == 0 ? 0 : -errno;
  }

  void on_unmap(Region &r) override {
    std::lock_guard<std::mutex> g(shared().mutex);
    if (r.tracking) untrack(r);
  }

  void untrack(Region &r) {  // shared().mutex held
    auto &t = shared().tracked;
    t.erase(std::remove(t.begin(), t.end(), &r), t.end());
    r.tracking = false;
  }
};

}  // namespace

const Probe &probe_softdirty() {
  static const Probe p = run_probe();
  return p;
}

std::unique_ptr<Backend> make_softdirty(std::string *) {
  return std::make_unique<SoftDirtyBackend>();
}

}  // namespace dunegc::paging::detail
