// The seam for concurrent marking: a source of pages written since a point in time.
//
// Nothing implements or uses this yet; it fixes what the collector will ask of gc/paging
// so the stop-the-world collector can grow a concurrent mark phase without a rewrite.
// See docs/gc.md ("What comes next"). The plan, in the order the pieces must hold:
//   1. With the world stopped, snapshot roots, call start() over the heap's committed
//      range [GcHeap::base(), GcHeap::frontier()), and restart the world.
//   2. Markers trace concurrently; mutators allocate black (an object allocated during
//      marking gets its mark bit set -- spans are handed out pre-marked).
//   3. Stop the world again; collect_and_reset() yields the pages written meanwhile;
//      rescan the marked objects on those pages (and the roots) and drain; repeat while
//      the dirty set is large, then finish in the pause.
// The backends (dune: hardware D bits in guest page tables; uffd: WP-async + PAGEMAP_SCAN;
// mprotect: write-protect and trap) all fit this shape; softdirty is unusable on the
// kernels measured here (the bit is never set).
#pragma once

#include <cstddef>
#include <cstdint>

namespace dunegc::gc {

class DirtyPageSource {
 public:
  virtual ~DirtyPageSource() = default;
  virtual const char *name() const = 0;
  // Starts tracking writes to [lo, hi) (page-aligned). 0 or -errno (-ENOTSUP: not here).
  virtual int start(uintptr_t lo, uintptr_t hi) = 0;
  // Appends to `pages` (capacity max) the page addresses written in [lo, hi) since start()
  // or the previous call, and resets their state. Returns the count, or -errno; a result
  // equal to max means more may remain (call again).
  virtual long collect_and_reset(uintptr_t lo, uintptr_t hi, uintptr_t *pages, size_t max) = 0;
  virtual void stop() = 0;
};

}  // namespace dunegc::gc
