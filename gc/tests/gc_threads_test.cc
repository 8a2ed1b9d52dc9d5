// Mutator threads: roots held only in the registers, or only on the stacks, of 8 stopped
// threads; registration by wrapper, by hand with a stack base, automatic unregistration,
// and allocation from threads that never registered.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <vector>

#include "dunegc/dunegc.hpp"
#include "gc_test_util.h"

using namespace gctest;

namespace {

constexpr int kThreads = 8;
constexpr int kNodes = 500;

struct Node {
  Node *next;
  uint64_t value[3];
};

uint64_t node_value(int thread, int i, int k) { return uint64_t(thread) << 40 | uint64_t(i) << 8 | uint64_t(k); }

// Builds a list and returns it hidden: no copy of a real pointer to it survives here.
__attribute__((noinline)) uintptr_t build_list(int thread) {
  Node *head = nullptr;
  for (int i = 0; i < kNodes; i++) {
    auto *n = static_cast<Node *>(dunegc_malloc(sizeof(Node)));
    n->next = head;
    for (int k = 0; k < 3; k++) n->value[k] = node_value(thread, i, k);
    head = n;
  }
  return hide(head);
}

// 0 when the list is whole; otherwise the index of the first bad node + 1.
int check_list(const Node *n, int thread) {
  for (int i = kNodes - 1; i >= 0; i--, n = n->next) {
    if (!n) return kNodes - i;
    for (int k = 0; k < 3; k++)
      if (n->value[k] != node_value(thread, i, k)) return kNodes - i;
  }
  return n == nullptr ? 0 : kNodes + 1;
}

// Holds the list head only in r12 (revealed from the hidden value inside the asm), says
// it is ready from inside the asm, and spins -- yielding -- until go is set.
__attribute__((noinline)) uintptr_t spin_holding_in_register(uintptr_t hidden, std::atomic<int> *ready,
                                                             std::atomic<int> *go) {
  uintptr_t out;
  asm volatile(
      "mov %[h], %%r12\n\t"
      "not %%r12\n\t"
      "lock incl (%[ready])\n\t"
      "1:\n\t"
      "mov $24, %%eax\n\t"  // sched_yield
      "syscall\n\t"
      "cmpl $0, (%[go])\n\t"
      "je 1b\n\t"
      "mov %%r12, %[out]\n\t"
      : [out] "=r"(out)
      : [h] "r"(hidden), [ready] "r"(ready), [go] "r"(go)
      : "r12", "rax", "rcx", "r11", "memory", "cc");
  return out;
}

// Holds the list head only in a stack slot `depth` frames down.
__attribute__((noinline)) int spin_holding_on_stack(int depth, int thread, uintptr_t hidden, std::atomic<int> *ready,
                                                    std::atomic<int> *go) {
  if (depth > 0) {
    int r = spin_holding_on_stack(depth - 1, thread, hidden, ready, go);
    asm volatile("" : : : "memory");  // no tail call: keep the frames
    return r;
  }
  volatile uintptr_t p = ~hidden;
  ready->fetch_add(1);
  while (!go->load()) sched_yield();
  return check_list(reinterpret_cast<const Node *>(p), thread);
}

struct Shared {
  std::atomic<int> ready{0}, go{0}, failures{0};
  bool use_registers;
};

struct ThreadArg {
  Shared *shared;
  int index;
};

void *holder_thread(void *p) {
  auto *a = static_cast<ThreadArg *>(p);
  uintptr_t hidden = build_list(a->index);
  clear_stack();
  int bad;
  if (a->shared->use_registers) {
    uintptr_t head = spin_holding_in_register(hidden, &a->shared->ready, &a->shared->go);
    bad = check_list(reinterpret_cast<const Node *>(head), a->index);
  } else {
    bad = spin_holding_on_stack(40, a->index, hidden, &a->shared->ready, &a->shared->go);
  }
  if (bad) a->shared->failures.fetch_add(1);
  return nullptr;
}

// While the holders wait, collect several times with garbage in between, so freed nodes
// would be poisoned (verify mode) and reused, and the holders would see it.
void run_holders(bool use_registers) {
  dunegc_options o;
  dunegc_options_init(&o);
  o.verify = 1;
  init_or_die(&o);
  Shared shared;
  shared.use_registers = use_registers;
  std::vector<ThreadArg> args(kThreads);
  std::vector<pthread_t> ts(kThreads);
  for (int i = 0; i < kThreads; i++) {
    args[i] = {&shared, i + 1};
    ASSERT_EQ(dunegc_pthread_create(&ts[i], nullptr, &holder_thread, &args[i]), 0);
  }
  while (shared.ready.load() < kThreads) sched_yield();
  uint64_t before = dunegc_collections();
  for (int round = 0; round < 5; round++) {
    for (int i = 0; i < 100000; i++) memset(dunegc_malloc(sizeof(Node)), 0xee, sizeof(Node));
    collect_clean();
  }
  EXPECT_GE(dunegc_collections() - before, 5u);
  shared.go.store(1);
  for (pthread_t t : ts) ASSERT_EQ(dunegc_pthread_join(t, nullptr), 0);
  EXPECT_EQ(shared.failures.load(), 0);
}

}  // namespace

TEST(Threads, RootsOnlyInRegistersOfEightStoppedThreads) { run_holders(true); }

TEST(Threads, RootsOnlyOnStacksOfEightStoppedThreads) { run_holders(false); }

TEST(Threads, RegisterByHandWithAStackBaseAndUnregister) {
  init_or_die();
  std::atomic<int> result{-1};
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, nullptr, [](void *p) -> void * {
    auto *res = static_cast<std::atomic<int> *>(p);
    void *base = nullptr;
    if (dunegc_get_stack_base(&base) != 0 || !base) return nullptr;
    if (dunegc_register_thread(reinterpret_cast<void *>(4096)) != -EINVAL) return nullptr;  // below sp
    if (dunegc_register_thread(base) != 0) return nullptr;
    if (dunegc_register_thread(base) != DUNEGC_DUPLICATE) return nullptr;
    if (!dunegc_thread_is_registered()) return nullptr;
    uintptr_t hidden = build_list(99);
    volatile uintptr_t head = ~hidden;  // on this registered thread's stack
    for (int i = 0; i < 5; i++) {
      for (int k = 0; k < 50000; k++) dunegc_malloc(64);
      collect_clean();
    }
    int bad = check_list(reinterpret_cast<const Node *>(head), 99);
    if (dunegc_unregister_thread() != 0 || dunegc_unregister_thread() != -EINVAL) bad = -2;
    res->store(bad);
    return nullptr;
  }, &result), 0);
  ASSERT_EQ(pthread_join(t, nullptr), 0);
  EXPECT_EQ(result.load(), 0);
  EXPECT_EQ(dunegc::stats().threads_registered, 1u);
}

TEST(Threads, ThreadsThatExitRegisteredAreUnregistered) {
  init_or_die();
  constexpr int kN = 6;
  pthread_t ts[kN];
  static int raw_flag;  // non-null argument: a raw pthread that registers itself
  for (int i = 0; i < kN; i++) {
    bool raw = i % 2 == 0;
    auto body = [](void *raw_flag) -> void * {
      if (raw_flag) dunegc_register_thread(nullptr);
      dunegc_malloc(100);
      if (!raw_flag) pthread_exit(nullptr);  // also leaves through the exit hook
      return nullptr;  // registered, never unregistered
    };
    if (raw) ASSERT_EQ(pthread_create(&ts[i], nullptr, body, &raw_flag), 0);
    else ASSERT_EQ(dunegc_pthread_create(&ts[i], nullptr, body, nullptr), 0);
  }
  for (pthread_t t : ts) ASSERT_EQ(dunegc_pthread_join(t, nullptr), 0);
  EXPECT_EQ(dunegc::stats().threads_registered, 1u);
  dunegc_collect();  // no record of a dead thread is left to signal
  EXPECT_EQ(dunegc::stats().threads_registered, 1u);
}

TEST(Threads, DetachedWrapperThreadsRunAndLeave) {
  init_or_die();
  static std::atomic<int> done{0};
  for (int i = 0; i < 4; i++) {
    pthread_t t;
    ASSERT_EQ(dunegc_pthread_create(&t, nullptr, [](void *) -> void * {
      for (int k = 0; k < 20000; k++) dunegc_malloc(48);
      done.fetch_add(1);
      return nullptr;
    }, nullptr), 0);
    ASSERT_EQ(dunegc_pthread_detach(t), 0);
  }
  while (done.load() < 4) sched_yield();
  for (int spins = 0; dunegc::stats().threads_registered != 1 && spins < 100000; spins++) sched_yield();
  EXPECT_EQ(dunegc::stats().threads_registered, 1u);
}

TEST(Threads, AllocationFromAnUnregisteredThreadWorksAndWarnsOnce) {
  init_or_die();
  capture_warnings();
  pthread_t t;
  static int ok;
  ASSERT_EQ(pthread_create(&t, nullptr, [](void *) -> void * {
    char *p = static_cast<char *>(dunegc_malloc(200));
    char *q = static_cast<char *>(dunegc_malloc(200));
    ok = p && q && p != q && dunegc_size(p) >= 200 && !dunegc_thread_is_registered();
    memset(p, 1, 200);
    ok = ok && dunegc_free(p) == 0;
    return nullptr;
  }, nullptr), 0);
  ASSERT_EQ(pthread_join(t, nullptr), 0);
  EXPECT_TRUE(ok);
  size_t n = 0;
  for (auto &w : warnings()) n += w.find("not registered") != std::string::npos;
  EXPECT_EQ(n, 1u);
}

TEST(Threads, AForkedChildCollectsWithoutItsParentsThreads) {
  init_or_die();
  static std::atomic<int> stop{0};
  pthread_t t;
  ASSERT_EQ(dunegc_pthread_create(&t, nullptr, [](void *) -> void * {
    while (!stop.load()) dunegc_malloc(64);  // keeps taking the collector's lock
    return nullptr;
  }, nullptr), 0);
  for (int i = 0; i < 5; i++) dunegc_collect();  // helpers started, registry holds two threads
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    volatile uintptr_t head = ~build_list(5);  // on this (the only) thread's stack
    for (int i = 0; i < 3; i++) {
      for (int k = 0; k < 100000; k++) memset(dunegc_malloc(sizeof(Node)), 0x55, sizeof(Node));
      dunegc_collect();
    }
    _exit(check_list(reinterpret_cast<const Node *>(head), 5) == 0 && dunegc::stats().threads_registered == 1 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  stop.store(1);
  ASSERT_EQ(dunegc_pthread_join(t, nullptr), 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}
