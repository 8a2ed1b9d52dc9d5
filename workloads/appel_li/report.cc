// Results as JSON (with the platform object) and as a table; Linux/Dune ratios.
#include <cstdio>
#include <map>
#include <tuple>

#include "appel_li.h"
#include "bench/cycles.h"
#include "bench/json.h"
#include "dune_platform.h"

namespace appel_li {

namespace {

using Key = std::tuple<std::string, size_t, double>;
Key key_of(const Result &r) {
  return {r.primitive, r.pages, r.fraction.value_or(-1)};
}

void summary_fields(bench::JsonWriter &j, const bench::Summary &s) {
  j.kv("median_cycles", s.median).kv("p10_cycles", s.p10).kv("p90_cycles", s.p90);
  j.kv("min_cycles", s.min).kv("max_cycles", s.max).kv("reps", uint64_t(s.reps));
}

// dune_platform_json() plus "backends": which backends this build knows, which work here,
// why the others do not, and what each working one supports.
std::string platform_json(const std::vector<dunegc::paging::BackendInfo> &available,
                          const std::vector<std::unique_ptr<dunegc::paging::Backend>> &opened) {
  char buf[2048];
  int n = dune_platform_json(buf, sizeof buf);
  std::string platform(buf, size_t(std::min<int>(n, int(sizeof buf) - 1)));
  bench::JsonWriter j;
  j.begin_array();
  for (const auto &info : available) {
    j.begin_object().kv("name", info.name).kv("available", info.supported);
    if (!info.supported) j.kv("why", info.why);
    for (const auto &b : opened) {
      if (b->name() != info.name) continue;
      j.key("features").begin_object();
      for (dunegc::paging::Feature f : dunegc::paging::kAllFeatures) {
        dunegc::paging::Support s = b->supports(f);
        j.key(dunegc::paging::feature_name(f)).begin_object().kv("ok", s.ok);
        if (!s.ok) j.kv("why", s.why);
        j.end_object();
      }
      j.end_object();
    }
    j.end_object();
  }
  j.end_array();
  // Splice the array in before the platform object's closing brace.
  size_t close = platform.rfind('}');
  return platform.substr(0, close) + ", \"backends\": " + j.str() + "}";
}

}  // namespace

void add_linux_dune_ratios(std::vector<Result> &results) {
  std::map<Key, double> linux_ref;
  for (const Result &r : results)
    if (r.backend == kLinuxReference && r.variant.empty()) linux_ref[key_of(r)] = r.cycles.median;
  for (Result &r : results) {
    r.linux_dune_ratio.reset();
    if (r.backend != "dune" || r.cycles.median <= 0) continue;
    auto it = linux_ref.find(key_of(r));
    if (it != linux_ref.end()) r.linux_dune_ratio = it->second / r.cycles.median;
  }
}

std::string to_json(const std::vector<Result> &results,
                    const std::vector<dunegc::paging::BackendInfo> &available,
                    const std::vector<std::unique_ptr<dunegc::paging::Backend>> &opened,
                    const Config &cfg) {
  bench::JsonWriter j;
  j.begin_object();
  j.kv("benchmark", "appel-li").kv("quick", cfg.quick);
  j.key("config").begin_object();
  j.kv("pages", uint64_t(cfg.pages)).kv("dirty_fraction", cfg.dirty_fraction);
  j.key("dirty_pages").begin_array();
  for (size_t n : cfg.dirty_pages) j.value(uint64_t(n));
  j.end_array();
  j.kv("timer_overhead_cycles", uint64_t(bench::timer_overhead()));
  j.kv("cycles", "rdtsc ticks (invariant TSC), timer overhead subtracted");
  j.kv("linux_reference", kLinuxReference);
  j.kv("linux_dune_ratio", std::string(kLinuxReference) +
                               " median / dune median, same primitive and size, same run");
  j.end_object();
  j.key("platform").raw(platform_json(available, opened));
  j.key("results").begin_array();
  for (const Result &r : results) {
    j.begin_object();
    j.kv("primitive", r.primitive).kv("backend", r.backend);
    if (!r.variant.empty()) j.kv("variant", r.variant);
    j.kv("unit", r.unit);
    summary_fields(j, r.cycles);
    j.kv("pages", uint64_t(r.pages));
    if (r.fraction) j.kv("fraction", *r.fraction);
    j.kv("protection", r.protection);
    j.key("linux_dune_ratio");
    if (r.linux_dune_ratio) {
      j.value(*r.linux_dune_ratio);
    } else {
      j.null();
    }
    j.end_object();
  }
  j.end_array();
  j.end_object();
  return j.str();
}

std::string to_table(const std::vector<Result> &results) {
  std::string out;
  char line[256];
  snprintf(line, sizeof line, "%-12s %-12s %7s %12s %12s %12s %6s %9s  %s\n", "primitive",
           "backend", "pages", "median", "p10", "p90", "reps", "lin/dune", "unit");
  out += line;
  for (const Result &r : results) {
    char ratio[32] = "";
    if (r.linux_dune_ratio) snprintf(ratio, sizeof ratio, "%.3g", *r.linux_dune_ratio);
    snprintf(line, sizeof line, "%-12s %-12s %7zu %12.0f %12.0f %12.0f %6zu %9s  %s\n",
             r.primitive.c_str(), (r.backend + (r.variant.empty() ? "" : "*")).c_str(), r.pages,
             r.cycles.median, r.cycles.p10, r.cycles.p90, r.cycles.reps, ratio, r.unit.c_str());
    out += line;
  }
  out += std::string("lin/dune: ") + kLinuxReference + " median / dune median\n";
  for (const Result &r : results) {
    if (r.variant.empty()) continue;
    out += "* " + r.variant + "\n";
    break;
  }
  return out;
}

}  // namespace appel_li
