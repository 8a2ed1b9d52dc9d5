// Stop-the-world by signals: SIGPWR, an acknowledgement counter and a futex epoch.
//
// stop(): make the epoch odd, signal every other registered thread, wait until as many
// acknowledgements arrived. The handler copies the interrupted registers into the
// thread's record, notes where its stack must be scanned from, acknowledges, and sleeps on
// the epoch futex. start(): make the epoch even and wake them all. No restart signal and
// no second handshake are needed: a thread that has not yet left its handler when the
// next stop begins sees the epoch change, returns, and takes the new (pending) signal.
#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>

#include "report.h"
#include "stop_world.h"

namespace dunegc::gc {

namespace {

constexpr int kSuspendSignal = SIGPWR;

std::atomic<uint32_t> g_epoch{0};  // odd while the world is stopped
std::atomic<uint32_t> g_acks{0};

long futex(std::atomic<uint32_t> *a, int op, uint32_t val, const timespec *ts) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t *>(a), op, val, ts, nullptr, 0);
}

// Async-signal-safe: only atomics, syscalls and the initial-exec TLS pointer.
void suspend_handler(int, siginfo_t *, void *context) {
  int saved_errno = errno;
  ThreadRecord *me = t_self;
  uint32_t epoch = g_epoch.load(std::memory_order_acquire);
  if (!me || !(epoch & 1)) {  // not ours, or not during a stop
    errno = saved_errno;
    return;
  }
  auto *uc = static_cast<ucontext_t *>(context);
  for (int i = 0; i < NGREG; i++) me->regs[i] = uintptr_t(uc->uc_mcontext.gregs[i]);
  // Scanning from here covers this frame and the signal frame above it, which holds the
  // interrupted context including the vector registers.
  volatile char here = 0;
  uintptr_t sp = reinterpret_cast<uintptr_t>(&here);
  me->altstack_lo = me->altstack_hi = 0;
  if (sp < me->stack_base && (!me->stack_lo || sp >= me->stack_lo)) {
    me->stop_sp = sp;
  } else {
    // On an alternate signal stack: scan it whole, and the normal stack from the
    // interrupted stack pointer (below it lies the red zone).
    stack_t ss;
    if (sigaltstack(nullptr, &ss) == 0 && ss.ss_size) {
      me->altstack_lo = reinterpret_cast<uintptr_t>(ss.ss_sp);
      me->altstack_hi = me->altstack_lo + ss.ss_size;
    }
    me->stop_sp = uintptr_t(uc->uc_mcontext.gregs[REG_RSP]) - 128;
  }
  g_acks.fetch_add(1, std::memory_order_release);
  futex(&g_acks, FUTEX_WAKE_PRIVATE, 1, nullptr);
  while (g_epoch.load(std::memory_order_acquire) == epoch) futex(&g_epoch, FUTEX_WAIT_PRIVATE, epoch, nullptr);
  errno = saved_errno;
}

class SignalWorldStopper final : public WorldStopper {
 public:
  const char *name() const override { return "signals"; }

  int init() override {
    struct sigaction sa = {};
    sa.sa_sigaction = &suspend_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    for (int s : {SIGSEGV, SIGBUS, SIGILL, SIGFPE}) sigdelset(&sa.sa_mask, s);
    struct sigaction old;
    if (sigaction(kSuspendSignal, &sa, &old) != 0) return -errno;
    if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN && old.sa_sigaction != &suspend_handler)
      warn("replaced an existing SIGPWR handler: dunegc stops threads with SIGPWR");
    return 0;
  }

  void stop(ThreadRegistry &threads, ThreadRecord *self, void (*gone)(ThreadRecord *)) override {
    g_acks.store(0, std::memory_order_relaxed);
    g_epoch.fetch_add(1, std::memory_order_acq_rel);
    uint32_t sent = 0;
    threads.for_each([&](ThreadRecord *r) {
      if (r == self) return;
      int rc = pthread_kill(r->thread, kSuspendSignal);
      if (rc == 0) {
        sent++;
      } else if (rc == ESRCH) {
        warn("thread %d exited without unregistering; dropping it", int(r->tid));
        gone(r);
      } else {
        fatal("cannot signal thread %d to stop it: %s", int(r->tid), strerror(rc));
      }
    });
    timespec second = {1, 0};
    unsigned waited = 0;
    uint32_t got;
    while ((got = g_acks.load(std::memory_order_acquire)) < sent) {
      if (futex(&g_acks, FUTEX_WAIT_PRIVATE, got, &second) != 0 && errno == ETIMEDOUT && ++waited == 5)
        warn("stopping the world: %u of %u threads have not answered SIGPWR for 5 s (is it blocked?)",
             sent - g_acks.load(), sent);
    }
  }

  void start(ThreadRegistry &, ThreadRecord *) override {
    g_epoch.fetch_add(1, std::memory_order_acq_rel);
    futex(&g_epoch, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr);
  }
};

}  // namespace

WorldStopper *signal_world_stopper() {
  static SignalWorldStopper stopper;
  return &stopper;
}

}  // namespace dunegc::gc
