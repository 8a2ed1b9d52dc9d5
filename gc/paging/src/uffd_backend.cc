// The `uffd` and `uffd-sigbus` backends: userfaultfd write protection.
//
// Two userfaultfd contexts, because UFFD_FEATURE_WP_ASYNC belongs to a whole context:
//  - the trap context (synchronous WP): protections set by apply() are uffd-wp bits in the
//    PTEs -- no VMA split or merge, unlike mprotect -- and a write to a protected page
//    stops the writer until it is resolved. `uffd` reads the fault message on a handler
//    thread, calls the fault handler there and wakes the writer; `uffd-sigbus` asks the
//    kernel (UFFD_FEATURE_SIGBUS) to turn the fault into SIGBUS on the writing thread
//    instead, which makes TRAP an in-thread signal as with mprotect.
//  - the dirty context (WP_ASYNC): the kernel resolves write faults itself, clearing the
//    page's wp bit; PAGEMAP_SCAN with PM_SCAN_WP_MATCHING then returns the written pages
//    and write-protects them again in one ioctl, atomically per PTE.
// A region is registered with one context at a time: dirty_start moves it to the dirty
// context, dirty_stop back. Hence no trapping protection inside a tracked region.
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <thread>

#include "linux_backend.h"
#include "signal_faults.h"
#include "uffd_abi.h"

namespace dunegc::paging::detail {

namespace {

namespace abi = uffd_abi;

// userfaultfd(2); where unprivileged use is off (vm.unprivileged_userfaultfd = 0 and no
// CAP_SYS_PTRACE) fall back to user-mode-only faults, which is all a collector needs.
// Returns the descriptor after UFFDIO_API with `features`, or -1 with *why; *available
// receives every feature the kernel offers.
int open_uffd(uint64_t features, std::string *why, uint64_t *available = nullptr,
              bool *user_mode_only = nullptr) {
  int fd = int(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
  if (user_mode_only) *user_mode_only = false;
  if (fd < 0 && errno == EPERM) {
    fd = int(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | abi::kUserModeOnly));
    if (user_mode_only) *user_mode_only = fd >= 0;
  }
  if (fd < 0) {
    if (why) *why = std::string("userfaultfd(2) failed: ") + error_text(errno);
    return -1;
  }
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = features;
  if (ioctl(fd, UFFDIO_API, &api) != 0) {
    if (why) *why = std::string("UFFDIO_API failed: ") + error_text(errno);
    close(fd);
    return -1;
  }
  if (available) *available = api.features;
  return fd;
}

int uffd_range(int fd, unsigned long req, uintptr_t start, size_t len, uint64_t mode) {
  int rc;
  if (req == UFFDIO_REGISTER) {
    uffdio_register r{};
    r.range = {start, len};
    r.mode = mode;
    rc = ioctl(fd, req, &r);
  } else if (req == UFFDIO_WRITEPROTECT) {
    uffdio_writeprotect w{};
    w.range = {start, len};
    w.mode = mode;
    rc = ioctl(fd, req, &w);
  } else {  // UFFDIO_UNREGISTER, UFFDIO_WAKE
    uffdio_range r{start, len};
    rc = ioctl(fd, req, &r);
  }
  return rc == 0 ? 0 : -errno;
}

std::string kernel_release() {
  utsname u{};
  uname(&u);
  return u.release;
}

// The features both contexts need, checked against what the kernel offers.
constexpr uint64_t kTrapFeatures =
    abi::kFeatureWpUnpopulated | abi::kFeatureWpHugetlbfsShmem | abi::kFeatureExactAddress;
constexpr uint64_t kDirtyFeatures = kTrapFeatures | abi::kFeatureWpAsync;

// A functional check: two tracked pages, one written; PAGEMAP_SCAN must report exactly it,
// then nothing.
std::string check_pagemap_scan(int async_fd, int pagemap_fd) {
  char *m = static_cast<char *>(
      mmap(nullptr, 2 * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (m == MAP_FAILED) return std::string("mmap failed: ") + error_text(errno);
  uintptr_t a = reinterpret_cast<uintptr_t>(m);
  std::string why;
  if (uffd_range(async_fd, UFFDIO_REGISTER, a, 2 * kPageSize, UFFDIO_REGISTER_MODE_WP) != 0 ||
      uffd_range(async_fd, UFFDIO_WRITEPROTECT, a, 2 * kPageSize, UFFDIO_WRITEPROTECT_MODE_WP) !=
          0) {
    why = std::string("UFFDIO_REGISTER/WRITEPROTECT (WP_ASYNC) failed: ") + error_text(errno);
  } else {
    m[kPageSize] = 1;
    abi::PageRegion vec[4];
    int found[2] = {-1, -1};
    for (int round = 0; round < 2 && why.empty(); round++) {
      abi::PmScanArg arg{};
      arg.size = sizeof arg;
      arg.flags = abi::kScanWpMatching | abi::kScanCheckWpAsync;
      arg.start = a;
      arg.end = a + 2 * kPageSize;
      arg.vec = reinterpret_cast<uintptr_t>(vec);
      arg.vec_len = 4;
      arg.category_mask = arg.return_mask = abi::kPageIsWritten;
      found[round] = ioctl(pagemap_fd, abi::kPagemapScan, &arg);
      if (found[round] < 0)
        why = std::string("PAGEMAP_SCAN failed: ") + error_text(errno) + " (needs Linux 6.7+)";
      else if (round == 0 &&
               (found[0] != 1 || vec[0].start != a + kPageSize || vec[0].end != a + 2 * kPageSize))
        why = "PAGEMAP_SCAN did not report exactly the one written page";
      else if (round == 1 && found[1] != 0)
        why = "PAGEMAP_SCAN did not write-protect the pages it reported";
    }
  }
  munmap(m, 2 * kPageSize);
  return why;
}

Probe run_probe() {
  Probe p;
  uint64_t offered = 0;
  int fd = open_uffd(0, &p.why, &offered);  // features 0: the kernel lists what it has
  if (fd < 0) return p;
  close(fd);
  struct {
    uint64_t bit;
    const char *name;
  } const needed[] = {{abi::kFeatureWpAsync, "UFFD_FEATURE_WP_ASYNC (Linux 6.7+)"},
                      {abi::kFeatureWpUnpopulated, "UFFD_FEATURE_WP_UNPOPULATED (Linux 6.4+)"},
                      {abi::kFeatureWpHugetlbfsShmem, "UFFD_FEATURE_WP_HUGETLBFS_SHMEM (5.19+)"},
                      {abi::kFeatureExactAddress, "UFFD_FEATURE_EXACT_ADDRESS (5.18+)"},
                      {abi::kFeatureSigbus, "UFFD_FEATURE_SIGBUS"}};
  for (const auto &n : needed) {
    if (!(offered & n.bit)) {
      p.why = std::string("userfaultfd on this kernel (") + kernel_release() + ") lacks " + n.name;
      return p;
    }
  }
  int async_fd = open_uffd(kDirtyFeatures, &p.why);
  if (async_fd < 0) return p;
  int pagemap_fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pagemap_fd < 0) {
    p.why = std::string("cannot open /proc/self/pagemap: ") + error_text(errno);
  } else {
    p.why = check_pagemap_scan(async_fd, pagemap_fd);
    close(pagemap_fd);
  }
  close(async_fd);
  p.ok = p.why.empty();
  return p;
}

constexpr std::string_view kNoReadProtect =
    "userfaultfd write-protects only: reads of a protected page never fault";
constexpr std::string_view kNoExec = "userfaultfd cannot change execute rights";
constexpr std::string_view kNoTrapWhileTracking =
    "WP_ASYNC belongs to a whole userfaultfd context: in a tracked region the kernel "
    "resolves write faults itself and never reports them";
constexpr std::string_view kNoAccessed =
    "Linux shows user space no accessed bits (pagemap has none; PAGEMAP_SCAN reports "
    "written, not accessed)";
constexpr std::string_view kSigbusKernel =
    "with UFFD_FEATURE_SIGBUS a fault taken in the kernel (a system call writing the page) "
    "fails that call with EFAULT";
constexpr std::string_view kUserModeOnly =
    "userfaultfd is open with UFFD_USER_MODE_ONLY (unprivileged userfaultfd is off here): "
    "faults taken in the kernel fail with EFAULT";

class UffdBackend final : public LinuxBackend {
 public:
  explicit UffdBackend(bool sigbus) : sigbus_(sigbus) {}

  ~UffdBackend() override {
    if (handler_thread_.joinable()) {
      uint64_t one = 1;
      if (write(stop_fd_, &one, sizeof one) == sizeof one) handler_thread_.join();
    }
    if (stop_fd_ >= 0) close(stop_fd_);
    if (handling_) signal_faults_release(SIGBUS);
    // Closing a userfaultfd unregisters its ranges, clears their wp bits and wakes waiters.
    for (int fd : {trap_fd_, dirty_fd_, pagemap_fd_})
      if (fd >= 0) close(fd);
  }

  int init(std::string *why) {
    trap_fd_ = open_uffd(kTrapFeatures | (sigbus_ ? abi::kFeatureSigbus : 0), why, nullptr,
                         &user_mode_only_);
    dirty_fd_ = open_uffd(kDirtyFeatures, why);
    pagemap_fd_ = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (trap_fd_ < 0 || dirty_fd_ < 0) return -EOPNOTSUPP;
    if (pagemap_fd_ < 0) return fail(why, "cannot open /proc/self/pagemap");
    if (sigbus_) {
      if (int e = signal_faults_acquire(SIGBUS); e != 0)
        return fail(why, "cannot install SIGBUS handler", e);
      handling_ = true;
      if (int e = prepare_thread(); e != 0)
        return fail(why, "cannot set up an alternate signal stack", e);
      return 0;
    }
    stop_fd_ = eventfd(0, EFD_CLOEXEC);
    if (stop_fd_ < 0) return fail(why, "eventfd failed");
    handler_thread_ = std::thread([this] { serve(); });
    return 0;
  }

  std::string_view name() const override { return sigbus_ ? "uffd-sigbus" : "uffd"; }

  Support supports(Feature f) const override {
    switch (f) {
      case Feature::protect_none:
        return {false, kNoReadProtect};
      case Feature::protect_exec:
        return {false, kNoExec};
      case Feature::protect_while_tracking:
        return {false, kNoTrapWhileTracking};
      case Feature::accessed:
        return {false, kNoAccessed};
      case Feature::trap_kernel_writes:
        if (sigbus_) return {false, kSigbusKernel};
        if (user_mode_only_) return {false, kUserModeOnly};
        return {true, {}};
      default:
        return {true, {}};
    }
  }

  int apply(const Change *list, size_t n_changes) override {
    std::span<const Change> changes(list, n_changes);
    int err = check_changes(changes, [](const Change &c) {
      if (c.prot != Prot::read && c.prot != Prot::rw) return -EOPNOTSUPP;
      Region *r = region_table::find(reinterpret_cast<uintptr_t>(c.addr));
      return r->tracking && c.prot == Prot::read ? -EBUSY : 0;
    });
    if (err) return err;
    SpinGuard g(lock_);
    auto emit = [this](uintptr_t start, size_t pages, bool wp) {
      uintptr_t pending = pending_fault_.load(std::memory_order_relaxed);
      if (!wp && pending - start < pages * kPageSize) woken_.store(true, std::memory_order_relaxed);
      return uffd_range(trap_fd_, UFFDIO_WRITEPROTECT, start, pages * kPageSize,
                        wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0);
    };
    Runs<bool, decltype(emit)> runs(emit);
    for (const Change &c : changes) {
      Region &r = *region_table::find(reinterpret_cast<uintptr_t>(c.addr));
      size_t first = r.index(reinterpret_cast<uintptr_t>(c.addr)), n = c.len / kPageSize;
      for (size_t i = first; i < first + n; i++) r.prot[i] = c.prot;
      if (!r.tracking) runs.add(r.page_addr(first), n, c.prot == Prot::read);
      // (In a tracked region the wp bits are the dirty context's; "rw" is already so.)
    }
    return runs.flush();
  }

  bool on_signal_fault(Region &r, void *addr, Access access, int signo) override {
    if (signo != SIGBUS || !sigbus_) return false;
    size_t i = r.index(reinterpret_cast<uintptr_t>(addr));
    {
      SpinGuard g(lock_);
      if (r.tracking) return false;  // not a wp fault of ours
      if (r.prot[i] != Prot::read)   // resolved meanwhile (or the kernel lags): agree, retry
        return uffd_range(trap_fd_, UFFDIO_WRITEPROTECT, r.page_addr(i), kPageSize, 0) == 0;
    }
    return upcall(addr, access) == FaultResult::retry;
  }

  int dirty_start(void *region) override {
    Region *r;
    if (int e = region_at(region, &r); e != 0) return e;
    SpinGuard g(lock_);
    if (r->tracking) return -EBUSY;
    for (size_t i = 0; i < r->pages; i++)
      if (r->prot[i] != Prot::rw) return -EBUSY;  // its traps would be lost
    if (int e = move_context(*r, trap_fd_, dirty_fd_); e != 0) return e;
    int err =
        uffd_range(dirty_fd_, UFFDIO_WRITEPROTECT, r->base, r->len(), UFFDIO_WRITEPROTECT_MODE_WP);
    if (err) {
      move_context(*r, dirty_fd_, trap_fd_);
      return err;
    }
    r->tracking = true;
    return 0;
  }

  int dirty_stop(void *region) override {
    Region *r;
    if (int e = region_at(region, &r); e != 0) return e;
    SpinGuard g(lock_);
    if (!r->tracking) return -EINVAL;
    if (int e = move_context(*r, dirty_fd_, trap_fd_); e != 0) return e;
    r->tracking = false;
    return 0;
  }

  int dirty_collect(void *addr, size_t len, PageBitmap &out) override {
    Region *r;
    if (int e = region_of(addr, len, &r); e != 0) return e;
    if (!r->tracking) return -EINVAL;
    uintptr_t start = reinterpret_cast<uintptr_t>(addr), end = start + len;
    out.reset(addr, len / kPageSize);
    abi::PageRegion vec[256];
    abi::PmScanArg arg{};
    arg.size = sizeof arg;
    arg.flags = abi::kScanWpMatching | abi::kScanCheckWpAsync;
    arg.end = end;
    arg.vec = reinterpret_cast<uintptr_t>(vec);
    arg.vec_len = std::size(vec);
    arg.category_mask = arg.return_mask = abi::kPageIsWritten;
    // The kernel stops early when vec is full; walk_end says where to go on.
    for (arg.start = start; arg.start < end; arg.start = arg.walk_end) {
      int n = ioctl(pagemap_fd_, abi::kPagemapScan, &arg);
      if (n < 0) return -errno;
      for (int k = 0; k < n; k++)
        out.set_range((vec[k].start - start) / kPageSize, (vec[k].end - vec[k].start) / kPageSize);
    }
    return 0;
  }

 private:
  static int fail(std::string *why, const char *what, int e = 0) {
    if (why) *why = std::string(what) + ": " + error_text(e ? -e : errno);
    return e ? e : -errno;
  }

  int on_map(Region &r) override {
    return uffd_range(trap_fd_, UFFDIO_REGISTER, r.base, r.len(), UFFDIO_REGISTER_MODE_WP);
  }

  // Unregistering clears the region's wp bits, so nothing carries over between contexts.
  int move_context(Region &r, int from, int to) {
    if (int e = uffd_range(from, UFFDIO_UNREGISTER, r.base, r.len(), 0); e != 0) return e;
    int e = uffd_range(to, UFFDIO_REGISTER, r.base, r.len(), UFFDIO_REGISTER_MODE_WP);
    if (e) uffd_range(from, UFFDIO_REGISTER, r.base, r.len(), UFFDIO_REGISTER_MODE_WP);
    return e;
  }

  // The handler thread (`uffd`): one fault message at a time, in arrival order.
  void serve() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);  // signals are for the application's threads
    pollfd fds[2] = {{trap_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    uffd_msg msgs[16];
    for (;;) {
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        die("poll on the userfaultfd failed", errno);
      }
      if (fds[1].revents) return;
      ssize_t got = read(trap_fd_, msgs, sizeof msgs);
      if (got < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        die("read from the userfaultfd failed", errno);
      }
      for (size_t k = 0; k < size_t(got) / sizeof msgs[0]; k++)
        if (msgs[k].event == UFFD_EVENT_PAGEFAULT) serve_fault(msgs[k].arg.pagefault.address);
    }
  }

  void serve_fault(uint64_t address) {
    uintptr_t page = address & ~uintptr_t(kPageSize - 1);
    Region *r = region_table::find(address);
    bool ours;
    {
      SpinGuard g(lock_);
      ours = r && r->owner == this && !r->tracking && r->prot[r->index(address)] == Prot::read;
    }
    if (ours) {
      pending_fault_.store(page, std::memory_order_relaxed);
      woken_.store(false, std::memory_order_relaxed);
      FaultResult res = upcall(reinterpret_cast<void *>(address), Access::write);
      pending_fault_.store(0, std::memory_order_relaxed);
      if (res == FaultResult::unhandled) {
        // The writer sleeps in the kernel and no other handler can be asked: stop here,
        // loudly, rather than let it sleep forever or write through the protection.
        fprintf(stderr,
                "dunegc paging (uffd): unhandled write fault at %p; a userfaultfd fault "
                "cannot be passed on to another handler\n",
                reinterpret_cast<void *>(address));
        abort();
      }
      if (woken_.load(std::memory_order_relaxed)) return;
    }
    // Not protected any more (resolved meanwhile), or the handler left it protected: wake
    // the writer so that it retries (and, if still protected, faults again).
    if (int e = uffd_range(trap_fd_, UFFDIO_WAKE, page, kPageSize, 0); e != 0)
      die("UFFDIO_WAKE failed", -e);
  }

  [[noreturn]] static void die(const char *what, int err) {
    fprintf(stderr, "dunegc paging (uffd): %s: %s\n", what, error_text(err));
    abort();
  }

  const bool sigbus_;
  int trap_fd_ = -1, dirty_fd_ = -1, pagemap_fd_ = -1, stop_fd_ = -1;
  bool handling_ = false;
  bool user_mode_only_ = false;
  std::thread handler_thread_;
  std::atomic<uintptr_t> pending_fault_{0};  // page whose fault the handler is serving
  std::atomic<bool> woken_{false};           // apply() un-protected it (which wakes it)
};

}  // namespace

const Probe &probe_uffd() {
  static const Probe p = run_probe();
  return p;
}

std::unique_ptr<Backend> make_uffd(bool sigbus_delivery, std::string *why) {
  auto b = std::make_unique<UffdBackend>(sigbus_delivery);
  std::string err;
  if (b->init(&err) != 0) {
    if (why) *why = err;
    return nullptr;
  }
  return b;
}

}  // namespace dunegc::paging::detail
