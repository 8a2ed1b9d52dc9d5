// Helpers for dunegc-bdw's tests: code written against Boehm's API only (<gc.h>), so the
// tests state what Boehm documents. Each gtest case runs in its own process.
#pragma once

#include <gc.h>
#include <gc/gc_typed.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

// Boehm's gc_mark.h and javaxfc.h declare these; dunegc-bdw implements them but installs
// only gc.h and gc_typed.h.
extern "C" {
int GC_get_kind_and_size(const void *, size_t *);
size_t GC_get_debug_header_size(void);
void *GC_generic_malloc(size_t, int);
unsigned GC_new_kind(void **, GC_word, int, int);
void GC_finalize_all(void);
void GC_set_start_callback(void (*)(void));
}

namespace bdwtest {

// Overwrites dead stack below the caller so stale pointers left there by earlier calls
// cannot keep objects alive. (A plain loop: ASan's memset objects to poisoned stack.)
__attribute__((noinline, no_sanitize("address"))) inline void clear_stack() {
  volatile GC_word junk[8 * 1024];
  for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) junk[i] = 0;
  asm volatile("" : : "r"(junk) : "memory");
}

// A full collection with a clean stack below the caller.
__attribute__((noinline)) inline void collect_clean() {
  clear_stack();
  GC_gcollect();
}

// Warnings arrive as Boehm's warn proc sees them: a printf format and its argument.
inline std::vector<std::string> &warnings() {
  static std::vector<std::string> w;
  return w;
}
inline void GC_CALLBACK record_warning(char *msg, GC_word arg) {
  char buf[1024];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
  snprintf(buf, sizeof buf, msg, arg);
#pragma GCC diagnostic pop
  warnings().emplace_back(buf);
}
inline void capture_warnings() {
  warnings().clear();
  GC_set_warn_proc(record_warning);
}
inline bool warned(const char *needle) {
  for (auto &w : warnings())
    if (w.find(needle) != std::string::npos) return true;
  return false;
}

// Weak references that observe reclamation: slot i is cleared when object i dies. The
// slots live in malloc memory, which the collector does not scan.
class Watch {
 public:
  explicit Watch(size_t n) : n_(n), slots_(static_cast<void **>(calloc(n, sizeof(void *)))) {}
  ~Watch() {
    for (size_t i = 0; i < n_; i++)
      if (slots_[i]) GC_unregister_disappearing_link(&slots_[i]);
    free(slots_);
  }
  void watch(size_t i, void *obj) {
    slots_[i] = obj;
    EXPECT_EQ(GC_general_register_disappearing_link(&slots_[i], obj), GC_SUCCESS);
  }
  bool alive(size_t i) const { return slots_[i] != nullptr; }
  void **slot(size_t i) { return &slots_[i]; }

 private:
  size_t n_;
  void **slots_;
};

// Objects are built in noinline helpers so that no register or frame of the test keeps them.
#define SETUP static __attribute__((noinline)) void

}  // namespace bdwtest
