// gcwl: what every GC workload in workloads/gc/ shares.
//
// A workload is written once against Boehm's API (<gc.h>, <gc/gc_typed.h>) and built once per
// collector (workloads/gc/CMakeLists.txt). It fills a gcwl::Workload and hands it to
// gcwl::main_with(), which parses the common command line, sets the collector up (heap limit,
// incremental mode), records pauses, times the run, and writes one JSON record.
//
// Include <gc.h> (with GC_THREADS defined first where threads are used) before this header.
#pragma once

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

// WL_FREE(p): object p dies here. The no-GC baselines (malloc, jemalloc) free it; under a
// collector this is nothing at all, so the GC builds pay nothing for the baselines' frees.
#ifdef GCWL_MANUAL
#define WL_FREE(p) GC_FREE(p)
#else
#define WL_FREE(p) ((void)0)
#endif

namespace gcwl {

enum class Size { kQuick, kFull };

// What the harness gives a workload, and what the workload reports back.
class Context {
 public:
  Size size = Size::kFull;
  int threads = 1;            // worker threads (only multi-threaded workloads use it)
  uint64_t seed = 42;         // workloads are deterministic for a given seed
  bool inject_fault = false;  // tests: destroy one live object mid-run, as a collector bug would

  // Sizes the workload used, written into the record's "params" object.
  void param(const char *name, int64_t value) { params_.emplace_back(name, value); }
  // Verification failure: remembers the first message (thread-safe) and returns false.
  bool fail(const char *fmt, ...) __attribute__((format(printf, 2, 3)));
  bool failed() const;
  std::string error() const;
  void set_checksum(uint64_t c) { checksum_ = c; }
  uint64_t checksum() const { return checksum_; }
  const std::vector<std::pair<std::string, int64_t>> &params() const { return params_; }

 private:
  std::vector<std::pair<std::string, int64_t>> params_;
  uint64_t checksum_ = 0;
  mutable std::mutex mu_;
  std::string error_;
};

struct Workload {
  const char *name;
  const char *summary;
  bool threaded;  // honours --threads (4..8), else single-threaded
  // Peak bytes of live data (sum of requested object sizes) for this size: the driver sizes
  // heap limits from it. Computed, not measured: it must not depend on the collector.
  uint64_t (*live_bytes)(const Context &);
  // Runs the workload and verifies its results; false means verification failed.
  bool (*run)(Context &);
};

// The common main(): see `<program> --help`. Exit status: 0 verified, 1 verification failed,
// 2 bad command line or collector setup, 3 out of memory at the heap limit.
int main_with(const Workload &w, int argc, char **argv);

// --inject-fault: make live object `obj` look as if a faulty collector had reclaimed it and
// handed it out again, cleared. The workload's verification must then fail.
inline void clobber_live_object(void *obj, size_t size) { memset(obj, 0, size); }

// Small deterministic PRNG (splitmix64): the same sequence on every collector.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }

 private:
  uint64_t s_;
};

// A 64-bit mix: checksums fold values through it so that swapped or lost values show.
inline uint64_t mix64(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}

}  // namespace gcwl
