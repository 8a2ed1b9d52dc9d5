// The measurements. Definitions follow Appel & Li's vmpup.c (and so the Dune paper):
//   trap    one fault round trip: the handler returns without resolving, the access runs
//           again and faults again; the time between two handler entries.
//   prot1   protect one page of a 100-page region (the others stay writable).
//   unprot  unprotect that page.
//   protN   protect all 100 pages in one call.
//   protN_batch  protect 100 scattered pages (every other page) as one batch: one apply()
//           -- where the backend can, one TLB flush for all of them.
//   appel1  prot1+trap+unprot: write each of 100 pages in random order; every write traps;
//           the handler protects the previously written page and unprotects this one (one
//           batch of two changes). Cycles per trap.
//   appel2  protN+trap+unprot: protect all 100 pages, then write each in random order; the
//           handler unprotects the page. Cycles per trap, the protN amortised in.
//   dirty   one DIRTY (collect-and-reset) over N pages of which a fraction was written.
//   dirty_write  the cost per page of those writes while tracked (first write to a clean
//           page: a trap for mprotect, a kernel-resolved fault for uffd and softdirty).
//   accessed  one accessed-bit sample (collect-and-reset) over N pages of which a fraction
//           was read since the last (backends with hardware A bits: dune).
//   map2    map a second view of a 100-page shared region (one map_alias call).
// "protect" means Prot::none where the backend can protect reads (as Appel & Li did) and
// read-only where it cannot (userfaultfd); every access that traps is a write.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>

#include "appel_li.h"
#include "bench/cycles.h"

namespace appel_li {

namespace {

using dunegc::paging::Access;
using dunegc::paging::Backend;
using dunegc::paging::Backing;
using dunegc::paging::Change;
using dunegc::paging::Fault;
using dunegc::paging::FaultResult;
using dunegc::paging::Feature;
using dunegc::paging::kPageSize;
using dunegc::paging::PageBitmap;
using dunegc::paging::Prot;

void touch(char *p) {
  *static_cast<volatile char *>(p) = 1;
}

enum class Mode { trap_only, appel1, appel2 };

// State the fault handler works on (it may run in a signal handler or on the uffd
// handler thread: plain fields, written before the access that faults).
struct TrapBench {
  Backend *b = nullptr;
  Prot protect_to = Prot::none;
  Mode mode = Mode::appel2;
  char *prev = nullptr;  // appel1: the page to protect in the handler
  int leave = 0;         // trap_only: faults to leave unresolved
  uint64_t stamps[64];   // trap_only: handler entry times
  int nstamps = 0;
  long traps = 0;
  bool failed = false;
};

FaultResult on_fault(const Fault &f, void *arg) {
  auto *t = static_cast<TrapBench *>(arg);
  t->traps++;
  char *page = reinterpret_cast<char *>(reinterpret_cast<uintptr_t>(f.addr) & ~(kPageSize - 1));
  switch (t->mode) {
    case Mode::trap_only:
      if (t->nstamps < 64) t->stamps[t->nstamps++] = bench::cycles_begin();
      if (--t->leave > 0) return FaultResult::retry;
      break;
    case Mode::appel1: {
      Change c[2] = {{page, kPageSize, Prot::rw}, {t->prev, kPageSize, t->protect_to}};
      t->prev = page;
      if (t->b->apply(c, c[1].addr ? 2 : 1) != 0) t->failed = true;
      return FaultResult::retry;
    }
    case Mode::appel2:
      break;
  }
  if (t->b->unprotect(page, kPageSize) != 0) t->failed = true;
  return FaultResult::retry;
}

struct Region {
  Backend &b;
  char *p = nullptr;
  Region(Backend &backend, size_t pages, Backing backing) : b(backend) {
    void *v = nullptr;
    if (b.map(pages * kPageSize, backing, &v) == 0) p = static_cast<char *>(v);
    if (p) memset(p, 1, pages * kPageSize);  // populated: measure protection, not allocation
  }
  ~Region() {
    if (p) b.unmap(p);
  }
  char *page(size_t i) const { return p + i * kPageSize; }
};

class Measurer {
 public:
  Measurer(Backend &b, const Config &cfg, std::vector<Result> &out)
      : b_(b), cfg_(cfg), out_(out), rng_(12345) {
    protect_to_ = b.supports(Feature::protect_none).ok ? Prot::none : Prot::read;
    trap_.b = &b;
    trap_.protect_to = protect_to_;
  }

  bool run() {
    bool ok = true;
    if (b_.supports(Feature::trap).ok) {
      b_.set_fault_handler(on_fault, &trap_);
      ok = ok && trap() && (cfg_.traps_only || (prot() && prot_n())) && appel(Mode::appel1) &&
           appel(Mode::appel2);
      b_.set_fault_handler(nullptr, nullptr);
    }
    if (cfg_.traps_only) return ok;
    if (b_.supports(Feature::dirty).ok)
      for (size_t n : cfg_.dirty_pages) ok = ok && dirty(n);
    if (b_.supports(Feature::accessed).ok)
      for (size_t n : cfg_.dirty_pages) ok = ok && accessed(n);
    if (b_.supports(Feature::map2).ok) ok = ok && map2();
    return ok;
  }

 private:
  bool fail(const char *what) {
    fprintf(stderr, "appel-li: %s: %s failed\n", std::string(b_.name()).c_str(), what);
    return false;
  }

  void add(const char *primitive, const char *unit, const std::vector<double> &samples,
           size_t pages, std::optional<double> fraction = std::nullopt) {
    Result r;
    r.primitive = primitive;
    r.backend = std::string(b_.name());
    r.variant = cfg_.variant;
    r.unit = unit;
    r.cycles = bench::summarize(samples);
    r.pages = pages;
    r.fraction = fraction;
    r.protection = dunegc::paging::prot_name(protect_to_);
    fprintf(stderr, "  %-12s %-11s median %10.0f cycles (%s)%s%s\n", r.backend.c_str(), primitive,
            r.cycles.median, unit, r.variant.empty() ? "" : ", ", r.variant.c_str());
    out_.push_back(std::move(r));
  }

  std::vector<size_t> permutation(size_t n) {
    std::vector<size_t> v(n);
    std::iota(v.begin(), v.end(), 0);
    std::shuffle(v.begin(), v.end(), rng_);
    return v;
  }

  bool trap() {
    Region r(b_, 1, Backing::anonymous);
    if (!r.p) return fail("map");
    std::vector<double> samples;
    trap_.mode = Mode::trap_only;
    for (size_t rep = 0; rep <= cfg_.reps(50); rep++) {  // rep 0 warms up
      if (b_.protect(r.p, kPageSize, protect_to_) != 0) return fail("protect");
      trap_.leave = 64;
      trap_.nstamps = 0;
      touch(r.p);
      if (trap_.nstamps != 64 || trap_.failed) return fail("trap");
      for (int i = 1; rep > 0 && i < 64; i++)
        samples.push_back(double(trap_.stamps[i] - trap_.stamps[i - 1]));
    }
    add("trap", "cycles per trap", samples, 1);
    return true;
  }

  bool prot() {
    Region r(b_, cfg_.pages, Backing::anonymous);
    if (!r.p) return fail("map");
    std::vector<double> prot1, unprot;
    for (size_t rep = 0; rep <= cfg_.reps(2000); rep++) {
      char *page = r.page(rep % cfg_.pages);
      uint64_t t0 = bench::cycles_begin();
      int e1 = b_.protect(page, kPageSize, protect_to_);
      uint64_t t1 = bench::cycles_end();
      uint64_t t2 = bench::cycles_begin();
      int e2 = b_.unprotect(page, kPageSize);
      uint64_t t3 = bench::cycles_end();
      if (e1 || e2) return fail("prot1/unprot");
      if (rep == 0) continue;
      prot1.push_back(double(bench::corrected(t0, t1)));
      unprot.push_back(double(bench::corrected(t2, t3)));
    }
    add("prot1", "cycles per call (1 page)", prot1, 1);
    add("unprot", "cycles per call (1 page)", unprot, 1);
    return true;
  }

  bool prot_n() {
    size_t n = cfg_.pages;
    Region r(b_, 2 * n, Backing::anonymous);
    if (!r.p) return fail("map");
    std::vector<Change> scattered(n), undo(n);
    for (size_t i = 0; i < n; i++) {
      scattered[i] = {r.page(2 * i), kPageSize, protect_to_};
      undo[i] = {r.page(2 * i), kPageSize, Prot::rw};
    }
    std::vector<double> whole, batch;
    for (size_t rep = 0; rep <= cfg_.reps(1000); rep++) {
      uint64_t t0 = bench::cycles_begin();
      int e1 = b_.protect(r.p, n * kPageSize, protect_to_);
      uint64_t t1 = bench::cycles_end();
      int e2 = b_.unprotect(r.p, n * kPageSize);
      uint64_t t2 = bench::cycles_begin();
      int e3 = b_.apply(scattered);
      uint64_t t3 = bench::cycles_end();
      int e4 = b_.apply(undo);
      if (e1 || e2 || e3 || e4) return fail("protN");
      if (rep == 0) continue;
      whole.push_back(double(bench::corrected(t0, t1)));
      batch.push_back(double(bench::corrected(t2, t3)));
    }
    add("protN", "cycles per call (100 contiguous pages)", whole, n);
    add("protN_batch", "cycles per batch (100 scattered pages)", batch, n);
    return true;
  }

  bool appel(Mode mode) {
    size_t n = cfg_.pages;
    Region r(b_, n, Backing::anonymous);
    if (!r.p) return fail("map");
    std::vector<size_t> perm = permutation(n);
    trap_.mode = mode;
    trap_.traps = 0;
    if (mode == Mode::appel1) {  // all protected but the last page of the order
      if (b_.protect(r.p, n * kPageSize, protect_to_) != 0 ||
          b_.unprotect(r.page(perm[n - 1]), kPageSize) != 0)
        return fail("appel1 setup");
      trap_.prev = r.page(perm[n - 1]);
    }
    std::vector<double> samples;
    size_t rounds = cfg_.reps(200);
    for (size_t rep = 0; rep <= rounds; rep++) {
      uint64_t t0 = bench::cycles_begin();
      if (mode == Mode::appel2 && b_.protect(r.p, n * kPageSize, protect_to_) != 0)
        return fail("appel2 protN");
      for (size_t j = 0; j < n; j++) touch(r.page(perm[j]));
      uint64_t t1 = bench::cycles_end();
      if (rep > 0) samples.push_back(double(bench::corrected(t0, t1)) / double(n));
    }
    if (trap_.failed || size_t(trap_.traps) != (rounds + 1) * n)
      return fail(mode == Mode::appel1 ? "appel1 (wrong number of traps)"
                                       : "appel2 (wrong number of traps)");
    add(mode == Mode::appel1 ? "appel1" : "appel2", "cycles per trap", samples, n);
    return true;
  }

  // k = fraction * n pages, chosen at random anew each time: the first k of `idx`.
  size_t pick(std::vector<size_t> &idx) {
    size_t n = idx.size();
    size_t k = std::max<size_t>(1, size_t(std::lround(double(n) * cfg_.dirty_fraction)));
    for (size_t i = 0; i < k; i++) std::swap(idx[i], idx[i + rng_() % (n - i)]);
    return k;
  }

  bool dirty(size_t n) {
    Region r(b_, n, Backing::anonymous);
    if (!r.p) return fail("map");
    if (b_.dirty_start(r.p) != 0) return fail("dirty_start");
    std::vector<size_t> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    PageBitmap bm;
    std::vector<double> collect, write;
    for (size_t rep = 0; rep <= cfg_.reps(30); rep++) {
      size_t k = pick(idx);
      uint64_t t0 = bench::cycles_begin();
      for (size_t i = 0; i < k; i++) touch(r.page(idx[i]));
      uint64_t t1 = bench::cycles_end();
      uint64_t t2 = bench::cycles_begin();
      int e = b_.dirty_collect(r.p, n * kPageSize, bm);
      uint64_t t3 = bench::cycles_end();
      if (e != 0 || bm.count() != k) return fail("dirty_collect (wrong page count)");
      if (rep == 0) continue;
      write.push_back(double(bench::corrected(t0, t1)) / double(k));
      collect.push_back(double(bench::corrected(t2, t3)));
    }
    b_.dirty_stop(r.p);
    add("dirty", "cycles per collect", collect, n, cfg_.dirty_fraction);
    add("dirty_write", "cycles per written page", write, n, cfg_.dirty_fraction);
    return true;
  }

  bool accessed(size_t n) {
    Region r(b_, n, Backing::anonymous);
    if (!r.p) return fail("map");
    std::vector<size_t> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    PageBitmap bm;
    if (b_.accessed_collect(r.p, n * kPageSize, bm) != 0) return fail("accessed_collect");
    std::vector<double> collect;
    for (size_t rep = 0; rep <= cfg_.reps(30); rep++) {
      size_t k = pick(idx);
      for (size_t i = 0; i < k; i++) (void)*static_cast<volatile char *>(r.page(idx[i]));
      uint64_t t0 = bench::cycles_begin();
      int e = b_.accessed_collect(r.p, n * kPageSize, bm);
      uint64_t t1 = bench::cycles_end();
      if (e != 0 || bm.count() != k) return fail("accessed_collect (wrong page count)");
      if (rep > 0) collect.push_back(double(bench::corrected(t0, t1)));
    }
    add("accessed", "cycles per collect", collect, n, cfg_.dirty_fraction);
    return true;
  }

  bool map2() {
    Region r(b_, cfg_.pages, Backing::shared);
    if (!r.p) return fail("map");
    std::vector<double> samples;
    for (size_t rep = 0; rep <= cfg_.reps(500); rep++) {
      void *alias = nullptr;
      uint64_t t0 = bench::cycles_begin();
      int e = b_.map_alias(r.p, &alias);
      uint64_t t1 = bench::cycles_end();
      if (e != 0 || b_.unmap(alias) != 0) return fail("map_alias");
      if (rep > 0) samples.push_back(double(bench::corrected(t0, t1)));
    }
    add("map2", "cycles per call (100-page alias)", samples, cfg_.pages);
    return true;
  }

  Backend &b_;
  const Config &cfg_;
  std::vector<Result> &out_;
  std::mt19937_64 rng_;
  Prot protect_to_;
  TrapBench trap_;
};

}  // namespace

bool measure(Backend &b, const Config &cfg, std::vector<Result> &out) {
  return Measurer(b, cfg, out).run();
}

}  // namespace appel_li
