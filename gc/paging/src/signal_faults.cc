#include "signal_faults.h"

#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <cerrno>
#include <mutex>

#include "dune_backend.h"
#include "linux_backend.h"
#include "region.h"

namespace dunegc::paging {

namespace {

// The x86 page-fault error code, which the kernel copies into the signal frame.
constexpr long kPfWrite = 1 << 1, kPfInstr = 1 << 4;

Access access_from(void *ucontext) {
  long err = static_cast<ucontext_t *>(ucontext)->uc_mcontext.gregs[REG_ERR];
  if (err & kPfInstr) return Access::exec;
  return (err & kPfWrite) ? Access::write : Access::read;
}

struct SignalState {
  int refs = 0;
  bool installed = false;
  struct sigaction previous {};  // written before our handler is installed, then read-only
};

std::mutex state_mutex;
SignalState segv_state, bus_state;

SignalState *state_of(int signo) {
  return signo == SIGSEGV ? &segv_state : signo == SIGBUS ? &bus_state : nullptr;
}

void chain(int signo, siginfo_t *info, void *ucontext) {
  const struct sigaction &prev = state_of(signo)->previous;
  if (prev.sa_flags & SA_SIGINFO) {
    prev.sa_sigaction(signo, info, ucontext);
    return;
  }
  if (prev.sa_handler == SIG_DFL || prev.sa_handler == SIG_IGN) {
    // Take the default action: restore it and let the access fault again (or, for a
    // signal that was sent rather than caused, re-send it; it arrives when we return).
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigaction(signo, &dfl, nullptr);
    if (info->si_code <= 0) raise(signo);
    return;
  }
  prev.sa_handler(signo);
}

void on_signal(int signo, siginfo_t *info, void *ucontext) {
  int saved_errno = errno;
  bool handled = false;
  if (info->si_code > 0) {  // raised by a fault, not sent by kill()/raise()
    uintptr_t a = reinterpret_cast<uintptr_t>(info->si_addr);
    if (detail::Region *r = detail::region_table::find(a))
      handled = r->owner->on_signal_fault(*r, info->si_addr, access_from(ucontext), signo);
  }
  errno = saved_errno;
  if (!handled) chain(signo, info, ucontext);
}

// The alternate stack this library gave a thread; released when the thread exits.
struct AltStack {
  void *mem = nullptr;
  size_t size = 0;
  ~AltStack() {
    if (!mem) return;
    stack_t off{};
    off.ss_flags = SS_DISABLE;
    sigaltstack(&off, nullptr);
    munmap(mem, size);
  }
};
thread_local AltStack alt_stack;

}  // namespace

int prepare_thread() {
  if (int e = detail::dune_prepare_thread(); e != 0) return e;
  stack_t cur;
  if (sigaltstack(nullptr, &cur) != 0) return -errno;
  if (!(cur.ss_flags & SS_DISABLE)) return 0;  // has one already (ours, or ASan's)
  const size_t stack = size_t(64) * 1024, total = stack + kPageSize;
  void *mem = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return -errno;
  mprotect(mem, kPageSize, PROT_NONE);  // guard page below the stack
  stack_t s{};
  s.ss_sp = static_cast<char *>(mem) + kPageSize;
  s.ss_size = stack;
  if (sigaltstack(&s, nullptr) != 0) {
    int e = -errno;
    munmap(mem, total);
    return e;
  }
  alt_stack.mem = mem;
  alt_stack.size = total;
  return 0;
}

namespace detail {

int signal_faults_acquire(int signo) {
  SignalState *st = state_of(signo);
  if (!st) return -EINVAL;
  std::lock_guard<std::mutex> g(state_mutex);
  if (st->refs++ > 0 || st->installed) return 0;
  struct sigaction sa {};
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(signo, nullptr, &st->previous) != 0 || sigaction(signo, &sa, nullptr) != 0) {
    st->refs--;
    return -errno;
  }
  st->installed = true;
  return 0;
}

void signal_faults_release(int signo) {
  SignalState *st = state_of(signo);
  if (!st) return;
  std::lock_guard<std::mutex> g(state_mutex);
  if (st->refs == 0 || --st->refs > 0) return;
  // Someone who installed over us chains to us: stay, with an empty region table we only
  // pass faults on.
  struct sigaction cur {};
  sigaction(signo, nullptr, &cur);
  if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_signal) {
    sigaction(signo, &st->previous, nullptr);
    st->installed = false;
  }
}

}  // namespace detail

}  // namespace dunegc::paging
