// The heap verifier (DUNEGC_VERIFY=1 or options.verify): after marking, checks the
// invariant sweeping relies on -- every object a root or a marked object points to is
// marked -- independently of the marker's stacks, pool and overflow handling. Reclaimed
// memory is poisoned and checked when reused (GcHeap), which catches the other half:
// a live object freed anyway is written by the mutator after its reclamation.
#include <algorithm>

#include "collector.h"
#include "report.h"
#include "scan.h"

namespace dunegc::gc {

namespace {

struct Checker {
  GcHeap &heap;
  bool interior;
  uintptr_t lo, len;

  void check(uintptr_t w, const char *what, uintptr_t where) const {
    if (w - lo >= len) return;
    ObjRef r;
    if (!heap.resolve(w, interior, &r) || r.span->kind == kUncollectable) return;
    if (!is_marked(r))
      fatal("verify: %s %p holds %p, which points into the unmarked object %p (%zu bytes, kind %d): "
            "marking missed a reachable object",
            what, (void *)where, (void *)w, (void *)r.base, size_t(r.span->size), int(r.span->kind));
  }
};

DUNEGC_NO_ASAN void check_range(const Checker &c, uintptr_t lo, uintptr_t hi) {
  for (uintptr_t p = (lo + 7) & ~uintptr_t{7}; p + 8 <= hi; p += 8)
    c.check(*reinterpret_cast<const uintptr_t *>(p), "root word at", p);
}

}  // namespace

void verify_marks(GcHeap &heap, const MetaVector<Range> &roots, bool interior, const MetaVector<uintptr_t> &shallow) {
  Checker c{heap, interior, heap.base(), heap.frontier() - heap.base()};
  for (size_t i = 0; i < roots.size(); i++) check_range(c, roots[i].lo, roots[i].hi);
  heap.for_each_marked_object([&](const ObjRef &r) {
    if (std::binary_search(shallow.begin(), shallow.end(), r.base)) return;
    auto v = [&](uintptr_t w) { c.check(w, "marked object", r.base); };
    scan_object(r, v);
  });
}

}  // namespace dunegc::gc
