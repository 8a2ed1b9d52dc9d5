// alloc-bench: manual-memory (malloc/free) workloads, built once per allocator:
//   alloc-bench-dunegc    dunegc's explicit-free Heap (allocators/)
//   alloc-bench-jemalloc  jemalloc (linked: it replaces malloc for the whole process)
//   alloc-bench-glibc     glibc malloc
// One workload per run (so peak RSS is per workload):
//   alloc-bench-X --workload NAME [--quick] [--reps N] [--json FILE]
// Prints a summary line; --json writes one JSON object (platform, allocator, workload,
// ns per operation as median/p10/p90/min/max over repetitions, peak RSS).
#include <malloc.h>
#include <pthread.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench/json.h"
#include "bench/stats.h"
#include "dune_platform.h"

#if defined(ALLOC_BENCH_DUNEGC)
#include "dunegc/allocators/heap.h"
static dunegc::allocators::Heap g_heap;
static const char *const kAllocator = "dunegc";
static inline void *bench_malloc(size_t n) { return g_heap.allocate(n); }
static inline void bench_free(void *p) { g_heap.deallocate(p); }
static std::string allocator_version() { return "dunegc-allocators"; }
static int allocator_init() { return g_heap.init(); }
#elif defined(ALLOC_BENCH_JEMALLOC)
#include <jemalloc/jemalloc.h>
static const char *const kAllocator = "jemalloc";
static inline void *bench_malloc(size_t n) { return malloc(n); }
static inline void bench_free(void *p) { free(p); }
static std::string allocator_version() {
  const char *v = nullptr;
  size_t len = sizeof v;
  return mallctl("version", &v, &len, nullptr, 0) == 0 && v ? std::string("jemalloc ") + v : "";
}
// malloc must really be jemalloc's (a sanitizer runtime, say, may have interposed its
// own): jemalloc's per-thread allocation counter must see a malloc.
static int allocator_init() {
  uint64_t before = 0, after = 0;
  size_t len = sizeof before;
  if (mallctl("thread.allocated", &before, &len, nullptr, 0) != 0) return -1;
  void *volatile p = malloc(1000);  // volatile: the compiler may not elide the pair
  mallctl("thread.allocated", &after, &len, nullptr, 0);
  free(p);
  return after > before ? 0 : -1;
}
#else
#include <gnu/libc-version.h>
static const char *const kAllocator = "glibc";
static inline void *bench_malloc(size_t n) { return malloc(n); }
static inline void bench_free(void *p) { free(p); }
static std::string allocator_version() { return std::string("glibc ") + gnu_get_libc_version(); }
static int allocator_init() { return 0; }
#endif

namespace {

struct Rng {
  uint64_t s;
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
};

// Writes one byte per page, as a program using its memory would: peak RSS then reflects
// what the allocator keeps, not which pages a workload happened to leave untouched.
inline void touch(void *p, size_t n) {
  auto *b = static_cast<volatile char *>(p);
  for (size_t i = 0; i < n; i += 4096) b[i] = 1;
  b[n - 1] = 1;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Each workload returns (operations, seconds) for one repetition.
struct Result {
  double ops, seconds;
};

// Random frees and allocations over a live set; size() picks each new size.
template <typename SizeFn>
Result churn(size_t slots, size_t ops, uint64_t seed, SizeFn size) {
  std::vector<void *> live(slots, nullptr);
  Rng r{seed};
  double t0 = now_s();
  for (size_t i = 0; i < ops; i++) {
    size_t k = r.next() % slots;
    if (live[k]) bench_free(live[k]);
    size_t n = size(r);
    live[k] = bench_malloc(n);
    touch(live[k], n);
  }
  double t1 = now_s();
  for (void *p : live)
    if (p) bench_free(p);
  return {double(ops), t1 - t0};
}

size_t small_size(Rng &r) { return (size_t{8} << (r.next() % 6)) + r.next() % 16; }       // 8..271
size_t mixed_size(Rng &r) { return (size_t{16} << (r.next() % 13)) + r.next() % 64; }      // 16..64 KiB
size_t large_size(Rng &r) { return (size_t{16384} << (r.next() % 7)) + r.next() % 4096; }  // 16 KiB..1 MiB

struct Node {
  Node *l, *r;
  long v;
};
Node *build(int d) {
  auto *n = static_cast<Node *>(bench_malloc(sizeof(Node)));
  n->v = d;
  n->l = d ? build(d - 1) : nullptr;
  n->r = d ? build(d - 1) : nullptr;
  return n;
}
long destroy(Node *n) {
  if (!n) return 0;
  long s = n->v + destroy(n->l) + destroy(n->r);
  bench_free(n);
  return s;
}

Result trees(int depth, int rounds) {
  double t0 = now_s();
  long sum = 0;
  for (int i = 0; i < rounds; i++) sum += destroy(build(depth));
  double t1 = now_s();
  if (sum == 42) puts("");  // keep the work
  return {double(rounds) * double((size_t{1} << (depth + 1)) - 1), t1 - t0};
}

Result threads_churn(int nthreads, size_t ops_each) {
  std::vector<std::thread> ts;
  double t0 = now_s();
  for (int t = 0; t < nthreads; t++)
    ts.emplace_back([=] { churn(4096, ops_each, uint64_t(t) * 7919 + 1, small_size); });
  for (auto &t : ts) t.join();
  return {double(ops_each) * nthreads, now_s() - t0};
}

// One thread allocates, another frees: every object is freed remotely.
Result producer_consumer(size_t objects) {
  constexpr size_t kRing = 4096;
  std::vector<std::atomic<void *>> ring(kRing);
  for (auto &s : ring) s.store(nullptr);
  double t0 = now_s();
  std::thread consumer([&] {
    size_t got = 0, i = 0;
    while (got < objects) {
      void *p = ring[i].exchange(nullptr, std::memory_order_acquire);
      if (!p) {
        std::this_thread::yield();
        continue;
      }
      bench_free(p);
      got++;
      i = (i + 1) % kRing;
    }
  });
  Rng r{99};
  for (size_t k = 0, i = 0; k < objects; k++, i = (i + 1) % kRing) {
    size_t n = small_size(r);
    void *p = bench_malloc(n);
    touch(p, n);
    while (ring[i].load(std::memory_order_relaxed)) std::this_thread::yield();
    ring[i].store(p, std::memory_order_release);
  }
  consumer.join();
  return {double(objects), now_s() - t0};
}

struct Workload {
  const char *name, *what;
  Result (*run)(bool quick, uint64_t seed);
};

const Workload kWorkloads[] = {
    {"churn-small", "random free+malloc of 8-271 B over 8192 live objects",
     [](bool q, uint64_t s) { return churn(8192, q ? 400000 : 4000000, s, small_size); }},
    {"churn-mixed", "random free+malloc of 16 B-64 KiB over 2048 live objects",
     [](bool q, uint64_t s) { return churn(2048, q ? 100000 : 1000000, s, mixed_size); }},
    {"churn-large", "random free+malloc of 16 KiB-1 MiB over 64 live objects",
     [](bool q, uint64_t s) { return churn(64, q ? 5000 : 50000, s, large_size); }},
    {"trees", "build and free binary trees of depth 16 (24 B nodes)",
     [](bool q, uint64_t) { return trees(16, q ? 4 : 40); }},
    {"threads-4", "4 threads, each churn-small on its own objects",
     [](bool q, uint64_t) { return threads_churn(4, q ? 100000 : 1000000); }},
    {"producer-consumer", "one thread allocates 8-271 B, another frees",
     [](bool q, uint64_t) { return producer_consumer(q ? 200000 : 2000000); }},
};

int usage(const char *why) {
  fprintf(stderr, "alloc-bench: %s\nusage: alloc-bench-%s --workload NAME [--quick] [--reps N] [--json FILE]\nworkloads:", why,
          kAllocator);
  for (const Workload &w : kWorkloads) fprintf(stderr, " %s", w.name);
  fprintf(stderr, "\n");
  return 2;
}

}  // namespace

int main(int argc, char **argv) {
  const Workload *w = nullptr;
  bool quick = false;
  int reps = 5;
  std::string json;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&](const char *flag) -> const char * {
      if (i + 1 >= argc) {
        usage((std::string(flag) + " needs a value").c_str());
        exit(2);
      }
      return argv[++i];
    };
    if (a == "--workload") {
      const char *name = value("--workload");
      for (const Workload &k : kWorkloads)
        if (!strcmp(k.name, name)) w = &k;
      if (!w) return usage((std::string("unknown workload: ") + name).c_str());
    } else if (a == "--quick") {
      quick = true;
    } else if (a == "--reps") {
      char *end;
      long n = strtol(value("--reps"), &end, 10);
      if (*end || n < 1 || n > 1000) return usage("--reps must be a number in 1..1000");
      reps = int(n);
    } else if (a == "--json") {
      json = value("--json");
    } else {
      return usage(("unknown argument: " + a).c_str());
    }
  }
  if (!w) return usage("--workload is required");
  if (allocator_init() != 0) {
    fprintf(stderr, "alloc-bench-%s: the allocator did not initialise (for jemalloc: malloc is not jemalloc's)\n",
            kAllocator);
    return 1;
  }
  w->run(true, 1);  // warm-up: first-touch page faults and thread caches
  std::vector<double> ns;
  double ops = 0;
  for (int r = 0; r < reps; r++) {
    Result res = w->run(quick, uint64_t(r) + 2);
    ops = res.ops;
    ns.push_back(res.seconds * 1e9 / res.ops);
  }
  bench::Summary s = bench::summarize(ns);
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("%-9s %-18s %8.1f ns/op (p10 %.1f, p90 %.1f)  peak RSS %ld MiB\n", kAllocator, w->name, s.median, s.p10,
         s.p90, ru.ru_maxrss / 1024);
  if (!json.empty()) {
    char platform[1024];
    dune_platform_json(platform, sizeof platform);
    bench::JsonWriter j;
    j.begin_object();
    j.key("platform").raw(platform);
    j.kv("allocator", kAllocator).kv("version", allocator_version());
    j.kv("workload", w->name).kv("what", w->what).kv("quick", quick);
    j.kv("ops_per_rep", ops).kv("reps", int64_t(s.reps));
    j.key("ns_per_op").begin_object();
    j.kv("median", s.median).kv("p10", s.p10).kv("p90", s.p90).kv("min", s.min).kv("max", s.max);
    j.end_object();
    j.kv("peak_rss_kib", int64_t(ru.ru_maxrss));
    j.end_object();
    if (!j.write_file(json)) {
      fprintf(stderr, "alloc-bench: cannot write %s: %s\n", json.c_str(), strerror(errno));
      return 1;
    }
  }
  return 0;
}
