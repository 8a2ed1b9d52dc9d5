// linked-list (after the Dune paper's LinkedList): one long singly linked list of small typed
// nodes that lives for the whole run, churned in place. Each round walks the whole list;
// every node is, with probability 1/8, unlinked (it dies) and replaced by a fresh node pushed
// on the head, so the list keeps its length while its order, and the heap under it, scatter.
// Marking it is one long pointer chain that no parallel marker can split.
//
// Nodes are allocated with GC_malloc_explicitly_typed: only `next` is a pointer, so the
// random 64-bit values never retain anything.
//
// Verification: every round's walk checks each node's value against its key and compares
// the length and the sum of values with what the churn says they must be; the final walk
// does the same.
#include <gc.h>
#include <gc/gc_typed.h>

#include "gcwl.h"

namespace {

using gcwl::Context;

struct ListNode {
  ListNode *next;
  uint64_t key;
  uint64_t value;  // mix64(seed, key): checkable from the key alone
};

struct Params {
  int64_t length, rounds;
};

Params params(const Context &ctx) {
  if (ctx.size == gcwl::Size::kQuick) return {100000, 10};
  return {1000000, 30};
}

uint64_t live_bytes(const Context &ctx) { return uint64_t(params(ctx).length) * sizeof(ListNode); }

GC_descr node_descr() {
  GC_word bitmap[GC_BITMAP_SIZE(ListNode)] = {0};
  GC_set_bit(bitmap, GC_WORD_OFFSET(ListNode, next));
  return GC_make_descriptor(bitmap, GC_WORD_LEN(ListNode));
}

struct List {
  ListNode *head = nullptr;
  uint64_t next_key = 0, seed, length = 0, sum = 0;  // what the list must hold
  GC_descr descr;

  explicit List(uint64_t s) : seed(s), descr(node_descr()) {}

  void push_front() {
    auto *n = static_cast<ListNode *>(GC_malloc_explicitly_typed(sizeof(ListNode), descr));
    n->key = next_key++;
    n->value = gcwl::mix64(seed, n->key);
    n->next = head;
    head = n;
    ++length;
    sum += n->value;
  }
};

// One pass over the list: checks every node, and unlinks each with probability 1/8,
// replacing it at the head. Returns false (through ctx) on any mismatch.
bool churn(Context &ctx, List &l, gcwl::Rng &rng, bool replace, const char *when) {
  // New nodes go on the head, behind the walk: it sees exactly the nodes there at its start.
  uint64_t count = 0, sum = 0, expected = l.length, expected_sum = l.sum;
  ListNode *prev = nullptr, *n = l.head;
  for (; n && count < expected; ++count) {
    if (n->value != gcwl::mix64(l.seed, n->key))
      return ctx.fail("%s: node %llu (key %llu) holds value %#llx, expected %#llx", when,
                      (unsigned long long)count, (unsigned long long)n->key,
                      (unsigned long long)n->value,
                      (unsigned long long)gcwl::mix64(l.seed, n->key));
    sum += n->value;
    ListNode *next = n->next;
    if (replace && (rng.next() & 7) == 0) {
      if (prev) prev->next = next;
      else l.head = next;
      l.sum -= n->value;
      --l.length;
      WL_FREE(n);
      bool at_head = !prev;
      l.push_front();
      if (at_head) prev = l.head;  // the new head precedes `next` now
    } else {
      prev = n;
    }
    n = next;
  }
  if (count != expected || n)
    return ctx.fail("%s: list has %s%llu nodes, expected %llu", when, n ? "more than " : "",
                    (unsigned long long)count, (unsigned long long)expected);
  if (sum != expected_sum)
    return ctx.fail("%s: values sum to %#llx, expected %#llx", when, (unsigned long long)sum,
                    (unsigned long long)expected_sum);
  return true;
}

bool run(Context &ctx) {
  Params p = params(ctx);
  ctx.param("length", p.length);
  ctx.param("rounds", p.rounds);
  gcwl::Rng rng(ctx.seed);
  List list(ctx.seed);
  for (int64_t i = 0; i < p.length; ++i) list.push_front();
  for (int64_t r = 0; r < p.rounds; ++r) {
    if (!churn(ctx, list, rng, true, "churn")) return false;
    if (ctx.inject_fault && r == p.rounds / 2) {
      ListNode *victim = list.head;
      for (int64_t k = 0; k < p.length / 2; ++k) victim = victim->next;
      gcwl::clobber_live_object(victim, sizeof(ListNode));
    }
  }
  if (!churn(ctx, list, rng, false, "final walk")) return false;
  ctx.set_checksum(gcwl::mix64(list.sum, list.next_key));
  for (ListNode *n = list.head; n;) {  // the list dies with the run
    ListNode *next = n->next;
    WL_FREE(n);
    n = next;
  }
  return true;
}

}  // namespace

int main(int argc, char **argv) {
  static const gcwl::Workload w{"linked-list", "linked-list: a long list of typed nodes, churned in place",
                                false, live_bytes, run};
  return gcwl::main_with(w, argc, argv);
}
