// dunegc::paging -- the virtual-memory primitives of Appel & Li (ASPLOS'91) behind one
// interface, for a collector's concurrent marking (DIRTY), compaction (MAP2) and read/write
// barriers (PROT1, PROTN, UNPROT, TRAP).
//
// A Backend owns the memory it manages: every primitive works on regions made by map() or
// map_alias(), because each mechanism has to know its memory up front (uffd registers it,
// MAP2 needs a memfd, Dune maps it into the guest page tables). Backends are chosen by
// name and probed when opened; one that cannot work here says why and is never handed out.
//
// Errors: calls return 0 or a negative errno. -EINVAL: not page aligned, or not inside one
// region of this backend. -EOPNOTSUPP: the backend lacks that feature (supports() says
// why). -EBUSY: the request conflicts with the region's state (e.g. uffd cannot trap in a
// region it is tracking). Bad input changes nothing; a system call failing part-way through
// a batch (ENOMEM once mprotect has split vm.max_map_count VMAs) leaves the changes before
// it applied.
//
// The public headers are C++17, so that a program need not be built as C++20 to use them.
//
// Threads: any thread may call any primitive; a backend serialises its own state changes.
// The fault handler may call apply() (that is how it resolves a fault) but must not touch
// protected memory itself -- use a MAP2 alias to reach it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dunegc/paging/page_bitmap.h"

namespace dunegc::paging {

// Access rights of a page. mprotect-like: `rw` is "unprotected" for a region from map().
enum class Prot : uint8_t { none = 0, read = 1, write = 2, rw = 3, exec = 4, rx = 5, rwx = 7 };
constexpr Prot operator|(Prot a, Prot b) {
  return Prot(uint8_t(a) | uint8_t(b));
}
constexpr Prot operator&(Prot a, Prot b) {
  return Prot(uint8_t(a) & uint8_t(b));
}
constexpr Prot without(Prot a, Prot b) {
  return Prot(uint8_t(a) & ~uint8_t(b));
}
constexpr bool allows(Prot p, Prot need) {
  return (p & need) == need;
}
const char *prot_name(Prot p);  // "none", "r", "rw", "rx", "rwx", ...

enum class Access : uint8_t { read, write, exec };
const char *access_name(Access a);
constexpr Prot needs(Access a) {
  return a == Access::read ? Prot::read : a == Access::write ? Prot::write : Prot::exec;
}

class Backend;

// What the fault handler gets: the faulting address (exact, not page-rounded) and the kind
// of access the hardware reported.
struct Fault {
  Backend *backend;
  void *addr;
  Access access;
};

enum class FaultResult : uint8_t {
  retry,      // resolved (or deliberately not): re-execute the access
  unhandled,  // not ours: mprotect/uffd-sigbus chain to the previous signal handler;
              // uffd (handler thread) cannot hand a fault on and aborts with a message
};

// Runs where the backend takes the fault: in a signal handler on the faulting thread
// (mprotect, uffd-sigbus: async-signal-safe code only; apply() is), or on the uffd handler
// thread while the faulting thread sleeps (uffd) -- which then may resume as soon as the
// handler's apply() unprotects the page, before the handler returns -- or in libdune's
// page-fault handler on the faulting thread's vCPU (dune: no locks the interrupted code
// may hold; apply() takes none).
using FaultHandler = FaultResult (*)(const Fault &fault, void *arg);

// What a backend can do here. Each unsupported feature has a reason.
enum class Feature : uint8_t {
  trap,                    // fault upcall on protected pages
  trap_kernel_writes,      // a system call writing a protected page (read(2) into it) traps
                           // like the program's own write, instead of failing with EFAULT
  protect_none,            // Prot::none (read protection), not only write protection
  protect_exec,            // exec rights as part of protections
  protect_while_tracking,  // trapping protections inside a region under dirty tracking
  dirty,                   // DIRTY: dirty_start / dirty_collect / dirty_stop
  dirty_atomic,            // dirty_collect loses no write that races with it
  dirty_kernel_writes,     // system calls' writes into a tracked region are recorded
                           // (instead of failing with EFAULT)
  kernel_writes_checked,   // a system call writing a protected or tracked page never goes
                           // unnoticed: it traps / is recorded, or fails with EFAULT (dune:
                           // no -- the host kernel writes through the host's page tables)
  accessed,                // accessed-bit sampling
  map2,                    // map_alias: one memory at two addresses
};
inline constexpr Feature kAllFeatures[] = {
    Feature::trap,         Feature::trap_kernel_writes,     Feature::protect_none,
    Feature::protect_exec, Feature::protect_while_tracking, Feature::dirty,
    Feature::dirty_atomic, Feature::dirty_kernel_writes,    Feature::kernel_writes_checked,
    Feature::accessed,     Feature::map2};
const char *feature_name(Feature f);

struct Support {
  bool ok;
  std::string_view why;  // empty when ok; otherwise one line, valid while the backend lives
};

// Backing of a region: `shared` regions (a memfd) can have aliases (MAP2).
enum class Backing : uint8_t { anonymous, shared };

// One protection change of a batch.
struct Change {
  void *addr;
  size_t len;
  Prot prot;
};

class Backend {
 public:
  virtual ~Backend() = default;
  Backend(const Backend &) = delete;
  Backend &operator=(const Backend &) = delete;

  virtual std::string_view name() const = 0;
  virtual Support supports(Feature f) const = 0;

  // A new region of `len` bytes (rounded up to pages), readable and writable, zero-filled.
  virtual int map(size_t len, Backing backing, void **out) = 0;
  // MAP2: a second view of the shared region that starts at `region`, with its own
  // protections and its own dirty state (both belong to virtual pages, as PTE bits do).
  virtual int map_alias(void *region, void **out) = 0;
  // Unmap a region or alias made by map() / map_alias(), given its start.
  virtual int unmap(void *region) = 0;

  // PROT1 / PROTN / UNPROT, batched: apply every change in order (a later change to the
  // same page wins), then flush the TLB once where the mechanism allows it (dune: one
  // shootdown; Linux backends: the kernel flushes inside each syscall, and the batch is
  // coalesced into as few syscalls as there are runs of equal protection).
  virtual int apply(const Change *changes, size_t n) = 0;
  int apply(const std::vector<Change> &changes) { return apply(changes.data(), changes.size()); }
  template <size_t N>
  int apply(const Change (&changes)[N]) {
    return apply(changes, N);
  }
  int protect(void *addr, size_t len, Prot prot) {
    const Change c{addr, len, prot};
    return apply(&c, 1);
  }
  int unprotect(void *addr, size_t len) { return protect(addr, len, Prot::rw); }

  // TRAP: called on an access that the protections set by apply() forbid. Set it before
  // protecting anything; nullptr means every fault is unhandled.
  virtual void set_fault_handler(FaultHandler handler, void *arg) = 0;

  // DIRTY. dirty_start: from now on record writes to the whole region. dirty_collect:
  // exactly the pages of [addr, addr+len) written since the last collect (or start), and
  // forget them. Dirty state belongs to virtual pages: a write through a MAP2 alias marks
  // the alias, not the region. Feature::dirty_kernel_writes says whether a system call
  // may write into a tracked region.
  virtual int dirty_start(void *region) = 0;
  virtual int dirty_collect(void *addr, size_t len, PageBitmap &out) = 0;
  virtual int dirty_stop(void *region) = 0;

  // Accessed bits of [addr, addr+len) since the last call, then cleared.
  virtual int accessed_collect(void *addr, size_t len, PageBitmap &out) = 0;

 protected:
  Backend() = default;
};

// The backends this build knows, in a stable order.
std::vector<std::string> backend_names();

struct BackendInfo {
  std::string name;
  bool supported;
  std::string why;  // why not, when unsupported (an unknown name says so)
};

// Probe once per process (cached); cheap after the first call.
BackendInfo probe(std::string_view name);

// A working backend, or nullptr with the reason in *why. Never an unprobed one.
std::unique_ptr<Backend> open(std::string_view name, std::string *why = nullptr);

// Give the calling thread an alternate signal stack (if it has none), so that protection
// faults taken as signals are handled even when the thread's own stack is the problem;
// and, while a `dune` backend is open, enter Dune mode (a thread outside Dune mode runs on
// the host's page tables: no traps, no dirty or accessed bits for its accesses).
// open() does it for the calling thread; every other thread that touches managed memory
// (mprotect, uffd-sigbus, dune) or calls a primitive (dune) must call it once.
// Returns 0 or a negative errno.
int prepare_thread();

}  // namespace dunegc::paging
