// The `dune` backend: the primitives on libdune's page table (the process as a Dune guest).
//
//   protection  the W/P/NX bits of the region's own guest PTEs, edited with atomic
//               compare-and-swap (the MMU sets A/D bits concurrently on other vCPUs);
//   TRAP        libdune's page-fault handler, with the exact address and the access kind
//               from the error code; the handler may resolve and retry;
//   DIRTY       the hardware D bits, read and cleared atomically per PTE;
//   accessed    the hardware A bits, likewise;
//   MAP2        the alias's PTEs point at the region's guest-physical pages
//               (dune_vm_map_phys + dune_va_to_pa): two PTEs, one page;
//   flushing    only entries whose rights shrank (or whose A/D bit was cleared) can be
//               stale in a TLB: they are queued and one dune_tlb_shootdown() per apply()
//               or collect invalidates them here and on every other vCPU.
//
// Dune mode is per thread. open() enters it for the calling thread; prepare_thread()
// enters it for others. A thread outside Dune mode runs on the host's page tables, which
// this backend never changes: its accesses neither trap nor set A/D bits, and its calls
// are refused with -EPERM (a page-table write it made would not be seen by a shadow-paging
// KVM). System calls run in the host kernel on the host's page tables, so their writes
// into managed memory go through unnoticed (Feature::kernel_writes_checked says so).
//
// Each region is host memory (anonymous, or a memfd when shared) mapped PROT_NONE first,
// so that libdune mirrors nothing there; then the region's own PTEs are written (without
// PTE_MIRROR, so libdune never refills or reprotects them), and only then is the host
// mapping made readable and writable (for system calls, and for KVM to back the pages).
#include <dune.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <new>
#include <span>
#include <thread>
#include <vector>

#include "address_table.h"
#include "dune_backend.h"

namespace dunegc::paging::detail {

namespace {

constexpr ptent_t kProtBits = PTE_P | PTE_W | PTE_NX;
constexpr int kTableShift = 21;                  // one page table maps 2 MiB
constexpr uintptr_t kWindow = uintptr_t(1) << 30;  // guest-physical contiguity is per 1 GiB

ptent_t prot_bits(Prot p) {
  ptent_t f = p == Prot::none ? 0 : PTE_P;  // x86: any right implies read
  if (allows(p, Prot::write)) f |= PTE_W;
  if (!allows(p, Prot::exec)) f |= PTE_NX;
  return f;
}

// Whether a TLB may hold a translation of `old` that allows more than `now` does.
bool shrinks(ptent_t old, ptent_t now) {
  if (!(old & PTE_P)) return false;
  return !(now & PTE_P) || ((old & PTE_W) && !(now & PTE_W)) ||
         (!(old & PTE_NX) && (now & PTE_NX));
}

class DuneBackend;

struct DuneRegion {
  uintptr_t base = 0;
  size_t pages = 0;
  DuneBackend *owner = nullptr;
  Backing backing = Backing::anonymous;
  int memfd = -1;                 // a shared region's memfd (an alias has none)
  DuneRegion *target = nullptr;   // an alias: the region whose guest-physical pages it maps
  std::atomic<int> aliases{0};    // a region: how many aliases map its pages
  std::atomic<bool> tracking{false};
  std::vector<ptent_t *> tables;  // the page table of each 2 MiB span the region touches

  size_t len() const { return pages * kPageSize; }
  bool contains(uintptr_t a) const { return a - base < len(); }
  size_t index(uintptr_t a) const { return (a - base) / kPageSize; }
  uintptr_t page_addr(size_t i) const { return base + i * kPageSize; }
  ptent_t *pte(size_t i) const {
    uintptr_t a = page_addr(i);
    return tables[(a >> kTableShift) - (base >> kTableShift)] + PDX(0, a);
  }
};

AddressTable<DuneRegion> regions;  // every dune region of the process, for the fault handler
std::atomic<int> open_backends{0};

constexpr std::string_view kHostKernelWrites =
    "system calls run in the host kernel, which writes through the host's page tables, not "
    "the Dune page table: the write succeeds with no trap, no EFAULT and no dirty bit";

class DuneBackend final : public Backend {
 public:
  DuneBackend() { open_backends.fetch_add(1); }
  ~DuneBackend() override {
    std::vector<DuneRegion *> mine;
    {
      std::lock_guard<std::mutex> g(mutex_);
      mine = owned_;
    }
    // munmap must be made in Dune mode for libdune to drop the PTEs (and shoot them down).
    if (!mine.empty() && !dune_in_dune_mode()) dune_enter();
    std::stable_partition(mine.begin(), mine.end(), [](DuneRegion *r) { return r->target; });
    for (DuneRegion *r : mine) destroy(r);  // aliases first
    open_backends.fetch_sub(1);
  }

  std::string_view name() const override { return "dune"; }

  Support supports(Feature f) const override {
    switch (f) {
      case Feature::trap_kernel_writes:
      case Feature::dirty_kernel_writes:
      case Feature::kernel_writes_checked:
        return {false, kHostKernelWrites};
      default:
        return {true, {}};
    }
  }

  int map(size_t len, Backing backing, void **out) override {
    if (len == 0 || len > (size_t(1) << 47) || !out) return -EINVAL;
    if (!dune_in_dune_mode()) return -EPERM;
    size_t pages = (len + kPageSize - 1) / kPageSize;
    int fd = -1;
    if (backing == Backing::shared) {
      fd = shared_memfd(pages * kPageSize);
      if (fd < 0) return fd;
    }
    return add_region(pages, backing, fd, nullptr, out);
  }

  int map_alias(void *region, void **out) override {
    DuneRegion *r;
    if (int e = region_at(region, &r); e != 0) return e;
    if (r->backing != Backing::shared || r->target || !out) return -EINVAL;
    if (!dune_in_dune_mode()) return -EPERM;
    return add_region(r->pages, Backing::shared, r->memfd, r, out);
  }

  int unmap(void *region) override {
    DuneRegion *r;
    if (int e = region_at(region, &r); e != 0) return e;
    if (!dune_in_dune_mode()) return -EPERM;
    if (r->aliases.load() > 0) return -EBUSY;  // its aliases' PTEs point at its pages
    destroy(r);
    return 0;
  }

  int apply(const Change *list, size_t n) override {
    std::span<const Change> changes(list, n);
    for (const Change &c : changes) {
      DuneRegion *r;
      if (int e = region_of(c.addr, c.len, &r); e != 0) return e;
    }
    if (!dune_in_dune_mode()) return -EPERM;
    bool flush = false;
    for (const Change &c : changes) {
      DuneRegion &r = *regions.find(reinterpret_cast<uintptr_t>(c.addr));
      size_t first = r.index(reinterpret_cast<uintptr_t>(c.addr));
      ptent_t bits = prot_bits(c.prot);
      for (size_t i = first; i < first + c.len / kPageSize; i++) {
        ptent_t *p = r.pte(i);
        ptent_t old = __atomic_load_n(p, __ATOMIC_RELAXED), now;
        do {
          now = (old & ~kProtBits) | bits;
        } while (!__atomic_compare_exchange_n(p, &old, now, false, __ATOMIC_ACQ_REL,
                                              __ATOMIC_RELAXED));
        // A widened entry needs no flush: a stale, narrower translation faults, and
        // libdune (or KVM's shadow MMU) sees the PTE allows the access and retries.
        if (shrinks(old, now)) {
          dune_tlb_queue_page(reinterpret_cast<void *>(r.page_addr(i)));
          flush = true;
        }
      }
    }
    return flush ? shootdown() : 0;
  }

  void set_fault_handler(FaultHandler handler, void *arg) override {
    handler_arg_.store(arg, std::memory_order_relaxed);
    handler_.store(handler, std::memory_order_release);
  }

  FaultResult upcall(void *addr, Access access) {
    FaultHandler h = handler_.load(std::memory_order_acquire);
    if (!h) return FaultResult::unhandled;
    return h(Fault{this, addr, access}, handler_arg_.load(std::memory_order_relaxed));
  }

  int dirty_start(void *region) override {
    DuneRegion *r;
    if (int e = region_at(region, &r); e != 0) return e;
    if (!dune_in_dune_mode()) return -EPERM;
    if (r->tracking.exchange(true)) return -EBUSY;
    return harvest(*r, 0, r->pages, PTE_D, nullptr);
  }

  int dirty_collect(void *addr, size_t len, PageBitmap &out) override {
    DuneRegion *r;
    if (int e = region_of(addr, len, &r); e != 0) return e;
    if (!r->tracking.load()) return -EINVAL;
    if (!dune_in_dune_mode()) return -EPERM;
    out.reset(addr, len / kPageSize);
    return harvest(*r, r->index(reinterpret_cast<uintptr_t>(addr)), len / kPageSize, PTE_D, &out);
  }

  int dirty_stop(void *region) override {
    DuneRegion *r;
    if (int e = region_at(region, &r); e != 0) return e;
    return r->tracking.exchange(false) ? 0 : -EINVAL;
  }

  int accessed_collect(void *addr, size_t len, PageBitmap &out) override {
    DuneRegion *r;
    if (int e = region_of(addr, len, &r); e != 0) return e;
    if (!dune_in_dune_mode()) return -EPERM;
    out.reset(addr, len / kPageSize);
    return harvest(*r, r->index(reinterpret_cast<uintptr_t>(addr)), len / kPageSize, PTE_A, &out);
  }

 private:
  // Clear `bit` (PTE_D or PTE_A) in pages [first, first+n), reporting the pages that had
  // it into *out. A TLB may cache a translation with the bit set only if the PTE had it,
  // so exactly those pages are flushed: after that, the next access sets the bit again.
  // A write racing with this on another vCPU, through a translation cached before the
  // clear, is done before the shootdown returns and its page is in *out: nothing is lost.
  int harvest(DuneRegion &r, size_t first, size_t n, ptent_t bit, PageBitmap *out) {
    bool flush = false;
    for (size_t i = first; i < first + n; i++) {
      if (!(__atomic_fetch_and(r.pte(i), ~bit, __ATOMIC_ACQ_REL) & bit)) continue;
      if (out) out->set(i - first);
      dune_tlb_queue_page(reinterpret_cast<void *>(r.page_addr(i)));
      flush = true;
    }
    return flush ? shootdown() : 0;
  }

  // One round for everything queued. -EDEADLK: this call runs in a handler that
  // interrupted this thread's own round; libdune has flushed here and makes that round a
  // full flush everywhere before it returns -- the change is covered.
  static int shootdown() {
    int e = dune_tlb_shootdown();
    return e == -EDEADLK ? 0 : e;
  }

  // Host memory for `pages` pages (the memfd when fd >= 0), with the region's own PTEs
  // pointing at its guest-physical pages -- or, for an alias, at `target`'s.
  int add_region(size_t pages, Backing backing, int fd, DuneRegion *target, void **out) {
    size_t len = pages * kPageSize;
    int flags = fd >= 0 ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    void *p = mmap(nullptr, len, PROT_NONE, flags, fd, 0);
    auto *r = new (std::nothrow) DuneRegion;
    int err = p == MAP_FAILED ? -errno : r ? 0 : -ENOMEM;
    if (!err) {
      r->base = reinterpret_cast<uintptr_t>(p);
      r->pages = pages;
      r->owner = this;
      r->backing = backing;
      r->memfd = target ? -1 : fd;
      r->target = target;
      err = own_entries(*r, target ? target->base : r->base);
    }
    if (!err && mprotect(p, len, PROT_READ | PROT_WRITE) != 0) err = -errno;
    if (!err) err = regions.insert(r);
    if (err) {
      if (p != MAP_FAILED) munmap(p, len);
      if (fd >= 0 && !target) close(fd);
      delete r;
      return err;
    }
    if (target) target->aliases.fetch_add(1);
    {
      std::lock_guard<std::mutex> g(mutex_);
      owned_.push_back(r);
    }
    *out = p;
    return 0;
  }

  // Write the region's PTEs (read-write, no exec) to the guest-physical pages of `src`,
  // one guest-physical window at a time, and remember the page table of each 2 MiB span.
  static int own_entries(DuneRegion &r, uintptr_t src) {
    for (size_t off = 0; off < r.len();) {
      uintptr_t va = r.base + off, from = src + off;
      size_t n = std::min({r.len() - off, kWindow - va % kWindow, kWindow - from % kWindow});
      int e = dune_vm_map_phys(pgroot, reinterpret_cast<void *>(va), n,
                               reinterpret_cast<void *>(dune_va_to_pa(reinterpret_cast<void *>(from))),
                               PERM_R | PERM_W);
      if (e < 0) return e;
      off += n;
    }
    uintptr_t first = r.base >> kTableShift, last = (r.base + r.len() - 1) >> kTableShift;
    r.tables.resize(last - first + 1);
    for (uintptr_t t = first; t <= last; t++) {
      uintptr_t va = std::max(r.base, t << kTableShift);
      ptent_t *pte;
      if (int e = dune_vm_lookup(pgroot, reinterpret_cast<void *>(va), CREATE_NORMAL, &pte); e < 0)
        return e;
      r.tables[t - first] = pte - PDX(0, va);
    }
    return 0;
  }

  // Out of the table, unmapped (libdune drops the PTEs and shoots them down), freed.
  void destroy(DuneRegion *r) {
    regions.remove(r);
    munmap(reinterpret_cast<void *>(r->base), r->len());
    if (r->memfd >= 0) close(r->memfd);
    if (r->target) r->target->aliases.fetch_sub(1);
    {
      std::lock_guard<std::mutex> g(mutex_);
      owned_.erase(std::find(owned_.begin(), owned_.end(), r));
    }
    delete r;
  }

  int region_of(const void *addr, size_t len, DuneRegion **out) const {
    uintptr_t a = reinterpret_cast<uintptr_t>(addr);
    DuneRegion *r = nullptr;
    if (len && a % kPageSize == 0 && len % kPageSize == 0) {
      r = regions.find(a);
      if (r && (r->owner != this || !r->contains(a + len - 1))) r = nullptr;
    }
    *out = r;
    return r ? 0 : -EINVAL;
  }

  int region_at(const void *start, DuneRegion **out) const {
    if (int e = region_of(start, kPageSize, out); e != 0) return e;
    return (*out)->base == reinterpret_cast<uintptr_t>(start) ? 0 : -EINVAL;
  }

  std::mutex mutex_;  // owned_ (never taken on the fault path)
  std::vector<DuneRegion *> owned_;
  std::atomic<FaultHandler> handler_{nullptr};
  std::atomic<void *> handler_arg_{nullptr};
};

// A fault nobody resolves ends the process as libdune's own unhandled fault would: a line
// naming it, the trap frame, death by SIGSEGV. libdune has one page-fault handler slot and
// no way to read back what was there before, so there is nothing to chain to.
[[noreturn]] void die_unhandled(uintptr_t addr, Access access, bool managed, dune_tf *tf) {
  dune_printf("dunegc-paging: unhandled %s fault at %#lx (%s)\n", access_name(access),
              static_cast<unsigned long>(addr),
              managed ? "the handler did not resolve it" : "outside every dune region");
  dune_dump_trap_frame(tf);
  signal(SIGSEGV, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGSEGV);
  sigprocmask(SIG_UNBLOCK, &set, nullptr);
  syscall(SYS_tgkill, getpid(), gettid(), SIGSEGV);
  _exit(128 + SIGSEGV);
}

void on_page_fault(uintptr_t addr, uint64_t fec, dune_tf *tf) {
  Access access = (fec & FEC_I) ? Access::exec : (fec & FEC_W) ? Access::write : Access::read;
  DuneRegion *r = regions.find(addr);
  if (r && r->owner->upcall(reinterpret_cast<void *>(addr), access) == FaultResult::retry) return;
  die_unhandled(addr, access, r != nullptr, tf);
}

// In a thread of its own (Dune mode is per thread, and the probe must not change the
// caller's): enter Dune mode, then check that a write sets the hardware D bit of its PTE
// and sets it again after a clear and an invlpg -- what DIRTY relies on.
std::string check_dune_mode() {
  std::string why;
  std::thread t([&why] {
    if (int e = dune_enter(); e != 0) {
      why = std::string("cannot enter Dune mode: ") + error_text(e < 0 ? -e : EINVAL);
      return;
    }
    auto *p = static_cast<volatile char *>(
        mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (p == MAP_FAILED) {
      why = std::string("mmap in Dune mode failed: ") + error_text(errno);
      return;
    }
    ptent_t *pte = nullptr;
    p[0] = 1;
    bool first = dune_vm_lookup(pgroot, const_cast<char *>(p), CREATE_NORMAL, &pte) == 0 &&
                 (*pte & PTE_D);
    bool again = false;
    if (first) {
      __atomic_fetch_and(pte, ~PTE_D, __ATOMIC_ACQ_REL);
      dune_flush_tlb_one(reinterpret_cast<uintptr_t>(p));
      p[0] = 2;
      again = *pte & PTE_D;
    }
    munmap(const_cast<char *>(p), kPageSize);
    if (!first || !again)
      why = "a write in Dune mode did not set the PTE's dirty bit (" +
            std::string(first ? "after a clear and invlpg" : "on first write") + ")";
  });
  t.join();
  return why;
}

}  // namespace

const Probe &probe_dune() {
  static const Probe p = [] {
    Probe r;
    if (int e = dune_init(true); e != 0) {
      r.why = std::string("libdune cannot set up a VM (dune_init: ") +
              error_text(e < 0 ? -e : EINVAL) + ")";
      int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
      if (fd < 0)
        r.why += std::string("; /dev/kvm: ") + error_text(errno);
      else
        close(fd);
      return r;
    }
    r.why = check_dune_mode();
    r.ok = r.why.empty();
    return r;
  }();
  return p;
}

std::unique_ptr<Backend> make_dune(std::string *why) {
  if (int e = dune_enter(); e != 0) {
    if (why) *why = std::string("cannot enter Dune mode: ") + error_text(e < 0 ? -e : EINVAL);
    return nullptr;
  }
  static std::once_flag registered;
  std::call_once(registered, [] { dune_register_pgflt_handler(on_page_fault); });
  return std::make_unique<DuneBackend>();
}

int dune_prepare_thread() {
  if (open_backends.load() == 0 || dune_in_dune_mode()) return 0;
  int e = dune_enter();
  return e == 0 ? 0 : e < 0 ? e : -EINVAL;
}

}  // namespace dunegc::paging::detail
