// Finalizers and disappearing links (weak references).
//
// Both tables live in metadata memory, invisible to the conservative scan, so neither a
// finalizable object nor a link's target is kept alive by being registered. After the
// main marking, with the world still stopped, process() does what Boehm's collector does,
// in the same order:
//   1. links whose target is unmarked are cleared (*link = NULL) and dropped -- before
//      any finalization marking, so a weak reference never resurrects;
//   2. for each unmarked object with an ordered finalizer, everything reachable from it
//      (not the object itself) is marked; so an object reachable from another
//      finalizable object stays alive this time, and is finalized after it;
//   3. finalizable objects still unmarked are queued: they (and, for unordered ones with
//      Java-style finalization, all they reach) are marked so they survive until their
//      finalizer runs, and their registrations are dropped -- without Java-style
//      finalization an unordered object's children are not kept (Boehm's semantics: its
//      finalizer must not use them);
//   4. links that live inside heap objects that died are dropped.
// Queued finalizers run later, outside the collector (invoke()).
#pragma once

#include <cstdint>

#include "dunegc/dunegc.h"
#include "mark.h"
#include "meta.h"

namespace dunegc::gc {

struct FinalizerInfo {
  dunegc_finalizer fn;
  void *data;
  uint8_t order;
};

struct ReadyFinalizer {
  uintptr_t obj;
  dunegc_finalizer fn;
  void *data;
  uint8_t order;
};

class Finalization {
 public:
  // --- with the collector's lock held ---
  int set(uintptr_t obj, dunegc_finalizer fn, void *data, uint8_t order, dunegc_finalizer *old_fn,
          void **old_data);
  void forget(uintptr_t obj) {
    if (table_.size()) table_.erase(obj);
  }
  int add_link(uintptr_t link, uintptr_t obj);  // 0, DUNEGC_DUPLICATE, -ENOMEM
  bool remove_link(uintptr_t link) { return links_.erase(link); }
  bool pop_ready(ReadyFinalizer *out);
  size_t pending() const { return ready_.size() - ready_head_; }
  size_t registered() const { return table_.size(); }
  size_t links() const { return links_.size(); }

  // --- world stopped ---
  // Client data of registered finalizers and everything queued are roots.
  void mark_roots(Marker &m, GcHeap &heap);
  void process(Marker &m, GcHeap &heap, bool java_finalization);

  // Objects this collection kept for their finalizer without what they reach (unordered
  // ones, Java-style finalization off), sorted: the verifier must not expect their
  // children marked.
  const MetaVector<uintptr_t> &kept_shallow() const { return shallow_; }

  uint64_t queued_total() const { return queued_total_; }
  uint64_t links_cleared_total() const { return links_cleared_total_; }

 private:
  PtrTable<FinalizerInfo> table_;
  PtrTable<uintptr_t> links_;  // link address -> target object
  MetaVector<ReadyFinalizer> ready_;
  size_t ready_head_ = 0;
  MetaVector<uintptr_t> shallow_;
  uint64_t queued_total_ = 0, links_cleared_total_ = 0;
};

}  // namespace dunegc::gc
