// Parallel marking: helper markers join a collection when marking finds enough work --
// also when all of it hangs off a single root, the common case (a tree, a list of
// arrays) -- and stay asleep for small collections.
#include <gtest/gtest.h>

#include "dunegc/dunegc.hpp"
#include "gc_test_util.h"

using namespace gctest;

namespace {

struct Node {
  Node *left, *right;
  uint64_t depth;
};

Node *tree(unsigned depth) {
  auto *n = static_cast<Node *>(dunegc_malloc(sizeof(Node)));
  n->depth = depth;
  if (depth) {
    n->left = tree(depth - 1);
    n->right = tree(depth - 1);
  }
  return n;
}

uint64_t count(const Node *n, unsigned depth) {
  if (!n || n->depth != depth) return 0;
  return 1 + (depth ? count(n->left, depth - 1) + count(n->right, depth - 1) : 0);
}

Node *g_root;  // the only root of the tree

dunegc_options two_markers() {
  dunegc_options o;
  dunegc_options_init(&o);
  o.markers = 2;
  return o;
}

}  // namespace

TEST(Mark, HelpersShareAGraphReachedFromOneRoot) {
  dunegc_options o = two_markers();
  init_or_die(&o);
  g_root = tree(17);  // 262143 nodes
  // A helper that is not scheduled before the collecting thread finishes does not join
  // (by design: it never holds a pause up), so on a busy machine some rounds go alone.
  uint64_t best = 0;
  for (int i = 0; i < 50 && best == 0; i++) {
    dunegc_collect();
    dunegc::Stats st = dunegc::stats();
    EXPECT_GE(st.objects_marked_last, 262143u);
    best = st.helper_objects_last;
  }
  EXPECT_GT(best, 0u) << "no helper marked anything in 50 collections of a 262143-node tree";
  EXPECT_EQ(count(g_root, 17), 262143u);
}

TEST(Mark, SmallCollectionsMarkAlone) {
  dunegc_options o = two_markers();
  init_or_die(&o);
  g_root = tree(8);  // 511 nodes: not worth waking anyone
  for (int i = 0; i < 5; i++) {
    dunegc_collect();
    EXPECT_EQ(dunegc::stats().helper_objects_last, 0u);
  }
  EXPECT_EQ(count(g_root, 8), 511u);
}
