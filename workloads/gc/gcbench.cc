// GCBench (John Ellis and Pete Kovac; C version by Hans Boehm): binary trees of many
// sizes, built top-down and bottom-up and dropped, while a long-lived tree and an array of
// doubles stay live. Full size is the classic configuration (stretch tree depth 18,
// long-lived tree depth 16, 500000 doubles, temporary trees of depth 4..16).
//
// Verification: every temporary tree is checked node by node before it is dropped; at the
// end the long-lived tree (node by node) and every element of the array are checked.
#include <gc.h>

#include <algorithm>

#include "gcwl.h"
#include "trees.h"

namespace {

using gcwl::Context;
using gcwl::TreeNode;
using gcwl::tree_nodes;

struct Params {
  int stretch_depth, long_lived_depth, min_depth, max_depth;
  int64_t array_size;
};

Params params(const Context &ctx) {
  if (ctx.size == gcwl::Size::kQuick) return {13, 11, 4, 11, 50000};
  return {18, 16, 4, 16, 500000};
}

// GCBench's iteration count: each depth allocates about as much as two stretch trees.
uint64_t iterations(const Params &p, int depth) {
  return 2 * tree_nodes(p.stretch_depth) / tree_nodes(depth);
}

uint64_t live_bytes(const Context &ctx) {
  Params p = params(ctx);
  uint64_t node = sizeof(TreeNode);
  uint64_t stretch = tree_nodes(p.stretch_depth) * node;
  uint64_t steady = tree_nodes(p.long_lived_depth) * node + uint64_t(p.array_size) * sizeof(double) +
                    tree_nodes(p.max_depth) * node;
  return std::max(stretch, steady);
}

bool run(Context &ctx) {
  Params p = params(ctx);
  ctx.param("stretch_depth", p.stretch_depth);
  ctx.param("long_lived_depth", p.long_lived_depth);
  ctx.param("min_depth", p.min_depth);
  ctx.param("max_depth", p.max_depth);
  ctx.param("array_size", p.array_size);
  uint64_t sum = 0;
  int tag = 1;

  // Stretch the heap once with a tree as large as any to come.
  TreeNode *stretch = gcwl::make_tree(p.stretch_depth, tag);
  if (!gcwl::verify_tree(ctx, "stretch tree", stretch, p.stretch_depth, tag, true)) return false;

  // The long-lived structures.
  const int long_tag = ++tag;
  TreeNode *long_lived = gcwl::new_tree_node(0, 0, nullptr, nullptr);
  gcwl::populate_tree(long_lived, p.long_lived_depth, long_tag);
  auto *array = static_cast<double *>(GC_MALLOC_ATOMIC(sizeof(double) * size_t(p.array_size)));
  for (int64_t i = 0; i < p.array_size; ++i) array[i] = i ? 1.0 / double(i) : 0.0;

  for (int d = p.min_depth; d <= p.max_depth; d += 2) {
    uint64_t n = iterations(p, d);
    ++tag;
    for (uint64_t k = 0; k < n; ++k) {
      TreeNode *t = gcwl::new_tree_node(0, 0, nullptr, nullptr);
      gcwl::populate_tree(t, d, tag);
      if (!gcwl::verify_tree(ctx, "top-down tree", t, d, tag, true)) return false;
    }
    ++tag;
    for (uint64_t k = 0; k < n; ++k) {
      TreeNode *t = gcwl::make_tree(d, tag);
      if (!gcwl::verify_tree(ctx, "bottom-up tree", t, d, tag, true)) return false;
    }
    sum = gcwl::mix64(sum, uint64_t(d) << 32 | n);
    if (ctx.inject_fault && d == p.min_depth)
      gcwl::clobber_live_object(long_lived->left->right, sizeof(TreeNode));
  }

  for (int64_t i = 1; i < p.array_size; ++i)
    if (array[i] != 1.0 / double(i))
      return ctx.fail("long-lived array: element %lld is %g, expected %g", (long long)i, array[i],
                      1.0 / double(i));
  WL_FREE(array);
  if (!gcwl::verify_tree(ctx, "long-lived tree", long_lived, p.long_lived_depth, long_tag, true))
    return false;
  ctx.set_checksum(gcwl::mix64(sum, tree_nodes(p.long_lived_depth)));
  return true;
}

}  // namespace

int main(int argc, char **argv) {
  static const gcwl::Workload w{"gcbench", "GCBench: temporary trees around a long-lived tree and array",
                                false, live_bytes, run};
  return gcwl::main_with(w, argc, argv);
}
