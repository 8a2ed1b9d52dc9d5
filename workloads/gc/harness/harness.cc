// gcwl::main_with: command line, collector setup, timing, pause recording, the JSON record.
#include <errno.h>
#include <gc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cinttypes>
#include <string>

#include "bench/json.h"
#include "collector.h"
#include "dune_platform.h"
#include "gcwl.h"
#include "pause_recorder.h"

namespace gcwl {

bool Context::fail(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  std::lock_guard<std::mutex> lock(mu_);
  if (error_.empty()) error_ = buf;
  return false;
}

bool Context::failed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !error_.empty();
}

std::string Context::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

namespace {

constexpr int kExitVerify = 1, kExitUsage = 2;
constexpr size_t kPauseCapacity = size_t(1) << 18;  // far above any run's collection count

struct Options {
  CollectorOptions collector;
  std::string size = "full", json, config;
  int threads = 4;
  uint64_t seed = 42;
  bool print_live = false, inject_fault = false;
};

void usage(const Workload &w, FILE *f) {
  fprintf(f,
          "usage: %s [options]\n"
          "  %s: %s\n"
          "  --size quick|full     problem size (default full)\n"
          "  --heap-limit BYTES    collector heap limit; K/M/G suffixes (default: none)\n"
          "  --incremental         the collector's incremental mode\n"
          "%s"
          "  --json PATH           write the run's JSON record there ('-': stdout)\n"
          "  --config NAME         configuration name for the record (default: collector)\n"
          "  --seed N              input seed (default 42)\n"
          "  --print-live          print the peak live bytes for --size and exit\n"
          "  --inject-fault        destroy one live object mid-run (tests the verification)\n"
          "exit status: 0 verified, 1 verification failed, 2 usage, 3 out of memory\n",
          program_invocation_short_name, w.name, w.summary,
          w.threaded ? "  --threads N           mutator threads, 1..64 (default 4)\n" : "");
}

bool parse_u64(const char *s, uint64_t &out, bool suffixes) {
  errno = 0;
  char *end;
  if (!*s || *s == '-') return false;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s) return false;
  int shift = 0;
  if (suffixes && *end) {
    switch (*end++) {
      case 'K': case 'k': shift = 10; break;
      case 'M': case 'm': shift = 20; break;
      case 'G': case 'g': shift = 30; break;
      default: return false;
    }
  }
  if (*end || (shift && v > (~0ull >> shift))) return false;
  out = uint64_t(v) << shift;
  return true;
}

// Returns -1 when the options are fine, else the exit status (after printing why).
int parse(const Workload &w, int argc, char **argv, Options &o) {
  const char *prog = program_invocation_short_name;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char *&v) {
      if (i + 1 >= argc) {
        fprintf(stderr, "%s: %s needs a value\n", prog, a.c_str());
        return false;
      }
      v = argv[++i];
      return true;
    };
    const char *v = nullptr;
    uint64_t n;
    if (a == "--help" || a == "-h") {
      usage(w, stdout);
      return 0;
    } else if (a == "--size") {
      if (!value(v)) return kExitUsage;
      if (strcmp(v, "quick") && strcmp(v, "full")) {
        fprintf(stderr, "%s: --size: expected quick or full, got '%s'\n", prog, v);
        return kExitUsage;
      }
      o.size = v;
    } else if (a == "--heap-limit") {
      if (!value(v)) return kExitUsage;
      if (!parse_u64(v, n, true)) {
        fprintf(stderr, "%s: --heap-limit: not a byte count: '%s'\n", prog, v);
        return kExitUsage;
      }
      o.collector.heap_limit = n;
    } else if (a == "--incremental") {
      o.collector.incremental = true;
    } else if (a == "--threads" && w.threaded) {
      if (!value(v)) return kExitUsage;
      if (!parse_u64(v, n, false) || n < 1 || n > 64) {
        fprintf(stderr, "%s: --threads: expected 1..64, got '%s'\n", prog, v);
        return kExitUsage;
      }
      o.threads = int(n);
    } else if (a == "--json") {
      if (!value(v)) return kExitUsage;
      o.json = v;
    } else if (a == "--config") {
      if (!value(v)) return kExitUsage;
      o.config = v;
    } else if (a == "--seed") {
      if (!value(v)) return kExitUsage;
      if (!parse_u64(v, o.seed, false)) {
        fprintf(stderr, "%s: --seed: not a number: '%s'\n", prog, v);
        return kExitUsage;
      }
    } else if (a == "--print-live") {
      o.print_live = true;
    } else if (a == "--inject-fault") {
      o.inject_fault = true;
    } else {
      fprintf(stderr, "%s: unknown option '%s' (try --help)\n", prog, a.c_str());
      return kExitUsage;
    }
  }
  if (o.config.empty()) o.config = std::string(GCWL_COLLECTOR) + (o.collector.incremental ? "-incremental" : "");
  return -1;
}

// Peak resident set of this process image: VmHWM. Not ru_maxrss, which Linux carries over
// exec from the image before it -- for a child of a vfork()ing driver, the driver's own RSS.
uint64_t peak_rss_bytes() {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  unsigned long long kib = 0;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmHWM: %llu kB", &kib) == 1) break;
  if (f) fclose(f);
  return uint64_t(kib) * 1024;
}

uint64_t tv_ns(const timeval &tv) { return uint64_t(tv.tv_sec) * 1000000000u + uint64_t(tv.tv_usec) * 1000u; }

void write_pauses(bench::JsonWriter &j, const PauseRecorder &r) {
  j.key("pauses").begin_object();
  j.kv("definition", "stop-the-world: GC_EVENT_PRE_STOP_WORLD .. GC_EVENT_POST_START_WORLD");
  j.kv("count", r.pauses().count).kv("total_ns", r.pauses().total_ns).kv("max_ns", r.pauses().max_ns);
  j.kv("dropped", r.dropped()).kv("protocol_errors", r.protocol_errors());
  j.key("collection_spans").begin_object();
  j.kv("count", r.spans().count).kv("total_ns", r.spans().total_ns).kv("max_ns", r.spans().max_ns);
  j.end_object();
  // Columns, one entry per recorded pause, in order.
  auto column = [&](const char *name, auto get) {
    j.key(name).begin_array();
    for (size_t i = 0; i < r.size(); ++i) j.value(get(r[i]));
    j.end_array();
  };
  column("start_ns", [](const PauseRecord &p) { return p.start_ns; });
  column("duration_ns", [](const PauseRecord &p) { return p.duration_ns; });
  column("stop_ns", [](const PauseRecord &p) { return p.stop_ns; });
  column("reclaim_ns", [](const PauseRecord &p) { return p.reclaim_ns; });
  column("completed", [](const PauseRecord &p) { return p.completed; });
  j.end_object();
}

}  // namespace

int main_with(const Workload &w, int argc, char **argv) {
  Options o;
  int rc = parse(w, argc, argv, o);
  if (rc >= 0) return rc;

  Context ctx;
  ctx.size = o.size == "quick" ? Size::kQuick : Size::kFull;
  ctx.threads = w.threaded ? o.threads : 1;
  ctx.seed = o.seed;
  ctx.inject_fault = o.inject_fault;
  uint64_t live = w.live_bytes(ctx);
  if (o.print_live) {
    printf("%" PRIu64 "\n", live);
    return 0;
  }

  std::string err = collector_setup(o.collector);
  if (!err.empty()) {
    fprintf(stderr, "%s: %s\n", program_invocation_short_name, err.c_str());
    return kExitUsage;
  }
  if (!PauseRecorder::install(kPauseCapacity)) {
    fprintf(stderr, "%s: pause recorder: mmap failed: %s\n", program_invocation_short_name,
            strerror(errno));
    return kExitUsage;
  }

  rusage r0, r1;
  getrusage(RUSAGE_SELF, &r0);
  uint64_t t0 = PauseRecorder::now_ns();
  bool ok = w.run(ctx) && !ctx.failed();
  uint64_t t1 = PauseRecorder::now_ns();
  getrusage(RUSAGE_SELF, &r1);
  PauseRecorder &rec = PauseRecorder::global();
  rec.freeze();
  if (!ok && ctx.error().empty()) ctx.fail("workload reported failure without a reason");

  char platform[1024];
  dune_platform_json(platform, sizeof platform);
  char checksum[24];
  snprintf(checksum, sizeof checksum, "0x%016" PRIx64, ctx.checksum());

  bench::JsonWriter j;
  j.begin_object();
  j.kv("schema", "dunegc-gcwl-run/1");
  j.kv("workload", w.name).kv("collector", GCWL_COLLECTOR).kv("config", o.config);
  j.kv("size", o.size).kv("threads", ctx.threads).kv("seed", o.seed);
  j.key("params").begin_object();
  for (auto &[k, v] : ctx.params()) j.kv(k, v);
  j.end_object();
  j.key("platform").raw(platform);
  j.kv("ok", ok).kv("error", ctx.error()).kv("checksum", checksum);
  j.kv("live_bytes", live);
  j.kv("heap_limit_bytes", o.collector.heap_limit);
  j.kv("heap_limit_enforced", o.collector.heap_limit != 0 && collector_enforces_heap_limit());
  j.kv("wall_ns", t1 - t0);
  j.kv("cpu_user_ns", tv_ns(r1.ru_utime) - tv_ns(r0.ru_utime));
  j.kv("cpu_sys_ns", tv_ns(r1.ru_stime) - tv_ns(r0.ru_stime));
  j.kv("peak_rss_bytes", peak_rss_bytes());
  j.kv("minor_faults", uint64_t(r1.ru_minflt - r0.ru_minflt));
  write_pauses(j, rec);
  j.key("collector_info").begin_object();
  collector_report(j);
  j.end_object();
  j.end_object();

  if (!o.json.empty() && !j.write_file(o.json)) {
    fprintf(stderr, "%s: cannot write %s: %s\n", program_invocation_short_name, o.json.c_str(),
            strerror(errno));
    return kExitUsage;
  }
  FILE *out = o.json == "-" ? stderr : stdout;
  if (ok)
    fprintf(out, "%s %s: verified, %.3f s, %" PRIu64 " pauses, max %.3f ms, checksum %s\n", w.name,
            o.config.c_str(), double(t1 - t0) / 1e9, rec.pauses().count,
            double(rec.pauses().max_ns) / 1e6, checksum);
  else
    fprintf(stderr, "%s %s: verification failed: %s\n", w.name, o.config.c_str(), ctx.error().c_str());
  return ok ? 0 : kExitVerify;
}

}  // namespace gcwl
