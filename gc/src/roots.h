// Static roots: data and bss of the program and its libraries, and ranges the program
// adds explicitly.
//
// Segments are found with dl_iterate_phdr -- writable PT_LOAD segments minus the pages
// PT_GNU_RELRO makes read-only after relocation -- before the world is stopped (the
// loader's lock may be held by a thread we stop), under the collector's lock, which
// dunegc_dlopen/dlclose also take so the list is exact while it is used. Sanitizer
// runtimes' segments are skipped (megabytes of tables that never point into our heap).
// A program may filter library segments (Boehm's GC_register_has_static_roots_callback)
// and exclude ranges it knows hold no heap pointers (GC_exclude_static_roots): excluded
// ranges are cut out of both the segments and the explicitly added ranges.
#pragma once

#include <cstdint>

#include "mark.h"
#include "meta.h"

namespace dunegc::gc {

// Decides whether a library's data segment is scanned: non-zero keeps it.
using SegmentFilter = int (*)(const char *library, void *start, size_t bytes);

class RootSet {
 public:
  int add(uintptr_t lo, uintptr_t hi);
  int remove(uintptr_t lo, uintptr_t hi);  // drops added ranges lying inside [lo, hi)
  void clear() { explicit_.clear(); }
  int exclude(uintptr_t lo, uintptr_t hi);
  void clear_exclusions() { excluded_.clear(); }
  void set_filter(SegmentFilter f) { filter_ = f; }
  // Calls f(lo, hi) for every root range: segments and added ranges, minus exclusions.
  template <typename F>
  void for_each(F &&f);
  // Rebuilds the segment list: the executable's always, libraries' when asked.
  int refresh_segments(bool libraries);

  MetaVector<Range> &segments() { return segments_; }
  MetaVector<Range> &ranges() { return explicit_; }
  size_t segment_bytes() const;

 private:
  template <typename F>
  void cut_exclusions(uintptr_t lo, uintptr_t hi, size_t from, F &f);

  MetaVector<Range> explicit_;
  MetaVector<Range> segments_;
  MetaVector<Range> excluded_;
  SegmentFilter filter_ = nullptr;
};

template <typename F>
void RootSet::for_each(F &&f) {
  for (Range &g : segments_) cut_exclusions(g.lo, g.hi, 0, f);
  for (Range &g : explicit_) cut_exclusions(g.lo, g.hi, 0, f);
}

// Passes [lo, hi) minus exclusions[from..] to f (few exclusions: a plain recursion).
template <typename F>
void RootSet::cut_exclusions(uintptr_t lo, uintptr_t hi, size_t from, F &f) {
  for (size_t i = from; i < excluded_.size() && lo < hi; i++) {
    const Range &x = excluded_[i];
    if (x.hi <= lo || x.lo >= hi) continue;
    if (x.lo > lo) cut_exclusions(lo, x.lo, i + 1, f);
    lo = x.hi;
  }
  if (lo < hi) f(lo, hi);
}

}  // namespace dunegc::gc
