// The per-collector part of the harness. Each collector build links exactly one adapter
// (collector_bdw.cc for Boehm, collector_manual.cc for the malloc/jemalloc baselines), chosen
// in workloads/gc/CMakeLists.txt; a new collector brings its own.
#pragma once

#include <cstdint>
#include <string>

namespace bench {
class JsonWriter;
}

namespace gcwl {

struct CollectorOptions {
  uint64_t heap_limit = 0;  // bytes; 0 = none
  bool incremental = false;
};

// Exit status when the heap limit is reached (oom handler).
constexpr int kExitOutOfMemory = 3;

// Initialise the collector with `o` before the workload runs. Returns "" or a one-line
// reason why it cannot be done (e.g. incremental mode on a collector that has none).
std::string collector_setup(const CollectorOptions &o);

// Whether the heap limit is enforced by this collector (the baselines cannot enforce one).
bool collector_enforces_heap_limit();

// After the timed run: write the collector's own facts as the members of the record's
// "collector_info" object (collections, heap size, marker threads, incremental mode...).
// May do work of its own (e.g. probe which dirty-bit mechanism is active).
void collector_report(bench::JsonWriter &w);

}  // namespace gcwl
