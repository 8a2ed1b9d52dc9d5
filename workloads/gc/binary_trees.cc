// binary-trees (the Computer Language Benchmarks Game): a stretch tree of depth n+1, a
// long-lived tree of depth n, then for d = 4, 6, ..., n: 2^(n-d+4) trees of depth d built
// bottom-up, checked and dropped. Nodes are two pointers and nothing else (16 bytes).
//
// Verification: each tree's check (its node count, walked recursively, with every inner node
// having two children and every leaf none) must equal 2^(d+1)-1; the long-lived tree is
// checked last, after everything else was allocated around it.
#include <gc.h>

#include <algorithm>

#include "gcwl.h"

namespace {

using gcwl::Context;

struct Node {
  Node *left, *right;
};

constexpr int kMinDepth = 4;

int max_depth(const Context &ctx) { return ctx.size == gcwl::Size::kQuick ? 14 : 18; }

constexpr uint64_t nodes(int depth) { return (uint64_t(2) << depth) - 1; }

uint64_t live_bytes(const Context &ctx) {
  int n = max_depth(ctx);
  return std::max(nodes(n + 1), 2 * nodes(n)) * sizeof(Node);
}

Node *bottom_up(int depth) {
  auto *n = static_cast<Node *>(GC_MALLOC(sizeof(Node)));
  if (depth > 0) {
    n->left = bottom_up(depth - 1);
    n->right = bottom_up(depth - 1);
  }
  return n;
}

// The benchmark's item check, plus shape checks; frees as it goes when `release`.
uint64_t check(Node *n, bool release, bool &ok) {
  uint64_t c = 1;
  if (n->left && n->right) {
    c += check(n->left, release, ok) + check(n->right, release, ok);
  } else if (n->left || n->right) {
    ok = false;
  }
  if (release) WL_FREE(n);
  return c;
}

bool verify(Context &ctx, const char *what, Node *t, int depth, bool release) {
  bool ok = true;
  uint64_t c = check(t, release, ok);
  if (ok && c == nodes(depth)) return true;
  return ctx.fail("%s of depth %d: check %llu, expected %llu%s", what, depth, (unsigned long long)c,
                  (unsigned long long)nodes(depth), ok ? "" : " (malformed node)");
}

bool run(Context &ctx) {
  const int n = max_depth(ctx);
  ctx.param("max_depth", n);
  ctx.param("min_depth", kMinDepth);

  if (!verify(ctx, "stretch tree", bottom_up(n + 1), n + 1, true)) return false;
  Node *long_lived = bottom_up(n);
  uint64_t sum = 0;
  for (int d = kMinDepth; d <= n; d += 2) {
    uint64_t iterations = uint64_t(1) << (n - d + kMinDepth);
    for (uint64_t i = 0; i < iterations; ++i)
      if (!verify(ctx, "tree", bottom_up(d), d, true)) return false;
    sum = gcwl::mix64(sum, iterations * nodes(d));
    if (ctx.inject_fault && d == kMinDepth)
      gcwl::clobber_live_object(long_lived->right->left, sizeof(Node));
  }
  if (!verify(ctx, "long-lived tree", long_lived, n, true)) return false;
  ctx.set_checksum(sum);
  return true;
}

}  // namespace

int main(int argc, char **argv) {
  static const gcwl::Workload w{"binary-trees", "binary-trees: many short-lived trees, one long-lived",
                                false, live_bytes, run};
  return gcwl::main_with(w, argc, argv);
}
