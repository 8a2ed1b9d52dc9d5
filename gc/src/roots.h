// Static roots: data and bss of the program and its libraries, and ranges the program
// adds explicitly.
//
// Segments are found with dl_iterate_phdr -- writable PT_LOAD segments minus the pages
// PT_GNU_RELRO makes read-only after relocation -- before the world is stopped (the
// loader's lock may be held by a thread we stop), under the collector's lock, which
// dunegc_dlopen/dlclose also take so the list is exact while it is used. Sanitizer
// runtimes' segments are skipped (megabytes of tables that never point into our heap).
#pragma once

#include <cstdint>

#include "mark.h"
#include "meta.h"

namespace dunegc::gc {

class RootSet {
 public:
  int add(uintptr_t lo, uintptr_t hi);
  int remove(uintptr_t lo, uintptr_t hi);  // drops added ranges lying inside [lo, hi)
  void clear() { explicit_.clear(); }
  // Rebuilds the segment list: the executable's always, libraries' when asked.
  int refresh_segments(bool libraries);

  MetaVector<Range> &segments() { return segments_; }
  MetaVector<Range> &ranges() { return explicit_; }
  size_t segment_bytes() const;

 private:
  MetaVector<Range> explicit_;
  MetaVector<Range> segments_;
};

}  // namespace dunegc::gc
