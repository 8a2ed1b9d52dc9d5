// Internal: what the Linux backends share -- regions from mmap (anonymous) or a memfd
// (shared, aliasable), argument checking, the fault-handler slot, and the signal entry.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <span>
#include <string>

#include "dunegc/paging/paging.h"
#include "region.h"

namespace dunegc::paging::detail {

class LinuxBackend : public Backend {
 public:
  ~LinuxBackend() override;

  int map(size_t len, Backing backing, void **out) override;
  int map_alias(void *region, void **out) override;
  int unmap(void *region) override;
  void set_fault_handler(FaultHandler handler, void *arg) override;
  int accessed_collect(void *addr, size_t len, PageBitmap &out) override;

  // A fault delivered as a signal in one of this backend's regions. True: handled, retry
  // the access; false: pass it to the previous handler. Runs in signal context.
  virtual bool on_signal_fault(Region &r, void *addr, Access access, int signo);

 protected:
  LinuxBackend() = default;

  // Hooks around a region's life: register it with the mechanism, and undo that.
  virtual int on_map(Region &) { return 0; }
  virtual void on_unmap(Region &) {}

  // *out = the region of this backend holding all of [addr, addr+len), page aligned;
  // 0, or -EINVAL if there is none.
  int region_of(const void *addr, size_t len, Region **out) const;
  // *out = the region of this backend that starts exactly at `start`; 0 or -EINVAL.
  int region_at(const void *start, Region **out) const;
  // Checks every change of a batch (alignment, ownership, `allowed` prot predicate) before
  // any is applied, so a bad batch changes nothing.
  template <typename Allowed>
  int check_changes(std::span<const Change> changes, Allowed allowed) const {
    for (const Change &c : changes) {
      Region *r;
      if (int e = region_of(c.addr, c.len, &r); e != 0) return e;
      if (int e = allowed(c); e != 0) return e;
    }
    return 0;
  }

  FaultResult upcall(void *addr, Access access);

  SpinLock lock_;  // serialises protection and dirty state of all this backend's regions

 private:
  int add_region(uintptr_t base, size_t pages, Backing backing, int memfd, void **out);
  static void destroy(Region *r);  // out of the table, unmapped, freed

  std::atomic<FaultHandler> handler_{nullptr};
  std::atomic<void *> handler_arg_{nullptr};
};

// The memfd behind a shared region (Backing::shared) of `bytes`: a descriptor, or -errno.
inline int shared_memfd(size_t bytes) {
  int fd = memfd_create("dunegc-paging", MFD_CLOEXEC);
  if (fd < 0) return -errno;
  if (ftruncate(fd, off_t(bytes)) != 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  return fd;
}

// strerror(3) is not thread-safe; the description table is.
inline const char *error_text(int err) {
  const char *d = strerrordesc_np(err);
  return d ? d : "unknown error";
}

// Probes (each runs once per process and caches its answer) and factories; backends.cc
// dispatches by name and calls a factory only after its probe said yes. A factory can
// still fail (e.g. no descriptors left) and then says why.
struct Probe {
  bool ok = false;
  std::string why;
};
const Probe &probe_mprotect();
const Probe &probe_uffd();  // both uffd flavours need the same kernel support
const Probe &probe_softdirty();
std::unique_ptr<Backend> make_mprotect(std::string *why);
std::unique_ptr<Backend> make_uffd(bool sigbus_delivery, std::string *why);
std::unique_ptr<Backend> make_softdirty(std::string *why);

}  // namespace dunegc::paging::detail
