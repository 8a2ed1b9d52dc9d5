// Threads, stacks, the allocation lock, and the pthread/dlopen wrappers that
// <gc/gc_pthread_redirects.h> routes calls to.
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>

#include <cerrno>

#include "bdw.h"

using namespace dunegc::bdw;
using dunegc::gc::warn;

extern "C" {

void GC_alloc_lock(void) {
  ensure_init();
  C().lock();
}
void GC_alloc_unlock(void) { C().unlock(); }

void *GC_call_with_alloc_lock(GC_fn_type fn, void *arg) {
  ensure_init();
  return dunegc_call_with_lock(fn, arg);
}

// The stack base of a frame that encloses fn's: this function's own frame address.
__attribute__((noinline)) void *GC_call_with_stack_base(GC_stack_base_func fn, void *arg) {
  GC_stack_base sb;
  sb.mem_base = __builtin_frame_address(0);
  void *r = fn(&sb, arg);
  asm volatile("" : : "r"(&sb) : "memory");  // no tail call: the frame must outlive fn
  return r;
}

int GC_get_stack_base(struct GC_stack_base *sb) {
  void *base;
  if (dunegc_get_stack_base(&base) != 0) return GC_UNIMPLEMENTED;
  sb->mem_base = base;
  return GC_SUCCESS;
}

// Registration is always allowed in dunegc; marker helpers start when marking needs them.
void GC_allow_register_threads(void) { ensure_init(); }

int GC_register_my_thread(const struct GC_stack_base *sb) {
  ensure_init();
  int rc = dunegc_register_thread(sb ? sb->mem_base : nullptr);
  if (rc >= 0) return rc;  // GC_SUCCESS or GC_DUPLICATE
  return rc == -ENOMEM ? GC_NO_MEMORY : GC_UNIMPLEMENTED;  // warned by the collector
}

int GC_unregister_my_thread(void) { return dunegc_unregister_thread() == 0 ? GC_SUCCESS : GC_NOT_FOUND; }

int GC_thread_is_registered(void) { return dunegc_thread_is_registered(); }

// dunegc finds a thread's alternate signal stack itself when it stops the thread there
// (sigaltstack), so the registration has nothing to add; the bounds given are checked.
void GC_register_altstack(void *stack_start, GC_word stack_size, void *altstack_base, GC_word altstack_size) {
  (void)stack_start;
  (void)stack_size;
  if (altstack_base && altstack_size) {
    stack_t ss;
    if (sigaltstack(nullptr, &ss) == 0 && ss.ss_sp != altstack_base)
      warn("GC_register_altstack(%p): not this thread's alternate signal stack (%p); dunegc scans the one "
           "sigaltstack reports",
           altstack_base, ss.ss_sp);
  }
}

// A blocked thread stays registered: it is stopped like any other if a collection comes,
// which its blocking call does not delay (the stop signal interrupts it). So fn runs as is.
void *GC_do_blocking(GC_fn_type fn, void *arg) { return fn(arg); }
void *GC_call_with_gc_active(GC_fn_type fn, void *arg) { return fn(arg); }

void *GC_get_my_stackbottom(struct GC_stack_base *sb) {
  dunegc::gc::ThreadRecord *t = dunegc::gc::t_self;
  if (!t) {
    warn("GC_get_my_stackbottom: this thread is not registered");
    sb->mem_base = nullptr;
    return nullptr;
  }
  C().lock();
  sb->mem_base = reinterpret_cast<void *>(t->stack_base);
  C().unlock();
  return t;
}

// The caller holds the lock (Boehm's contract) unless the collector is not initialised.
void GC_set_stackbottom(void *handle, const struct GC_stack_base *sb) {
  if (!GC_is_init_called()) {
    GC_stackbottom = static_cast<char *>(sb->mem_base);  // GC_init applies it
    return;
  }
  auto *t = handle ? static_cast<dunegc::gc::ThreadRecord *>(handle) : dunegc::gc::t_self;
  if (!t) {
    warn("GC_set_stackbottom: this thread is not registered");
    return;
  }
  t->stack_base = reinterpret_cast<uintptr_t>(sb->mem_base);
}

void GC_stop_world_external(void) { C().stop_world_external(); }
void GC_start_world_external(void) { C().start_world_external(); }

// ---------------------------------------------------------------- pthread wrappers

int GC_pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *), void *arg) {
  ensure_init();
  return dunegc_pthread_create(thread, attr, start, arg);
}
int GC_pthread_join(pthread_t thread, void **ret) { return dunegc_pthread_join(thread, ret); }
int GC_pthread_detach(pthread_t thread) { return dunegc_pthread_detach(thread); }
int GC_pthread_cancel(pthread_t thread) { return pthread_cancel(thread); }
// The exiting thread is unregistered by the collector's thread-exit hook.
void GC_pthread_exit(void *ret) { pthread_exit(ret); }

// The stop signal must stay deliverable, or collections would wait on this thread forever.
int GC_pthread_sigmask(int how, const sigset_t *set, sigset_t *old) {
  if (!set || how == SIG_UNBLOCK) return pthread_sigmask(how, set, old);
  sigset_t copy = *set;
  sigdelset(&copy, SIGPWR);
  return pthread_sigmask(how, &copy, old);
}

void *GC_dlopen(const char *path, int mode) {
  ensure_init();
  return dunegc_dlopen(path, mode);
}

// ---------------------------------------------------------------- thread suspension (javaxfc.h)

void GC_suspend_thread(pthread_t thread) {
  warn("GC_suspend_thread(%#lx): dunegc cannot suspend a single thread", (unsigned long)thread);
}
void GC_resume_thread(pthread_t thread) {
  warn("GC_resume_thread(%#lx): dunegc cannot suspend a single thread", (unsigned long)thread);
}
int GC_is_thread_suspended(pthread_t) { return 0; }  // never: see GC_suspend_thread

}  // extern "C"
