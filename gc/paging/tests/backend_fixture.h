// Shared by the paging tests: a fixture parameterised over every backend name (a backend
// that cannot work here is reported as skipped with its reason), a fault handler that logs
// each trap and grants exactly the right that was missing, and volatile accessors.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "dunegc/paging/paging.h"

#ifndef DUNEGC_PAGING_TEST_DUNE
#define DUNEGC_PAGING_TEST_DUNE 0
#endif

namespace dunegc::paging::test {

inline uint8_t read_byte(const void *p) {
  return *static_cast<const volatile uint8_t *>(p);
}
inline void write_byte(void *p, uint8_t v) {
  *static_cast<volatile uint8_t *>(p) = v;
}
inline char *page_of(void *base, size_t i) {
  return static_cast<char *>(base) + i * kPageSize;
}

// Every fault the handler saw, and the protections the test believes each page has (the
// handler widens them by exactly the missing right).
struct TrapLog {
  static constexpr int kMax = 4096;
  struct Entry {
    void *addr;
    Access access;
  };
  std::atomic<int> count{0};
  Entry entries[kMax];
  uintptr_t base = 0;  // pages the model covers (possibly several regions, by offset)
  Prot model[16384];   // protection of page (addr - base) / kPageSize
  std::atomic<int> leave_protected{0};  // this many faults are "resolved" by doing nothing

  void cover(const void *b, Prot initial = Prot::rw) {
    base = reinterpret_cast<uintptr_t>(b);
    for (Prot &p : model) p = initial;
  }
  Prot &prot_of(const void *a) {
    return model[(reinterpret_cast<uintptr_t>(a) - base) / kPageSize];
  }
  int n() const { return count.load(); }
};

// Async-signal-safe: it runs in the SIGSEGV/SIGBUS handler for some backends.
inline FaultResult log_and_grant(const Fault &f, void *arg) {
  auto *log = static_cast<TrapLog *>(arg);
  int k = log->count.fetch_add(1);
  if (k < TrapLog::kMax) log->entries[k] = {f.addr, f.access};
  if (log->leave_protected.load() > 0) {
    log->leave_protected.fetch_sub(1);
    return FaultResult::retry;  // TRAP alone: the access faults again
  }
  void *page = reinterpret_cast<void *>(reinterpret_cast<uintptr_t>(f.addr) & ~(kPageSize - 1));
  Prot old = log->prot_of(page), p = old | needs(f.access);
  if (f.access == Access::write) p = p | Prot::read;  // x86 has no write-only pages
  // Model first: under uffd the faulting thread may run on (and end the test) as soon as
  // protect() has unprotected the page, before this handler returns.
  log->prot_of(page) = p;
  if (f.backend->protect(page, kPageSize, p) != 0) {
    log->prot_of(page) = old;
    return FaultResult::unhandled;
  }
  return FaultResult::retry;
}

inline std::string param_name(const ::testing::TestParamInfo<std::string> &info) {
  std::string s = info.param;
  for (char &c : s)
    if (c == '-') c = '_';
  return s;
}

class BackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string why;
    backend = open(GetParam(), &why);
    if (!backend) GTEST_SKIP() << "backend " << GetParam() << " is unsupported here: " << why;
    log = std::make_unique<TrapLog>();
    backend->set_fault_handler(log_and_grant, log.get());
  }

  bool has(Feature f) const { return backend->supports(f).ok; }
  std::string why_not(Feature f) const { return std::string(backend->supports(f).why); }

  char *map(size_t pages, Backing b = Backing::anonymous) {
    void *p = nullptr;
    int rc = backend->map(pages * kPageSize, b, &p);
    EXPECT_EQ(rc, 0) << strerror(-rc);
    return static_cast<char *>(p);
  }

  // MAP2: a second view of the shared region at `a`.
  char *alias(char *a) {
    void *v = nullptr;
    int rc = backend->map_alias(a, &v);
    EXPECT_EQ(rc, 0) << strerror(-rc);
    return static_cast<char *>(v);
  }

  // Protect through the backend and record it in the trap model; returns the backend's rc.
  int protect(void *addr, size_t len, Prot p) {
    int rc = backend->protect(addr, len, p);
    for (size_t off = 0; rc == 0 && off < len; off += kPageSize)
      log->prot_of(static_cast<char *>(addr) + off) = p;
    return rc;
  }

  // The strongest protection this backend can set: Prot::none where reads can be
  // protected, else read-only.
  Prot strongest() const { return has(Feature::protect_none) ? Prot::none : Prot::read; }

  std::unique_ptr<TrapLog> log;      // declared first, destroyed last: the backend's
  std::unique_ptr<Backend> backend;  // handler thread may still be using it
};

#define REQUIRE_FEATURE(f)                                               \
  do {                                                                   \
    if (!backend->supports(f).ok)                                        \
      GTEST_SKIP() << GetParam() << " lacks " << feature_name(f) << ": " \
                   << backend->supports(f).why;                          \
  } while (0)

// The backends this executable tests: paging_test (label unit) every Linux backend,
// paging_dune_test (label dune, DUNEGC_PAGING_TEST_DUNE=1) the dune backend -- the same
// cases, run where /dev/kvm is usable and skipped with the reason where it is not.
inline std::vector<std::string> tested_backends() {
  std::vector<std::string> out;
  for (const std::string &name : backend_names())
    if ((name == "dune") == bool(DUNEGC_PAGING_TEST_DUNE)) out.push_back(name);
  return out;
}

#define INSTANTIATE_FOR_ALL_BACKENDS(suite)                                          \
  INSTANTIATE_TEST_SUITE_P(Backends, suite,                                          \
                           ::testing::ValuesIn(::dunegc::paging::test::tested_backends()), \
                           ::dunegc::paging::test::param_name)

}  // namespace dunegc::paging::test
