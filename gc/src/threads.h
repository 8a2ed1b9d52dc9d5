// Registered mutator threads: their allocation buffers, stacks and, while the world is
// stopped, their stack pointers and registers.
#pragma once

#include <pthread.h>
#include <sys/types.h>
#include <ucontext.h>

#include <cstdint>

#include "gc_heap.h"

namespace dunegc::gc {

struct ThreadRecord {
  ThreadCache cache;  // first, so the fast path adds only a constant to the record pointer
  pthread_t thread{};
  pid_t tid = 0;
  uintptr_t stack_base = 0;  // highest address of the stack
  uintptr_t stack_lo = 0;    // lowest address, when known (else 0)
  // Written by the world stopper while the thread is stopped:
  uintptr_t stop_sp = 0;               // scan [stop_sp, stack_base)
  uintptr_t regs[NGREG] = {};          // general registers at the interruption
  uintptr_t altstack_lo = 0, altstack_hi = 0;  // set when stopped on a signal stack
  ThreadRecord *next = nullptr, *prev = nullptr;
  bool in_finalizers = false;  // guards against finalizers running finalizers
  bool shared = false;         // the record unregistered threads allocate through
};

// The calling thread's record; nullptr when it is not registered. initial-exec: one
// %fs-relative load on the allocation fast path, and safe in a signal handler.
extern __thread ThreadRecord *t_self __attribute__((tls_model("initial-exec")));

// The calling thread's stack bounds from pthread. 0 or -errno.
int current_stack_bounds(uintptr_t *lo, uintptr_t *hi);
// An address in the caller's caller's frame: below it, only frames of the callee's own.
uintptr_t current_sp();

class ThreadRegistry {
 public:
  // Records live in metadata pages. nullptr when out of memory.
  ThreadRecord *create();
  void destroy(ThreadRecord *r);
  void link(ThreadRecord *r);
  void unlink(ThreadRecord *r);
  size_t count() const { return count_; }
  template <typename F>
  void for_each(F &&f) {
    for (ThreadRecord *r = head_, *next; r; r = next) {
      next = r->next;
      f(r);
    }
  }

 private:
  ThreadRecord *head_ = nullptr;
  size_t count_ = 0;
};

}  // namespace dunegc::gc
