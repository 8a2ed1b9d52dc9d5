// The Boehm adapter: what it reports about incremental mode and marker threads must agree
// with Boehm's own API and with what the process's page mappings show.
#define GC_THREADS
#include <gc.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "bench/json.h"
#include "collector.h"

namespace gcwl {
namespace {

std::string report() {
  bench::JsonWriter w;
  w.begin_object();
  collector_report(w);
  w.end_object();
  return w.str();
}

bool has(const std::string &json, const std::string &member) {
  return json.find(member) != std::string::npos;
}

TEST(BoehmAdapter, StopTheWorldReportsNoDirtyBits) {
  ASSERT_EQ(collector_setup({}), "");
  std::string r = report();
  EXPECT_TRUE(has(r, "\"requested\": false, \"enabled\": false")) << r;
  EXPECT_TRUE(has(r, "\"dirty_bits\": \"none\"")) << r;
}

TEST(BoehmAdapter, IncrementalModeNamesTheDirtyBitMechanismItObserved) {
  CollectorOptions o;
  o.incremental = true;
  ASSERT_EQ(collector_setup(o), "");
  ASSERT_TRUE(GC_is_incremental_mode());
  std::string r = report();
  EXPECT_TRUE(has(r, "\"requested\": true, \"enabled\": true")) << r;
  // Boehm 8.2 uses soft-dirty bits where the kernel sets them, else mprotect. Either way the
  // probe must confirm what the API claims -- never "unknown".
  if (GC_incremental_protection_needs() & GC_PROTECTS_POINTER_HEAP) {
    EXPECT_TRUE(has(r, "\"dirty_bits\": \"mprotect\"")) << r;
    EXPECT_TRUE(has(r, "\"probe_after_collection\": \"r--p\"")) << r;
    EXPECT_TRUE(has(r, "\"probe_after_write\": \"rw-p\"")) << r;
    EXPECT_TRUE(has(r, "\"segv_handler_installed\": true")) << r;
  } else {
    EXPECT_TRUE(has(r, "\"dirty_bits\": \"soft-dirty\"")) << r;
  }
}

TEST(BoehmAdapter, MarksInParallelInASingleThreadedProgram) {
  ASSERT_EQ(collector_setup({}), "");
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus < 2) GTEST_SKIP() << "one CPU: Boehm starts no marker threads";
  EXPECT_GE(GC_get_parallel(), 1);
  EXPECT_TRUE(has(report(), "\"marker_threads\": " + std::to_string(GC_get_parallel() + 1)));
}

TEST(BoehmAdapter, EnforcesTheHeapLimit) {
  // Re-execute rather than fork: Boehm's marker threads would not survive a fork.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  CollectorOptions o;
  o.heap_limit = 8 << 20;
  ASSERT_EQ(collector_setup(o), "");
  EXPECT_TRUE(collector_enforces_heap_limit());
  EXPECT_EXIT(
      {
        void **keep = nullptr;
        for (;;) {  // a growing list of 64 KiB objects: all of it live
          auto **p = static_cast<void **>(GC_MALLOC(64 << 10));
          p[0] = keep;
          keep = p;
        }
      },
      testing::ExitedWithCode(kExitOutOfMemory), "out of memory: heap limit 8388608 bytes reached");
}

}  // namespace
}  // namespace gcwl
