// Collector adapter for implementations of Boehm's API: Boehm GC 8.2 itself (Debian's libgc,
// built with GCWL_BOEHM) and, later, dunegc's Boehm-compatible layer (gc/bdw/).
//
// Common to both, using only the API issue 6 asks dunegc-bdw for: GC_INIT, the heap limit
// through GC_set_max_heap_size, an oom handler that exits with a clear line, and the
// collection count and heap size in the report.
//
// Boehm only (GCWL_BOEHM): GC_start_mark_threads(), so that Boehm marks in parallel in
// single-threaded workloads too (8.2 otherwise starts its marker threads only when the
// program creates its first thread), and incremental mode. Which dirty-bit mechanism that
// mode really uses is decided at run time (8.2 tries Linux soft-dirty bits first, then falls
// back to mprotect + SIGSEGV). We record what the API says (GC_is_incremental_mode,
// GC_incremental_protection_needs, whether a new SIGSEGV handler appeared) and check it
// empirically after the run: a fresh large object's page must be read-only right after a
// collection under the mprotect mechanism and writable again once the program writes it
// (the write-fault handler unprotected it); under soft-dirty bits it stays writable.
#define GC_THREADS  // both are threaded builds; declares GC_get_parallel() and friends
#include <gc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cinttypes>

#include "bench/json.h"
#include "collector.h"

namespace gcwl {
namespace {

struct State {
  uint64_t heap_limit = 0;
  bool incremental_requested = false;
  bool incremental_enabled = false;
  int protection_needs = -1;  // after GC_enable_incremental
  bool segv_handler_installed = false;
  uint64_t collections_before = 0;  // GC_init's own collection (black lists) is not the run's
} g;

void *GC_CALLBACK on_out_of_memory(size_t bytes) {
  // No GC calls here: Boehm may still hold its lock on some paths.
  fprintf(stderr, "%s: out of memory: heap limit %" PRIu64 " bytes reached allocating %zu bytes\n",
          program_invocation_short_name, g.heap_limit, bytes);
  fflush(stderr);
  _exit(kExitOutOfMemory);
}

#ifdef GCWL_BOEHM
// The current SIGSEGV handler (null for SIG_DFL/SIG_IGN).
void *segv_handler() {
  struct sigaction sa;
  if (sigaction(SIGSEGV, nullptr, &sa) != 0) return nullptr;
  if (sa.sa_flags & SA_SIGINFO) return reinterpret_cast<void *>(sa.sa_sigaction);
  if (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN) return nullptr;
  return reinterpret_cast<void *>(sa.sa_handler);
}

// Permissions ("rw-p", "r--p") of the mapping holding `p`, from /proc/self/maps.
std::string page_permissions(const volatile void *p) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return "unknown";
  char line[512], perms[8];
  unsigned long lo, hi;
  std::string out = "unmapped";
  auto a = reinterpret_cast<uintptr_t>(p);
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && a >= lo && a < hi) {
      out = perms;
      break;
    }
  }
  fclose(f);
  return out;
}
#endif

}  // namespace

std::string collector_setup(const CollectorOptions &o) {
  g.heap_limit = o.heap_limit;
  g.incremental_requested = o.incremental;
  GC_INIT();
  if (o.heap_limit) GC_set_max_heap_size(GC_word(o.heap_limit));
  GC_set_oom_fn(on_out_of_memory);
#ifdef GCWL_BOEHM
  void *segv_before = segv_handler();  // a sanitizer may have one already
  if (o.incremental) {
    GC_enable_incremental();
    g.incremental_enabled = GC_is_incremental_mode() != 0;
    if (!g.incremental_enabled)
      return "GC_enable_incremental() left incremental mode off (GC_DISABLE_INCREMENTAL set?)";
  }
  g.protection_needs = GC_incremental_protection_needs();
  g.segv_handler_installed = segv_handler() && segv_handler() != segv_before;
  GC_start_mark_threads();
#else
  if (o.incremental) return "incremental mode of collector " GCWL_COLLECTOR " is not measured";
#endif
  g.collections_before = GC_get_gc_no();
  return "";
}

bool collector_enforces_heap_limit() { return true; }

#ifdef GCWL_BOEHM
// Incremental mode as configured, and the dirty-bit mechanism the probe observed.
static void report_incremental(bench::JsonWriter &w) {
  w.key("incremental").begin_object();
  w.kv("requested", g.incremental_requested).kv("enabled", g.incremental_enabled);
  std::string mechanism = "none";
  if (g.incremental_enabled) {
    w.kv("time_limit_ms", uint64_t(GC_get_time_limit()));  // 999999: unlimited (generational)
    w.kv("protection_needs", g.protection_needs);
    w.kv("segv_handler_installed", g.segv_handler_installed);
    // A large object has heap blocks of its own: nothing but the program writes its pages.
    auto *probe = static_cast<volatile char *>(GC_MALLOC(4 * 4096));
    volatile char *inside = probe + 2 * 4096;
    inside[0] = 1;
    GC_gcollect();
    std::string after_gc = page_permissions(inside);
    inside[1] = 2;
    std::string after_write = page_permissions(inside);
    w.kv("probe_after_collection", after_gc).kv("probe_after_write", after_write);
    bool ro_after_gc = after_gc.size() > 1 && after_gc[1] == '-';
    bool rw_after_write = after_write.size() > 1 && after_write[1] == 'w';
    if ((g.protection_needs & GC_PROTECTS_POINTER_HEAP) && ro_after_gc && rw_after_write)
      mechanism = "mprotect";
    else if (g.protection_needs == GC_PROTECTS_NONE && !ro_after_gc)
      mechanism = "soft-dirty";
    else
      mechanism = "unknown";
  }
  w.kv("dirty_bits", mechanism);
  w.end_object();
}
#endif

void collector_report(bench::JsonWriter &w) {
  // Statistics first: the incremental-mode probe collects once more.
  w.kv("collections", uint64_t(GC_get_gc_no()) - g.collections_before);
  w.kv("heap_size_bytes", uint64_t(GC_get_heap_size()));
#ifdef GCWL_BOEHM
  unsigned v = GC_get_version();
  char version[32];
  snprintf(version, sizeof version, "%u.%u.%u", v >> 16, (v >> 8) & 0xff, v & 0xff);
  w.kv("name", "Boehm GC").kv("version", version);
  w.kv("total_allocated_bytes", uint64_t(GC_get_total_bytes()));
  w.kv("marker_threads", GC_get_parallel() + 1);
  w.kv("free_space_divisor", uint64_t(GC_get_free_space_divisor()));
  w.kv("all_interior_pointers", GC_get_all_interior_pointers() != 0);
  report_incremental(w);
#else
  w.kv("name", GCWL_COLLECTOR);
#endif
}

}  // namespace gcwl
