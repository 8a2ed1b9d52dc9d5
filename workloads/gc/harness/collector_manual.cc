// Collector adapter for the no-GC baselines: glibc malloc, or jemalloc when built with
// GCWL_JEMALLOC (the executable links libjemalloc, whose malloc/calloc/free then replace
// glibc's). There is no collector, no heap limit it could enforce and no incremental mode.
// The report says which allocator really served the workload, checked rather than assumed:
// jemalloc's per-thread allocation counter must have moved over a calloc; for glibc, no
// jemalloc may be loaded at all.
#include <dlfcn.h>
#include <gc.h>
#include <gnu/libc-version.h>
#include <stdio.h>
#include <unistd.h>

#include <cinttypes>

#include "bench/json.h"
#include "collector.h"

#ifdef GCWL_JEMALLOC
#include <jemalloc/jemalloc.h>
#elif defined(__SANITIZE_ADDRESS__)
// AddressSanitizer's allocator interface (GCC ships no header for it).
extern "C" int __sanitizer_get_ownership(const volatile void *p);
#endif

extern "C" void *GC_manual_out_of_memory(size_t bytes) {
  fprintf(stderr, "%s: out of memory: the allocator returned NULL for %zu bytes\n",
          program_invocation_short_name, bytes);
  fflush(stderr);
  _exit(gcwl::kExitOutOfMemory);
}

namespace gcwl {

std::string collector_setup(const CollectorOptions &o) {
  if (o.incremental) return "collector " GCWL_COLLECTOR " has no incremental mode";
  return "";
}

bool collector_enforces_heap_limit() { return false; }

#ifdef GCWL_JEMALLOC
static bool jemalloc_serves_calloc() {
  uint64_t before = 0, after = 0;
  size_t len = sizeof before;
  if (mallctl("thread.allocated", &before, &len, nullptr, 0) != 0) return false;
  void *volatile p = calloc(1, 4096);
  len = sizeof after;
  bool ok = mallctl("thread.allocated", &after, &len, nullptr, 0) == 0 && after >= before + 4096;
  free(p);
  return ok;
}
#endif

void collector_report(bench::JsonWriter &w) {
#ifdef GCWL_JEMALLOC
  w.kv("name", "jemalloc").kv("version", JEMALLOC_VERSION);
  w.kv("allocator_verified", jemalloc_serves_calloc());
#elif defined(__SANITIZE_ADDRESS__)
  // The sanitizer preset: AddressSanitizer's allocator replaces glibc's.
  w.kv("name", "AddressSanitizer malloc").kv("version", __VERSION__);
  void *volatile p = calloc(1, 64);
  w.kv("allocator_verified", __sanitizer_get_ownership(p) != 0);
  free(p);
#else
  w.kv("name", "glibc malloc").kv("version", gnu_get_libc_version());
  w.kv("allocator_verified", dlsym(RTLD_DEFAULT, "mallctl") == nullptr);
#endif
  w.kv("collections", uint64_t(0));
}

}  // namespace gcwl
