// appel-li: the virtual-memory primitive benchmarks of Appel & Li (ASPLOS'91), as the Dune
// paper (OSDI'12) ran them, for every dunegc::paging backend.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench/stats.h"
#include "dunegc/paging/paging.h"

namespace appel_li {

struct Config {
  bool quick = false;
  double dirty_fraction = 0.1;  // share of the region written between two DIRTY calls
  std::vector<size_t> dirty_pages = {1024, 4096, 16384, 65536};
  size_t pages = 100;       // the region of appel1 / appel2 / PROTN, as in the paper
  bool traps_only = false;  // only trap, appel1, appel2 (a placement variant of a backend)
  std::string variant;      // stamped on the results, e.g. "handler-other-cpu"

  // Repetitions: `full` normally, a tenth (at least 5) with --quick.
  size_t reps(size_t full) const { return quick ? std::max<size_t>(5, full / 10) : full; }
};

struct Result {
  std::string primitive;  // trap, prot1, protN, protN_batch, unprot, appel1, appel2, dirty,
                          // dirty_write, accessed, map2
  std::string backend;
  std::string variant;             // how the backend was set up, when it matters ("" = default)
  std::string unit;                // what one sample is ("cycles per trap", ...)
  bench::Summary cycles;           // over repetitions, overhead-corrected rdtsc cycles
  size_t pages = 0;                // pages the operation covers (region, batch or DIRTY size)
  std::optional<double> fraction;  // DIRTY: share of pages written
  std::string protection;          // what "protect" meant: "none" or "r"
  std::optional<double> linux_dune_ratio;  // dune results: kLinuxReference's median / dune's
};

// The Linux backend every dune result is compared with: mprotect + SIGSEGV, what Appel & Li
// and the Dune paper measured Linux with, and the one Linux backend with every primitive.
inline constexpr const char *kLinuxReference = "mprotect";

// Every primitive `b` supports; progress lines go to stderr. Returns false (and says why on
// stderr) if a primitive misbehaves -- a benchmark of a wrong answer is worthless.
bool measure(dunegc::paging::Backend &b, const Config &cfg, std::vector<Result> &out);

// For each dune result: the kLinuxReference median of the same primitive and size (same
// run) / the dune median; > 1 means Dune is faster. Every other result, and a dune result
// without a reference counterpart (accessed), keeps no ratio (null in JSON).
void add_linux_dune_ratios(std::vector<Result> &results);

// The result file: {"benchmark", "quick", "config", "platform" (with "backends"),
// "results"}. `available` lists every backend known to this build with why not.
std::string to_json(const std::vector<Result> &results,
                    const std::vector<dunegc::paging::BackendInfo> &available,
                    const std::vector<std::unique_ptr<dunegc::paging::Backend>> &opened,
                    const Config &cfg);

// A human-readable table.
std::string to_table(const std::vector<Result> &results);

}  // namespace appel_li
