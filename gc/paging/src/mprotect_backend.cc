// The `mprotect` backend: protections are mprotect(2), faults are SIGSEGV on an alternate
// stack, MAP2 is a memfd mapped twice, and DIRTY is write-protect-and-trap: a tracked page
// stays read-only until its first write, whose fault sets its bit and unprotects it.
//
// The page's protection in the kernel is always effective(user, dirty):
//   the user's protection, minus write while tracked and not yet written.
// Every change of either input (apply, the dirty fault, collect, start, stop) happens
// under lock_ together with the mprotect that makes the kernel agree, so a collect cannot
// interleave with a dirty fault between "set bit" and "unprotect" and lose a write.
#include <signal.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "linux_backend.h"
#include "signal_faults.h"

namespace dunegc::paging::detail {

namespace {

int to_mprotect(Prot p) {
  return (allows(p, Prot::read) ? PROT_READ : 0) | (allows(p, Prot::write) ? PROT_WRITE : 0) |
         (allows(p, Prot::exec) ? PROT_EXEC : 0);
}

int do_mprotect(uintptr_t start, size_t pages, Prot p) {
  return mprotect(reinterpret_cast<void *>(start), pages * kPageSize, to_mprotect(p)) == 0 ? 0
                                                                                           : -errno;
}

Prot effective(const Region &r, size_t i) {
  Prot p = r.prot[i];
  return r.tracking && !r.bit(i) ? without(p, Prot::write) : p;
}

constexpr std::string_view kKernelEfault =
    "the kernel's own write to a write-protected page fails the system call with EFAULT; "
    "no signal is raised";
constexpr std::string_view kNoAccessed =
    "Linux shows user space no accessed bits (pagemap has none; idle-page tracking works on "
    "physical frames and needs CONFIG_IDLE_PAGE_TRACKING)";

class MprotectBackend final : public LinuxBackend {
 public:
  ~MprotectBackend() override {
    if (handling_) signal_faults_release(SIGSEGV);
  }

  int init() {
    if (int e = signal_faults_acquire(SIGSEGV); e != 0) return e;
    handling_ = true;
    return prepare_thread();
  }

  std::string_view name() const override { return "mprotect"; }

  Support supports(Feature f) const override {
    switch (f) {
      case Feature::accessed:
        return {false, kNoAccessed};
      case Feature::trap_kernel_writes:
      case Feature::dirty_kernel_writes:
        return {false, kKernelEfault};
      default:
        return {true, {}};
    }
  }

  int apply(const Change *list, size_t n_changes) override {
    std::span<const Change> changes(list, n_changes);
    if (int e = check_changes(changes, [](const Change &) { return 0; }); e != 0) return e;
    SpinGuard g(lock_);
    Runs<Prot, decltype(&do_mprotect)> runs(&do_mprotect);
    for (const Change &c : changes) {
      Region &r = *region_table::find(reinterpret_cast<uintptr_t>(c.addr));
      size_t first = r.index(reinterpret_cast<uintptr_t>(c.addr)), n = c.len / kPageSize;
      for (size_t i = first; i < first + n; i++) r.prot[i] = c.prot;
      if (!r.tracking) {
        runs.add(r.page_addr(first), n, c.prot);
      } else {
        for (size_t i = first; i < first + n; i++) runs.add(r.page_addr(i), 1, effective(r, i));
      }
    }
    return runs.flush();
  }

  bool on_signal_fault(Region &r, void *addr, Access access, int signo) override {
    if (signo != SIGSEGV) return false;
    size_t i = r.index(reinterpret_cast<uintptr_t>(addr));
    {
      SpinGuard g(lock_);
      Prot eff = effective(r, i);
      if (allows(eff, needs(access))) {
        // Already allowed: another thread resolved it first, or an earlier mprotect failed
        // half-way and the kernel lags our state. Make it agree and retry.
        return do_mprotect(r.page_addr(i), 1, eff) == 0;
      }
      if (r.tracking && access == Access::write && allows(r.prot[i], Prot::write)) {
        r.set_bit(i);  // DIRTY's trap: record, unprotect, retry; the user never sees it
        return do_mprotect(r.page_addr(i), 1, r.prot[i]) == 0;
      }
    }
    return upcall(addr, access) == FaultResult::retry;
  }

  int dirty_start(void *region) override {
    Region *r;
    if (int e = region_at(region, &r); e != 0) return e;
    SpinGuard g(lock_);
    if (r->tracking) return -EBUSY;
    r->clear_bits();
    r->tracking = true;
    return reprotect(*r, 0, r->pages);
  }

  int dirty_stop(void *region) override {
    Region *r;
    if (int e = region_at(region, &r); e != 0) return e;
    SpinGuard g(lock_);
    if (!r->tracking) return -EINVAL;
    r->tracking = false;
    r->clear_bits();
    return reprotect(*r, 0, r->pages);
  }

  int dirty_collect(void *addr, size_t len, PageBitmap &out) override {
    Region *r;
    if (int e = region_of(addr, len, &r); e != 0) return e;
    if (!r->tracking) return -EINVAL;
    size_t first = r->index(reinterpret_cast<uintptr_t>(addr)), n = len / kPageSize;
    out.reset(addr, n);
    SpinGuard g(lock_);
    // Write-protect the collected pages again in as few calls as possible: one mprotect
    // per run of equal effective protection that holds a collected page. The clean pages
    // inside such a run are write-protected already, so including them changes nothing
    // but saves a system call per collected page.
    Runs<Prot, decltype(&do_mprotect)> runs(&do_mprotect);
    size_t run_start = first, last_dirty = SIZE_MAX;
    Prot run_prot = Prot::none;
    auto end_run = [&](size_t end) {
      if (last_dirty != SIZE_MAX && last_dirty >= run_start)
        runs.add(r->page_addr(run_start), end - run_start, run_prot);
    };
    for (size_t i = first; i < first + n; i++) {
      if (r->bit(i)) {
        out.set(i - first);
        r->bits[i / 64].fetch_and(~(uint64_t(1) << (i % 64)), std::memory_order_relaxed);
        last_dirty = i;
      }
      Prot p = effective(*r, i);
      if (i == first || p != run_prot) {
        if (i != first) end_run(i);
        run_start = i;
        run_prot = p;
      }
    }
    end_run(first + n);
    return runs.flush();
  }

 private:
  // Make the kernel's protection of pages [first, first+n) equal effective(); lock held.
  int reprotect(Region &r, size_t first, size_t n) {
    Runs<Prot, decltype(&do_mprotect)> runs(&do_mprotect);
    for (size_t i = first; i < first + n; i++) runs.add(r.page_addr(i), 1, effective(r, i));
    return runs.flush();
  }

  bool handling_ = false;
};

}  // namespace

const Probe &probe_mprotect() {
  static const Probe p = [] {
    Probe r;
    void *m = mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
      r.why = std::string("mmap failed: ") + error_text(errno);
      return r;
    }
    if (mprotect(m, kPageSize, PROT_READ) != 0) {
      r.why = std::string("mprotect(PROT_READ) failed: ") + error_text(errno);
    } else {
      r.ok = true;
    }
    munmap(m, kPageSize);
    return r;
  }();
  return p;
}

std::unique_ptr<Backend> make_mprotect(std::string *why) {
  auto b = std::make_unique<MprotectBackend>();
  if (int e = b->init(); e != 0) {
    if (why) *why = std::string("cannot install the SIGSEGV handler: ") + error_text(-e);
    return nullptr;
  }
  return b;
}

}  // namespace dunegc::paging::detail
