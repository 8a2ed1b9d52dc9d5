// appel-li [--quick] [--backend NAME]... [--fraction F] [--json FILE]
// Measures the Appel & Li primitives for every available paging backend (or the named
// ones), prints a table, and writes the results as JSON.
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "appel_li.h"
#include "bench/json.h"

namespace {

const char kUsage[] =
    "usage: appel-li [--quick] [--backend NAME]... [--fraction F] [--json FILE]\n"
    "  --quick         fewer repetitions (well under a minute)\n"
    "  --backend NAME  measure only this backend (repeatable); default: every available one\n"
    "  --fraction F    share of pages written between two DIRTY calls, 0 < F <= 1 (0.1)\n"
    "  --json FILE     write the results as JSON to FILE ('-' for stdout)\n";

int usage_error(const std::string &msg) {
  fprintf(stderr, "appel-li: %s (see --help)\n", msg.c_str());
  return 2;
}

std::vector<int> allowed_cpus() {
  cpu_set_t set;
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; c++)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

bool pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

// A result file we could not write would lose the whole run: check before measuring.
bool writable(const std::string &path) {
  if (path == "-") return true;
  if (access(path.c_str(), F_OK) == 0) return access(path.c_str(), W_OK) == 0;
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  return access(dir.c_str(), W_OK) == 0;
}

}  // namespace

int main(int argc, char **argv) {
  appel_li::Config cfg;
  std::vector<std::string> wanted;
  std::string json_path;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&](std::string *out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    std::string v;
    if (a == "-h" || a == "--help") {
      fputs(kUsage, stdout);
      return 0;
    } else if (a == "--quick") {
      cfg.quick = true;
    } else if (a == "--backend") {
      if (!value(&v)) return usage_error("--backend needs a name");
      wanted.push_back(v);
    } else if (a == "--json") {
      if (!value(&json_path)) return usage_error("--json needs a file name");
    } else if (a == "--fraction") {
      if (!value(&v)) return usage_error("--fraction needs a value");
      char *end = nullptr;
      errno = 0;
      double f = strtod(v.c_str(), &end);
      if (errno || end == v.c_str() || *end || !(f > 0 && f <= 1))
        return usage_error("--fraction must be a number in (0, 1], got '" + v + "'");
      cfg.dirty_fraction = f;
    } else {
      return usage_error("unknown option '" + a + "'");
    }
  }

  std::vector<dunegc::paging::BackendInfo> available;
  for (const std::string &name : dunegc::paging::backend_names())
    available.push_back(dunegc::paging::probe(name));
  for (const std::string &name : wanted) {
    dunegc::paging::BackendInfo info = dunegc::paging::probe(name);
    if (info.why.rfind("unknown backend", 0) == 0) return usage_error(info.why);
    if (!info.supported) {
      fprintf(stderr, "appel-li: backend '%s' is unsupported here: %s\n", name.c_str(),
              info.why.c_str());
      return 1;
    }
  }
  if (!json_path.empty() && !writable(json_path)) {
    fprintf(stderr, "appel-li: cannot write %s: %s\n", json_path.c_str(), strerrordesc_np(errno));
    return 1;
  }

  // The measuring thread stays on one CPU. A backend's own threads (the uffd handler)
  // inherit the affinity of the thread that opens it, which fixes where they run: uffd is
  // measured with its handler on the measuring thread's CPU, and its traps once more with
  // the handler on another CPU (a cross-CPU wake-up per trap; see docs/paging.md).
  std::vector<int> cpus = allowed_cpus();
  if (cpus.empty() || !pin(cpus[0])) {
    fprintf(stderr, "appel-li: cannot pin to a CPU: %s\n", strerrordesc_np(errno));
    return 1;
  }
  std::vector<std::unique_ptr<dunegc::paging::Backend>> opened;
  std::vector<appel_li::Result> results;
  for (const auto &info : available) {
    bool selected = wanted.empty();
    for (const std::string &w : wanted) selected = selected || w == info.name;
    if (!selected) continue;
    if (!info.supported) {
      fprintf(stderr, "appel-li: %s: unsupported here, skipped: %s\n", info.name.c_str(),
              info.why.c_str());
      continue;
    }
    std::string why;
    std::unique_ptr<dunegc::paging::Backend> b;
    bool ok = false;
    auto open_and_measure = [&] {
      b = dunegc::paging::open(info.name, &why);
      if (!b) {
        fprintf(stderr, "appel-li: cannot open %s: %s\n", info.name.c_str(), why.c_str());
        return;
      }
      fprintf(stderr, "appel-li: measuring %s%s\n", info.name.c_str(), cfg.quick ? " (quick)" : "");
      ok = appel_li::measure(*b, cfg, results);
    };
    if (info.name == "dune") {
      // Opening dune puts the calling thread in Dune mode, where faults arrive through
      // libdune's IDT rather than as signals and every system call leaves the guest: a
      // thread of its own (pinned like this one) keeps the main thread a plain Linux one.
      std::thread t([&] {
        if (pin(cpus[0])) open_and_measure();
      });
      t.join();
    } else {
      open_and_measure();
    }
    if (!ok) return 1;
    opened.push_back(std::move(b));
    if (info.name == "uffd" && cpus.size() >= 2) {
      pin(cpus[1]);
      auto other = dunegc::paging::open(info.name, &why);
      pin(cpus[0]);
      if (!other) {
        fprintf(stderr, "appel-li: cannot open %s: %s\n", info.name.c_str(), why.c_str());
        return 1;
      }
      appel_li::Config variant = cfg;
      variant.traps_only = true;
      variant.variant = "handler-other-cpu";
      fprintf(stderr, "appel-li: measuring %s traps with its handler thread on CPU %d\n",
              info.name.c_str(), cpus[1]);
      if (!appel_li::measure(*other, variant, results)) return 1;
    }
  }
  appel_li::add_linux_dune_ratios(results);

  fputs(appel_li::to_table(results).c_str(), json_path == "-" ? stderr : stdout);
  if (!json_path.empty()) {
    bench::JsonWriter j;
    j.raw(appel_li::to_json(results, available, opened, cfg));
    if (!j.write_file(json_path)) {
      fprintf(stderr, "appel-li: cannot write %s: %s\n", json_path.c_str(), strerrordesc_np(errno));
      return 1;
    }
  }
  return 0;
}
