// mt-trees: a multi-threaded tree workload. The main thread builds a shared tree that every
// worker reads; each of --threads workers (default 4) keeps a long-lived tree of its own,
// builds and drops temporary trees of depth 4..14 (alternately top-down and bottom-up), and
// every few iterations replaces a random subtree of its long-lived tree -- an old object now
// points to young ones, which is what an incremental collector's dirty bits must catch.
//
// Written with GC_THREADS: Boehm's <gc.h> then routes pthread_create through
// GC_pthread_create, so every worker is registered with the collector and its stack scanned.
//
// Verification: each worker checks every temporary tree and every replaced subtree node by
// node before dropping it, and at the end its long-lived tree and the shared tree; the main
// thread checks the shared tree once more after joining them all. Tags (per thread) make a
// node reused by another thread's tree show.
#define GC_THREADS
#include <gc.h>
#include <pthread.h>

#include <cstring>
#include <vector>

#include "gcwl.h"
#include "trees.h"

namespace {

using gcwl::Context;
using gcwl::TreeNode;
using gcwl::tree_nodes;

struct Params {
  int shared_depth, long_lived_depth, min_depth, max_depth, subtree_depth;
  int64_t iterations, replace_every;
};

Params params(const Context &ctx) {
  if (ctx.size == gcwl::Size::kQuick) return {12, 12, 4, 10, 6, 160, 4};
  return {16, 16, 4, 14, 8, 1200, 8};
}

uint64_t live_bytes(const Context &ctx) {
  Params p = params(ctx);
  uint64_t per_thread = tree_nodes(p.long_lived_depth) + tree_nodes(p.max_depth) + tree_nodes(p.subtree_depth);
  return (tree_nodes(p.shared_depth) + uint64_t(ctx.threads) * per_thread) * sizeof(TreeNode);
}

constexpr int kSharedTag = 7;

struct Job {
  Context *ctx;
  Params p;
  int index;
  TreeNode *shared;  // also held by the main thread's stack while workers run
  uint64_t checksum;
};

// Replaces one random subtree of depth p.subtree_depth in `tree`; checks and drops the old.
// The path down is checked too: a damaged node must fail the run, not crash it.
bool replace_subtree(Context &ctx, const Params &p, TreeNode *tree, int tag, gcwl::Rng &rng) {
  TreeNode *parent = tree;
  for (int d = p.long_lived_depth;; --d) {
    if (!parent || parent->i != d || parent->j != tag)
      return ctx.fail("long-lived tree: damaged node at depth %d on the way to a subtree", d);
    if (d == p.subtree_depth + 1) break;
    parent = (rng.next() & 1) ? parent->left : parent->right;
  }
  TreeNode **slot = (rng.next() & 1) ? &parent->left : &parent->right;
  TreeNode *old = *slot;
  *slot = gcwl::make_tree(p.subtree_depth, tag);
  return gcwl::verify_tree(ctx, "replaced subtree", old, p.subtree_depth, tag, true);
}

void *worker(void *arg) {
  Job &job = *static_cast<Job *>(arg);
  Context &ctx = *job.ctx;
  const Params &p = job.p;
  const int tag = 100 + job.index;
  gcwl::Rng rng(gcwl::mix64(ctx.seed, uint64_t(job.index)));
  uint64_t sum = 0;

  TreeNode *long_lived = gcwl::make_tree(p.long_lived_depth, tag);
  const int depths = (p.max_depth - p.min_depth) / 2 + 1;
  for (int64_t it = 0; it < p.iterations && !ctx.failed(); ++it) {
    int d = p.min_depth + 2 * int(it % depths);
    TreeNode *t;
    if (it & 1) {
      t = gcwl::make_tree(d, tag);
    } else {
      t = gcwl::new_tree_node(0, 0, nullptr, nullptr);
      gcwl::populate_tree(t, d, tag);
    }
    if (!gcwl::verify_tree(ctx, "temporary tree", t, d, tag, true)) return nullptr;
    sum = gcwl::mix64(sum, tree_nodes(d));
    if (it % p.replace_every == 0 && !replace_subtree(ctx, p, long_lived, tag, rng)) return nullptr;
    if (ctx.inject_fault && job.index == 0 && it == p.iterations / 2)
      gcwl::clobber_live_object(long_lived->left->left, sizeof(TreeNode));
  }
  if (!gcwl::verify_tree(ctx, "long-lived tree", long_lived, p.long_lived_depth, tag, true)) return nullptr;
  if (!gcwl::verify_tree(ctx, "shared tree (in a worker)", job.shared, p.shared_depth, kSharedTag, false))
    return nullptr;
  job.checksum = sum;
  return nullptr;
}

bool run(Context &ctx) {
  Params p = params(ctx);
  ctx.param("shared_depth", p.shared_depth);
  ctx.param("long_lived_depth", p.long_lived_depth);
  ctx.param("min_depth", p.min_depth);
  ctx.param("max_depth", p.max_depth);
  ctx.param("subtree_depth", p.subtree_depth);
  ctx.param("iterations_per_thread", p.iterations);
  ctx.param("replace_every", p.replace_every);

  TreeNode *shared = gcwl::make_tree(p.shared_depth, kSharedTag);
  std::vector<Job> jobs(size_t(ctx.threads));
  std::vector<pthread_t> threads(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    jobs[i] = Job{&ctx, p, int(i), shared, 0};
    int err = pthread_create(&threads[i], nullptr, worker, &jobs[i]);
    if (err) {
      ctx.fail("pthread_create: %s", strerror(err));
      threads.resize(i);
      break;
    }
  }
  for (pthread_t t : threads) pthread_join(t, nullptr);
  if (ctx.failed()) return false;
  if (!gcwl::verify_tree(ctx, "shared tree", shared, p.shared_depth, kSharedTag, true)) return false;
  uint64_t sum = 0;
  for (const Job &j : jobs) sum = gcwl::mix64(sum, j.checksum);
  ctx.set_checksum(sum);
  return true;
}

}  // namespace

int main(int argc, char **argv) {
  static const gcwl::Workload w{"mt-trees", "mt-trees: worker threads with long-lived and temporary trees",
                                true, live_bytes, run};
  return gcwl::main_with(w, argc, argv);
}
