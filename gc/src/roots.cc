#include "roots.h"

#include <link.h>

#include <cerrno>
#include <cstring>

#include "dunegc/allocators/size_classes.h"

namespace dunegc::gc {

int RootSet::add(uintptr_t lo, uintptr_t hi) {
  if (hi <= lo) return -EINVAL;
  return explicit_.push({lo, hi}) ? 0 : -ENOMEM;
}

int RootSet::remove(uintptr_t lo, uintptr_t hi) {
  for (size_t i = 0; i < explicit_.size();) {
    if (explicit_[i].lo >= lo && explicit_[i].hi <= hi) explicit_.erase_at(i);
    else i++;
  }
  return 0;
}

int RootSet::exclude(uintptr_t lo, uintptr_t hi) {
  if (hi <= lo) return -EINVAL;
  return excluded_.push({lo, hi}) ? 0 : -ENOMEM;
}

namespace {

struct Walk {
  MetaVector<Range> *out;
  bool libraries;
  SegmentFilter filter;
  bool first = true;
  bool failed = false;
};

// Sanitizer runtimes keep megabytes of bss (their allocators' tables) and never hold
// pointers into our heap: scanning them would only slow every collection in the debug
// build by an order of magnitude.
bool is_sanitizer_runtime(const char *name) {
  for (const char *lib : {"/libasan.so", "/libubsan.so", "/liblsan.so", "/libtsan.so", "/libhwasan.so"})
    if (strstr(name, lib)) return true;
  return false;
}

int add_object_segments(dl_phdr_info *info, size_t, void *arg) {
  auto *w = static_cast<Walk *>(arg);
  bool is_main = w->first;  // the executable comes first
  w->first = false;
  if (!is_main && (!w->libraries || is_sanitizer_runtime(info->dlpi_name))) return 0;
  uintptr_t relro_lo = 0, relro_hi = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) &ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_GNU_RELRO) {
      // The loader write-protects whole pages: [page_down(start), page_down(end)).
      relro_lo = (info->dlpi_addr + ph.p_vaddr) & ~(allocators::kPageSize - 1);
      relro_hi = (info->dlpi_addr + ph.p_vaddr + ph.p_memsz) & ~(allocators::kPageSize - 1);
    }
  }
  // A library's segment is kept unless the program's filter declines it.
  auto keep = [&](uintptr_t lo, uintptr_t hi) {
    if (!is_main && w->filter && !w->filter(info->dlpi_name, reinterpret_cast<void *>(lo), hi - lo)) return;
    if (!w->out->push({lo, hi})) w->failed = true;
  };
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) &ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_W) || ph.p_memsz == 0) continue;
    uintptr_t lo = info->dlpi_addr + ph.p_vaddr, hi = lo + ph.p_memsz;
    if (relro_lo < relro_hi && relro_lo < hi && relro_hi > lo) {
      if (lo < relro_lo) keep(lo, relro_lo);
      lo = relro_hi > lo ? relro_hi : lo;
    }
    if (lo < hi) keep(lo, hi);
  }
  return 0;
}

}  // namespace

int RootSet::refresh_segments(bool libraries) {
  segments_.clear();
  Walk w{&segments_, libraries, filter_};
  dl_iterate_phdr(&add_object_segments, &w);
  return w.failed ? -ENOMEM : 0;
}

size_t RootSet::segment_bytes() const {
  size_t n = 0;
  for (size_t i = 0; i < segments_.size(); i++) n += segments_[i].hi - segments_[i].lo;
  return n;
}

}  // namespace dunegc::gc
