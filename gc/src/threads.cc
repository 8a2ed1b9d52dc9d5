#include "threads.h"

#include <cerrno>
#include <new>

#include "meta.h"

namespace dunegc::gc {

__thread ThreadRecord *t_self __attribute__((tls_model("initial-exec"))) = nullptr;

int current_stack_bounds(uintptr_t *lo, uintptr_t *hi) {
  pthread_attr_t attr;
  if (int rc = pthread_getattr_np(pthread_self(), &attr); rc != 0) return -rc;
  void *addr = nullptr;
  size_t size = 0;
  int rc = pthread_attr_getstack(&attr, &addr, &size);
  pthread_attr_destroy(&attr);
  if (rc != 0) return -rc;
  *lo = reinterpret_cast<uintptr_t>(addr);
  *hi = *lo + size;
  return 0;
}

// Not inlined, so the address is below every frame of the caller (the collecting
// thread's stack is scanned from there up).
__attribute__((noinline)) uintptr_t current_sp() {
  volatile char here = 0;
  return reinterpret_cast<uintptr_t>(&here);
}

ThreadRecord *ThreadRegistry::create() {
  void *mem = ChunkProvider::map_metadata(sizeof(ThreadRecord));
  return mem ? new (mem) ThreadRecord() : nullptr;
}

void ThreadRegistry::destroy(ThreadRecord *r) { ChunkProvider::unmap_metadata(r, sizeof(ThreadRecord)); }

void ThreadRegistry::link(ThreadRecord *r) {
  r->prev = nullptr;
  r->next = head_;
  if (head_) head_->prev = r;
  head_ = r;
  count_++;
}

void ThreadRegistry::unlink(ThreadRecord *r) {
  if (r->prev) r->prev->next = r->next;
  else head_ = r->next;
  if (r->next) r->next->prev = r->prev;
  r->next = r->prev = nullptr;
  count_--;
}

}  // namespace dunegc::gc
