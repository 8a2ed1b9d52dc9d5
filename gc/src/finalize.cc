#include "finalize.h"

#include <algorithm>
#include <cerrno>

namespace dunegc::gc {

int Finalization::set(uintptr_t obj, dunegc_finalizer fn, void *data, uint8_t order, dunegc_finalizer *old_fn,
                      void **old_data) {
  FinalizerInfo *cur = table_.find(obj);
  if (old_fn) *old_fn = cur ? cur->fn : nullptr;
  if (old_data) *old_data = cur ? cur->data : nullptr;
  if (!fn) {
    if (cur) table_.erase(obj);
    return 0;
  }
  bool inserted;
  FinalizerInfo *slot = cur ? cur : table_.insert(obj, &inserted);
  if (!slot) return -ENOMEM;
  *slot = {fn, data, order};
  return 0;
}

int Finalization::add_link(uintptr_t link, uintptr_t obj, bool long_link) {
  bool inserted;
  uintptr_t *slot = table(long_link).insert(link, &inserted);
  if (!slot) return -ENOMEM;
  *slot = obj;
  return inserted ? 0 : DUNEGC_DUPLICATE;
}

int Finalization::move_link(uintptr_t link, uintptr_t new_link, bool long_link) {
  PtrTable<uintptr_t> &t = table(long_link);
  uintptr_t *from = t.find(link);
  if (!from) return -ENOENT;
  if (new_link == link) return 0;
  if (t.find(new_link)) return DUNEGC_DUPLICATE;
  uintptr_t obj = *from;
  bool inserted;
  uintptr_t *to = t.insert(new_link, &inserted);  // may rehash: `from` is stale after this
  if (!to) return -ENOMEM;
  *to = obj;
  t.erase(link);
  return 0;
}

void Finalization::queue(uintptr_t obj, const FinalizerInfo &fi, void (*on_queued)(void *obj)) {
  if (!ready_.push({obj, fi.fn, fi.data, fi.order})) return;
  queued_total_++;
  if (on_queued) on_queued(reinterpret_cast<void *>(obj));
}

void Finalization::queue_all() {
  table_.sweep([&](uintptr_t obj, FinalizerInfo &fi) {
    size_t before = ready_.size();
    queue(obj, fi, nullptr);
    return ready_.size() > before;  // kept registered if the queue could not grow
  });
}

bool Finalization::pop_ready(ReadyFinalizer *out) {
  if (ready_head_ == ready_.size()) return false;
  *out = ready_[ready_head_++];
  if (ready_head_ == ready_.size()) {
    ready_.clear();
    ready_head_ = 0;
  }
  return true;
}

void Finalization::mark_roots(Marker &m, GcHeap &heap) {
  table_.sweep([&](uintptr_t, FinalizerInfo &fi) {
    m.mark_candidate(reinterpret_cast<uintptr_t>(fi.data));
    return false;
  });
  for (size_t i = ready_head_; i < ready_.size(); i++) {
    ObjRef r;
    if (heap.resolve(ready_[i].obj, false, &r)) m.mark_object(r);
    m.mark_candidate(reinterpret_cast<uintptr_t>(ready_[i].data));
  }
}

void Finalization::clear_dead_links(PtrTable<uintptr_t> &t, Marker &m) {
  t.sweep([&](uintptr_t link, uintptr_t &obj) {
    if (m.is_marked(obj)) return false;
    *reinterpret_cast<void **>(link) = nullptr;
    links_cleared_total_++;
    return true;
  });
}

void Finalization::drop_links_in_dead_objects(PtrTable<uintptr_t> &t, GcHeap &heap) {
  t.sweep([&](uintptr_t link, uintptr_t &) {
    ObjRef r;
    return heap.resolve(link, true, &r) && !is_marked(r);
  });
}

void Finalization::process(Marker &m, GcHeap &heap, bool java_finalization, void (*on_queued)(void *obj)) {
  // 1. Short weak links: cleared when the target was not reached by the main marking.
  clear_dead_links(links_, m);
  if (table_.size()) {
    // 2. Mark what unreachable ordered (and "unreachable") finalizable objects reach.
    table_.sweep([&](uintptr_t obj, FinalizerInfo &fi) {
      ObjRef r;
      if (fi.order != DUNEGC_FINALIZE_UNORDERED && heap.resolve(obj, false, &r) && !is_marked(r))
        m.scan_contents(r, fi.order == DUNEGC_FINALIZE_IGNORE_SELF);
      return false;
    });
    m.drain();
    // 3. Queue what is still unmarked -- deciding the whole set first, since keeping one
    //    queued object alive may mark another -- then keep them (and what they need).
    size_t first_new = ready_.size();
    table_.sweep([&](uintptr_t obj, FinalizerInfo &fi) {
      ObjRef r;
      if (!heap.resolve(obj, false, &r)) return true;  // no longer an object: drop
      if (is_marked(r)) return false;
      size_t before = ready_.size();
      queue(obj, fi, on_queued);
      return ready_.size() > before;  // no memory to queue it: next time
    });
    shallow_.clear();
    bool deferred = false;
    for (size_t i = first_new; i < ready_.size(); i++) {
      ObjRef r;
      if (!heap.resolve(ready_[i].obj, false, &r)) continue;
      uint8_t order = ready_[i].order;
      if (order == DUNEGC_FINALIZE_UNORDERED && java_finalization) {
        m.mark_object(r);
      } else if (order == kFinalizeUnreachable && java_finalization) {
        deferred = true;  // decided once the unordered objects' children are marked
      } else {
        m.set_mark(r);  // ordered: what it reaches is marked already (step 2)
        if (order == DUNEGC_FINALIZE_UNORDERED && !shallow_.push(r.base)) {
          // Out of metadata memory: keep its children too rather than lose track.
          m.scan_contents(r, false);
        }
      }
    }
    m.drain();
    if (deferred) {
      // An "unreachable" object that a queued unordered object reaches is put back: it
      // may still be used by that finalizer. The others are kept for their own.
      size_t out = first_new;
      for (size_t i = first_new; i < ready_.size(); i++) {
        ReadyFinalizer f = ready_[i];
        ObjRef r;
        if (f.order == kFinalizeUnreachable && heap.resolve(f.obj, false, &r)) {
          if (is_marked(r)) {
            bool inserted;
            if (FinalizerInfo *slot = table_.insert(f.obj, &inserted)) {
              *slot = {f.fn, f.data, f.order};
              queued_total_--;
              continue;
            }
          }
          m.set_mark(r);
        }
        ready_[out++] = f;
      }
      ready_.truncate(out);
    }
    std::sort(shallow_.begin(), shallow_.end());
  }
  // 4. Long links: cleared when even finalization did not keep the target.
  clear_dead_links(long_links_, m);
  // 5. Links stored in heap objects that died go with them.
  drop_links_in_dead_objects(links_, heap);
  drop_links_in_dead_objects(long_links_, heap);
}

}  // namespace dunegc::gc
