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

int Finalization::add_link(uintptr_t link, uintptr_t obj) {
  bool inserted;
  uintptr_t *slot = links_.insert(link, &inserted);
  if (!slot) return -ENOMEM;
  *slot = obj;
  return inserted ? 0 : DUNEGC_DUPLICATE;
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

void Finalization::process(Marker &m, GcHeap &heap, bool java_finalization) {
  // 1. Short weak links: cleared when the target was not reached by the main marking.
  links_.sweep([&](uintptr_t link, uintptr_t &obj) {
    if (m.is_marked(obj)) return false;
    *reinterpret_cast<void **>(link) = nullptr;
    links_cleared_total_++;
    return true;
  });
  if (table_.size()) {
    // 2. Mark what unreachable ordered finalizable objects reach.
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
      if (!ready_.push({obj, fi.fn, fi.data, fi.order})) return false;  // no memory: next time
      queued_total_++;
      return true;
    });
    shallow_.clear();
    for (size_t i = first_new; i < ready_.size(); i++) {
      ObjRef r;
      if (!heap.resolve(ready_[i].obj, false, &r)) continue;
      if (ready_[i].order == DUNEGC_FINALIZE_UNORDERED && java_finalization) {
        m.mark_object(r);
      } else {
        m.set_mark(r);  // ordered: what it reaches is marked already (step 2)
        if (ready_[i].order == DUNEGC_FINALIZE_UNORDERED && !shallow_.push(r.base)) {
          // Out of metadata memory: keep its children too rather than lose track.
          m.scan_contents(r, false);
        }
      }
    }
    std::sort(shallow_.begin(), shallow_.end());
    m.drain();
  }
  // 4. Links stored in heap objects that died go with them.
  links_.sweep([&](uintptr_t link, uintptr_t &) {
    ObjRef r;
    return heap.resolve(link, true, &r) && !is_marked(r);
  });
}

}  // namespace dunegc::gc
