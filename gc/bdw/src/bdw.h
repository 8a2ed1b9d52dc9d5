// What the translation units of dunegc-bdw (Boehm GC 8.2's API over dunegc) share.
//
// The layer calls the collector directly (it is linked into the same library), keeping
// Boehm's public variables as the one place each of its settings lives: GC_init reads
// them, and sync_variables_locked() applies them at the start of every collection, so a
// program that assigns GC_no_dls or GC_java_finalization directly, as old Boehm clients
// do, is honoured too.
#pragma once

#define DUNEGC_BDW_BUILD 1      // the variables are defined here: no deprecation warnings
#define GC_THREADS 1            // declare the thread API too...
#define GC_NO_THREAD_REDIRECTS  // ...but keep pthread_create & co. the real ones

#include <atomic>

#include "collector.h"
#include "gc/gc.h"
#include "gc/gc_typed.h"
#include "report.h"

namespace dunegc::bdw {

using gc::Collector;
inline Collector &C() { return Collector::get(); }

// GC_init unless done. Entry points that may come first call it; the allocation fast
// paths need not (a thread has a free list only once the collector is initialised).
void ensure_init_slow();
inline void ensure_init() {
  extern std::atomic<bool> g_initialized;
  if (__builtin_expect(!g_initialized.load(std::memory_order_acquire), 0)) ensure_init_slow();
}

// The public variables -> the collector's settings (collector lock held).
void sync_variables_locked();
// Applies the variables now (after a setter wrote one), or warns about those dunegc cannot
// honour if not yet initialised (GC_init applies the rest).
void apply_variables();
// Warns (once each) about set variables dunegc cannot honour.
void warn_unsupported_variables();

// Warnings for what dunegc cannot honour: through the collector's warn handler, which
// ends at the program's GC_warn_proc. Once per call site: some are on hot paths.
#define BDW_WARN_ONCE(...)                                  \
  do {                                                      \
    static std::atomic<bool> warned_{false};                \
    if (!warned_.exchange(true)) dunegc::gc::warn(__VA_ARGS__); \
  } while (0)

// Boehm's object kinds, as gc_mark.h numbers them.
enum BoehmKind : int { kPtrFree = 0, kNormalKind = 1, kUncollectableKind = 2, kAtomicUncollectableKind = 3 };

}  // namespace dunegc::bdw
