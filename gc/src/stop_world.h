// Stopping the world: the seam between the collector and the mechanism that halts the
// other mutator threads.
//
// The collector only needs: every registered thread but the caller stopped at a point
// where its registers and stack are visible, with its stack pointer and general registers
// in its ThreadRecord; and, later, all of them resumed. On Linux this is done with a
// signal and a handshake (SignalWorldStopper). In Dune mode every thread runs on its own
// vCPU in ring 0 of the guest, and a stopper can instead send an IPI whose handler
// saves the same state and spins until released -- no host signal delivery on the
// critical path. That stopper implements this interface; nothing else changes.
#pragma once

#include "threads.h"

namespace dunegc::gc {

class WorldStopper {
 public:
  virtual ~WorldStopper() = default;
  virtual const char *name() const = 0;
  // Prepares the mechanism (handlers, helper state). 0 or -errno.
  virtual int init() = 0;
  // Called with the collector's lock held, so no registration changes meanwhile. On
  // return every thread in `threads` other than `self` is stopped with stop_sp and regs
  // filled in. Threads that no longer exist are unlinked and handed to `gone`.
  virtual void stop(ThreadRegistry &threads, ThreadRecord *self, void (*gone)(ThreadRecord *)) = 0;
  virtual void start(ThreadRegistry &threads, ThreadRecord *self) = 0;
};

// Signal-based stop: SIGPWR to each thread; its handler records sp and registers,
// acknowledges through a counter, and waits on a futex until the collector's epoch moves.
// One per process (the signal handler is process-wide); never freed.
WorldStopper *signal_world_stopper();

}  // namespace dunegc::gc
