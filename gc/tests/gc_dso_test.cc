// Data segments of shared libraries are roots unless scanning them is turned off; a
// library loaded through dunegc_dlopen is scanned from the next collection on.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include "gc_test_util.h"

using namespace gctest;

namespace {
__attribute__((noinline)) void store_in(void **slot, Watch &w) {
  *slot = dunegc_malloc(128);
  w.watch(0, *slot);
}
}  // namespace

TEST(Dso, LibraryDataIsScannedUnlessTurnedOff) {
  init_or_die();
  void *h = dunegc_dlopen(TEST_DSO_PATH, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(h, nullptr) << dlerror();
  auto **slot = static_cast<void **>(dlsym(h, "dunegc_test_dso_slot"));
  ASSERT_NE(slot, nullptr);
  Watch w(1);
  store_in(slot, w);
  collect_clean();
  EXPECT_TRUE(w.alive(0));
  dunegc_set_scan_dynamic_libraries(0);
  collect_clean();
  EXPECT_FALSE(w.alive(0));
  EXPECT_EQ(dunegc_dlclose(h), 0);
  collect_clean();  // the library's segments are gone and must not be scanned
}
