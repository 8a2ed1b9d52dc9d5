// Helpers shared by the collector's tests. Each gtest case runs in its own process (see
// cmake/DunegcTesting.cmake), so every test initialises the collector as it needs.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "dunegc/dunegc.h"

namespace gctest {

// A pointer the conservative scan will not recognise.
inline uintptr_t hide(const void *p) { return ~reinterpret_cast<uintptr_t>(p); }
template <typename T = void>
T *reveal(uintptr_t h) {
  return reinterpret_cast<T *>(~h);
}

// Overwrites a stretch of dead stack below the caller so stale copies of pointers left
// there by earlier calls cannot keep objects alive. (A plain loop, not memset: writing
// dead stack is the point, and ASan's memset would object to poisoned bytes there.)
__attribute__((noinline, no_sanitize("address"))) inline void clear_stack() {
  volatile uintptr_t junk[8 * 1024];
  for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) junk[i] = 0;
  asm volatile("" : : "r"(junk) : "memory");
}

// Collects with a clean stack below the caller.
__attribute__((noinline)) inline void collect_clean() {
  clear_stack();
  dunegc_collect();
}

inline void init_or_die(dunegc_options *o = nullptr) {
  int rc = dunegc_init(o);
  ASSERT_EQ(rc, 0) << dunegc_last_error();
}

// Collects warnings in a vector (the handler must not allocate from the collector; a
// std::string allocates with malloc, which is fine).
inline std::vector<std::string> &warnings() {
  static std::vector<std::string> w;
  return w;
}
inline void capture_warnings() {
  warnings().clear();
  dunegc_set_warn_handler([](const char *m) { warnings().emplace_back(m); });
}
inline bool warned(const char *needle) {
  for (auto &w : warnings())
    if (w.find(needle) != std::string::npos) return true;
  return false;
}

// Weak references used to observe reclamation: slot i holds object i and is cleared by
// the collector when the object dies.
class Watch {
 public:
  // The slots live in malloc memory, which the collector does not scan (so they do not
  // retain their targets).
  explicit Watch(size_t n) : n_(n), slots_(static_cast<void **>(calloc(n, sizeof(void *)))) {}
  ~Watch() {
    for (size_t i = 0; i < n_; i++)
      if (slots_[i]) dunegc_unregister_disappearing_link(&slots_[i]);
    free(slots_);
  }
  void watch(size_t i, void *obj) {
    slots_[i] = obj;
    EXPECT_EQ(dunegc_register_disappearing_link(&slots_[i], obj), 0);
  }
  bool alive(size_t i) const { return slots_[i] != nullptr; }
  size_t alive_count() const {
    size_t k = 0;
    for (size_t i = 0; i < n_; i++) k += slots_[i] != nullptr;
    return k;
  }

 private:
  size_t n_;
  void **slots_;
};

}  // namespace gctest
