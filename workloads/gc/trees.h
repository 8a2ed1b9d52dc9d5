// Complete binary trees of GCBench nodes, shared by gcbench.cc and mt_trees.cc.
//
// Every node records its remaining depth (i) and the tag of the tree it was built for (j),
// so verification checks each node, not just a count: a node that a collector reclaimed and
// handed out again carries another tree's values, or zeros. Include <gc.h> first.
#pragma once

#include <cstdint>

#include "gcwl.h"

namespace gcwl {

struct TreeNode {
  TreeNode *left, *right;
  int i, j;
};

constexpr uint64_t tree_nodes(int depth) { return (uint64_t(2) << depth) - 1; }

inline TreeNode *new_tree_node(int depth, int tag, TreeNode *l, TreeNode *r) {
  auto *n = static_cast<TreeNode *>(GC_MALLOC(sizeof(TreeNode)));
  n->left = l;
  n->right = r;
  n->i = depth;
  n->j = tag;
  return n;
}

// Top-down, GCBench's Populate: a node's children are allocated before its grandchildren.
inline void populate_tree(TreeNode *n, int depth, int tag) {
  n->i = depth;
  n->j = tag;
  if (depth <= 0) return;
  n->left = new_tree_node(0, 0, nullptr, nullptr);
  n->right = new_tree_node(0, 0, nullptr, nullptr);
  populate_tree(n->left, depth - 1, tag);
  populate_tree(n->right, depth - 1, tag);
}

// Bottom-up, GCBench's MakeTree: children first, then their parent.
inline TreeNode *make_tree(int depth, int tag) {
  if (depth <= 0) return new_tree_node(0, tag, nullptr, nullptr);
  TreeNode *l = make_tree(depth - 1, tag);
  TreeNode *r = make_tree(depth - 1, tag);
  return new_tree_node(depth, tag, l, r);
}

// Checks every node's depth, tag and shape; returns how many nodes it saw, clearing `ok` on a
// mismatch. With `release` the tree dies here: the baselines free each node after checking
// it (WL_FREE), the collector builds do nothing more than check.
inline uint64_t check_tree(TreeNode *n, int depth, int tag, bool release, bool &ok) {
  if (!n || n->i != depth || n->j != tag) {
    ok = false;
    return 0;
  }
  uint64_t count = 1;
  if (depth > 0) {
    count += check_tree(n->left, depth - 1, tag, release, ok);
    count += check_tree(n->right, depth - 1, tag, release, ok);
  } else if (n->left || n->right) {
    ok = false;
  }
  if (release) WL_FREE(n);
  return count;
}

// check_tree for a whole tree, reporting a failure through ctx.
inline bool verify_tree(Context &ctx, const char *what, TreeNode *t, int depth, int tag,
                        bool release) {
  bool ok = true;
  uint64_t n = check_tree(t, depth, tag, release, ok);
  if (ok && n == tree_nodes(depth)) return true;
  return ctx.fail("%s (depth %d, tag %d): %llu of %llu nodes intact", what, depth, tag,
                  (unsigned long long)n, (unsigned long long)tree_nodes(depth));
}

}  // namespace gcwl
