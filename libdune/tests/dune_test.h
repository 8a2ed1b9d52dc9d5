// dune_test.h -- helpers shared by libdune's tests.
#pragma once

#include <dune.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>

// True when /dev/kvm can be opened here; otherwise `why` says why not.
bool dune_test_kvm_usable(std::string *why);

// Enters Dune mode, or skips the test when this machine has no usable /dev/kvm. A usable
// /dev/kvm on which Dune mode cannot be entered is a failure, never a skip.
#define DUNE_ENTER_OR_SKIP()                                                       \
  do {                                                                             \
    std::string why_;                                                              \
    if (!dune_test_kvm_usable(&why_)) GTEST_SKIP() << why_;                        \
    int r_ = dune_init_and_enter();                                                \
    ASSERT_EQ(r_, 0) << "dune_init_and_enter: " << strerror(-r_);                  \
    ASSERT_TRUE(dune_in_dune_mode());                                              \
  } while (0)

// Runs `fn` in a forked child and returns its wait status; the child's stderr (and stdout)
// is captured into *out when given. The child exits with fn's return value.
int dune_test_run_child(const std::function<int()> &fn, std::string *out = nullptr);

// For tests that need a process where libdune was never initialized: when this one
// already was (all tests in one process, as under QEMU), runs just the current test again
// in a fresh execution of this binary and reports its outcome here.
// Returns 0: go on here; 1: done (the fresh run passed or failed); 2: the fresh run skipped.
int dune_test_rerun_fresh(std::string *out);
#define DUNE_FRESH_PROCESS()                                                       \
  do {                                                                             \
    std::string fresh_out_;                                                        \
    int fresh_ = dune_test_rerun_fresh(&fresh_out_);                               \
    if (fresh_ == 2) GTEST_SKIP() << fresh_out_;                                   \
    if (fresh_ == 1) return;                                                       \
  } while (0)

// A scratch file path under /tmp (files the tests create themselves; no fixtures).
std::string dune_test_tmpfile(const char *tag);
