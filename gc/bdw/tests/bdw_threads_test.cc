// Threads under GC_THREADS: pthread_create redirected to GC_pthread_create, explicit
// registration with GC_register_my_thread, stacks scanned while other threads collect.
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>

#include "bdw_test_util.h"

using namespace bdwtest;

namespace {

struct Node {
  Node *next;
  GC_word value;
};

// A list held only by this thread's stack (and registers), checked after the main thread
// has collected many times: if the stack were not scanned, the nodes would be reused.
std::atomic<int> phase{0};

__attribute__((noinline)) GC_word build_and_check() {
  Node *head = nullptr;
  for (GC_word i = 0; i < 20000; i++) {
    Node *n = GC_NEW(Node);
    n->value = i;
    n->next = head;
    head = n;
  }
  phase.store(1);
  while (phase.load() != 2) sched_yield();  // the main thread collects meanwhile
  GC_word sum = 0, expect = 20000;
  for (Node *n = head; n; n = n->next) {
    expect--;
    if (n->value != expect) return GC_word(-1);
    sum += n->value;
    n->value = ~GC_word(0);  // a reused node would show this in a later allocation
  }
  return sum;
}

void *worker(void *) { return reinterpret_cast<void *>(build_and_check()); }

void collect_while_waiting() {
  while (phase.load() != 1) sched_yield();
  GC_word before = GC_get_gc_no();
  for (int i = 0; i < 5; i++) {
    for (int k = 0; k < 20000; k++) GC_MALLOC(64);  // garbage that would recycle lost nodes
    GC_gcollect();
  }
  EXPECT_GE(GC_get_gc_no(), before + 5);
  phase.store(2);
}

constexpr GC_word kSum = GC_word(20000) * 19999 / 2;

}  // namespace

TEST(BdwThreads, PthreadCreateIsRedirectedAndTheThreadScanned) {
  GC_INIT();
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, nullptr, worker, nullptr), 0);  // GC_pthread_create
  collect_while_waiting();
  void *ret;
  ASSERT_EQ(pthread_join(t, &ret), 0);  // GC_pthread_join
  EXPECT_EQ(reinterpret_cast<GC_word>(ret), kSum);
}

namespace {
std::atomic<int> registered_as{-1}, second_registration{-1}, is_registered{-1}, unregistered_as{-1};

void *raw_worker(void *) {
  GC_stack_base sb;
  if (GC_get_stack_base(&sb) != GC_SUCCESS) return nullptr;
  registered_as = GC_register_my_thread(&sb);
  second_registration = GC_register_my_thread(&sb);
  is_registered = GC_thread_is_registered();
  GC_word sum = build_and_check();
  unregistered_as = GC_unregister_my_thread();
  return reinterpret_cast<void *>(sum);
}
}  // namespace

#undef pthread_create  // a thread the collector does not create
#undef pthread_join

TEST(BdwThreads, RegisterMyThreadMakesAForeignThreadScanned) {
  GC_INIT();
  GC_allow_register_threads();
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, nullptr, raw_worker, nullptr), 0);
  collect_while_waiting();
  void *ret;
  ASSERT_EQ(pthread_join(t, &ret), 0);
  EXPECT_EQ(registered_as.load(), GC_SUCCESS);
  EXPECT_EQ(second_registration.load(), GC_DUPLICATE);
  EXPECT_EQ(is_registered.load(), 1);
  EXPECT_EQ(unregistered_as.load(), GC_SUCCESS);
  EXPECT_EQ(reinterpret_cast<GC_word>(ret), kSum);
}

TEST(BdwThreads, StackBasesAndActiveStates) {
  GC_INIT();
  EXPECT_TRUE(GC_thread_is_registered());  // GC_init registers the initialising thread
  GC_stack_base sb;
  ASSERT_EQ(GC_get_stack_base(&sb), GC_SUCCESS);
  int here;
  EXPECT_GT(sb.mem_base, static_cast<void *>(&here));
  GC_stack_base mine;
  EXPECT_NE(GC_get_my_stackbottom(&mine), nullptr);
  EXPECT_EQ(mine.mem_base, sb.mem_base);
  void *seen = GC_call_with_stack_base(
      [](GC_stack_base *b, void *) -> void * {
        int inner;
        return reinterpret_cast<char *>(b->mem_base) > reinterpret_cast<char *>(&inner) ? b->mem_base : nullptr;
      },
      nullptr);
  EXPECT_NE(seen, nullptr);
  EXPECT_EQ(GC_do_blocking([](void *a) -> void * { return a; }, &here), &here);
  EXPECT_EQ(GC_call_with_gc_active([](void *a) -> void * { return a; }, &here), &here);
  EXPECT_EQ(GC_call_with_alloc_lock([](void *a) -> void * { return a; }, &here), &here);
  GC_alloc_lock();
  GC_alloc_unlock();
}

TEST(BdwThreads, SigmaskNeverBlocksTheStopSignal) {
  GC_INIT();
  sigset_t all, now;
  sigfillset(&all);
  ASSERT_EQ(GC_pthread_sigmask(SIG_BLOCK, &all, nullptr), 0);
  pthread_sigmask(SIG_BLOCK, nullptr, &now);
  EXPECT_FALSE(sigismember(&now, GC_get_suspend_signal()));
  EXPECT_TRUE(sigismember(&now, SIGUSR1));
  ASSERT_EQ(GC_pthread_sigmask(SIG_UNBLOCK, &all, nullptr), 0);
}

TEST(BdwThreads, ExternalStopHoldsOtherThreads) {
  GC_INIT();
  static std::atomic<long> counter{0};
  static std::atomic<bool> stop{false};
  pthread_t t;
  ASSERT_EQ(GC_pthread_create(
                &t, nullptr,
                [](void *) -> void * {
                  while (!stop.load()) counter.fetch_add(1);
                  return nullptr;
                },
                nullptr),
            0);
  while (counter.load() == 0) sched_yield();
  GC_stop_world_external();
  long a = counter.load();
  usleep(20000);
  long b = counter.load();
  GC_start_world_external();
  EXPECT_EQ(a, b) << "a registered thread ran while the world was stopped";
  stop = true;
  GC_pthread_join(t, nullptr);
}
