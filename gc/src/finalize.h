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
//   4. long links (Boehm's GC_register_long_link) whose target is still unmarked -- no
//      finalizer can revive it any more -- are cleared and dropped;
//   5. links that live inside heap objects that died are dropped.
// Objects with an "unreachable" finalizer (Boehm's GC_register_finalizer_unreachable,
// kFinalizeUnreachable) are treated as ordered in 2; with Java-style finalization, one
// that the unordered objects queued in 3 reach is put back, not queued: it is finalized
// only when not even a finalizer can reach it.
// Queued finalizers run later, outside the collector (invoke()).
#pragma once

#include <cstdint>

#include "dunegc/dunegc.h"
#include "mark.h"
#include "meta.h"

namespace dunegc::gc {

// The finalization orders: dunegc_finalize_order's three, and Boehm's "unreachable".
inline constexpr uint8_t kFinalizeUnreachable = 3;

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
  // Short links are cleared before finalization, long ones after (see above).
  int add_link(uintptr_t link, uintptr_t obj, bool long_link = false);  // 0, DUNEGC_DUPLICATE, -ENOMEM
  bool remove_link(uintptr_t link, bool long_link = false) { return table(long_link).erase(link); }
  // Moves a registration to new_link: 0; DUNEGC_DUPLICATE when new_link is registered
  // (and differs); -ENOENT when link is not; -ENOMEM.
  int move_link(uintptr_t link, uintptr_t new_link, bool long_link);
  // Queues every registered finalizer, reachable or not (Boehm's GC_finalize_all).
  void queue_all();
  bool pop_ready(ReadyFinalizer *out);
  size_t pending() const { return ready_.size() - ready_head_; }
  size_t registered() const { return table_.size(); }
  size_t links() const { return links_.size(); }
  size_t long_links() const { return long_links_.size(); }

  // --- world stopped ---
  // Client data of registered finalizers and everything queued are roots.
  void mark_roots(Marker &m, GcHeap &heap);
  // on_queued (may be null) is called for each object queued for finalization.
  void process(Marker &m, GcHeap &heap, bool java_finalization, void (*on_queued)(void *obj));

  // Objects this collection kept for their finalizer without what they reach (unordered
  // ones, Java-style finalization off), sorted: the verifier must not expect their
  // children marked.
  const MetaVector<uintptr_t> &kept_shallow() const { return shallow_; }

  uint64_t queued_total() const { return queued_total_; }
  uint64_t links_cleared_total() const { return links_cleared_total_; }

 private:
  PtrTable<FinalizerInfo> table_;
  PtrTable<uintptr_t> &table(bool long_link) { return long_link ? long_links_ : links_; }
  void clear_dead_links(PtrTable<uintptr_t> &t, Marker &m);
  void drop_links_in_dead_objects(PtrTable<uintptr_t> &t, GcHeap &heap);
  void queue(uintptr_t obj, const FinalizerInfo &fi, void (*on_queued)(void *obj));

  PtrTable<uintptr_t> links_;       // link address -> target object
  PtrTable<uintptr_t> long_links_;  // the same, cleared after finalization
  MetaVector<ReadyFinalizer> ready_;
  size_t ready_head_ = 0;
  MetaVector<uintptr_t> shallow_;
  uint64_t queued_total_ = 0, links_cleared_total_ = 0;
};

}  // namespace dunegc::gc
