// The rest of Boehm's API: collection events, warnings, out of memory at the heap limit,
// settings and the variables behind them, roots, heap figures, debugging aids, and the
// calls dunegc cannot honour (each must say so through the warn proc).
#include <dlfcn.h>
#include <signal.h>
#include <unistd.h>

#include "bdw_test_util.h"

using namespace bdwtest;

extern "C" {  // gc_gcj.h, gc_disclaim.h, gc_mark.h, javaxfc.h
void *GC_gcj_malloc(size_t, void *);
void *GC_finalized_malloc(size_t, const void *);
int GC_is_marked(const void *);
void GC_enumerate_reachable_objects_inner(void (*)(void *, size_t, void *), void *);
void GC_suspend_thread(pthread_t);
int GC_is_tmp_root(void *);
}

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // the variables are under test

namespace {

std::vector<int> &events() {
  static std::vector<int> e;
  return e;
}
void GC_CALLBACK on_event(GC_EventType e) { events().push_back(int(e)); }
int starts;
void on_start() { starts++; }

}  // namespace

TEST(BdwApi, CollectionEventsComeInBoehmsOrder) {
  GC_INIT();
  GC_set_on_collection_event(on_event);
  GC_set_start_callback(on_start);
  EXPECT_EQ(GC_get_on_collection_event(), on_event);
  GC_word before = GC_get_gc_no();
  GC_gcollect();
  EXPECT_EQ(GC_get_gc_no(), before + 1);
  EXPECT_EQ(GC_gc_no, before + 1);
  std::vector<int> want = {GC_EVENT_START,          GC_EVENT_PRE_STOP_WORLD, GC_EVENT_POST_STOP_WORLD,
                           GC_EVENT_MARK_START,     GC_EVENT_MARK_END,       GC_EVENT_PRE_START_WORLD,
                           GC_EVENT_POST_START_WORLD, GC_EVENT_RECLAIM_START, GC_EVENT_RECLAIM_END,
                           GC_EVENT_END};
  EXPECT_EQ(events(), want);
  EXPECT_EQ(starts, 1);
  GC_start_performance_measurement();
  GC_gcollect();
  EXPECT_LT(GC_get_full_gc_total_time(), 1000u);
}

TEST(BdwApi, WarningsReachTheWarnProcWithPercentEscaped) {
  setenv("GC_INITIAL_HEAP_SIZE", "1%", 1);
  capture_warnings();  // before GC_init: its own warnings arrive too
  GC_INIT();
  EXPECT_TRUE(warned("GC Warning: dunegc: ignoring GC_INITIAL_HEAP_SIZE=1%: not a size")) << warnings().size();
  EXPECT_EQ(GC_get_warn_proc(), record_warning);
  GC_set_warn_proc(GC_ignore_warn_proc);
  GC_enable_incremental();  // a warning nobody sees
  EXPECT_EQ(warnings().size(), 1u);
}

namespace {
size_t oom_calls, oom_bytes;
void *GC_CALLBACK count_oom(size_t bytes) {
  oom_calls++;
  oom_bytes = bytes;
  return nullptr;
}
void *spare;
void *GC_CALLBACK give_spare(size_t) { return spare; }
void *keep[64];
}  // namespace

TEST(BdwApi, OomFnIsCalledAtTheHeapMaximum) {
  GC_INIT();
  GC_set_max_heap_size(16 << 20);
  GC_set_oom_fn(count_oom);
  EXPECT_EQ(GC_get_oom_fn(), count_oom);
  size_t i = 0;
  for (; i < 64; i++)
    if (!(keep[i] = GC_MALLOC_ATOMIC(1 << 20))) break;
  EXPECT_LT(i, 20u);
  EXPECT_EQ(oom_calls, 1u);
  EXPECT_EQ(oom_bytes, size_t{1} << 20);
  EXPECT_LE(GC_get_heap_size(), size_t{16} << 20);
  spare = keep[0];
  GC_set_oom_fn(give_spare);
  EXPECT_EQ(GC_MALLOC_ATOMIC(1 << 20), spare);  // what the oom fn returns is returned
}

TEST(BdwApi, MaxRetriesCollectsMoreBeforeGivingUp) {
  GC_INIT();
  GC_set_max_heap_size(8 << 20);
  GC_set_oom_fn(count_oom);
  static void *hold[16];
  for (auto &h : hold) h = GC_MALLOC_ATOMIC(1 << 20);
  GC_word n0 = GC_get_gc_no();
  ASSERT_EQ(GC_MALLOC_ATOMIC(1 << 20), nullptr);
  GC_word once = GC_get_gc_no() - n0;
  GC_set_max_retries(2);
  EXPECT_EQ(GC_get_max_retries(), 2u);
  n0 = GC_get_gc_no();
  ASSERT_EQ(GC_MALLOC_ATOMIC(1 << 20), nullptr);
  EXPECT_EQ(GC_get_gc_no() - n0, once + 2);
}

TEST(BdwApi, DisablingCollectionNestsAndHonoursTheVariable) {
  GC_INIT();
  GC_word n0 = GC_get_gc_no();
  GC_disable();
  GC_disable();
  EXPECT_TRUE(GC_is_disabled());
  GC_gcollect();
  GC_enable();
  GC_gcollect();
  EXPECT_EQ(GC_get_gc_no(), n0);
  GC_enable();
  EXPECT_FALSE(GC_is_disabled());
  GC_gcollect();
  EXPECT_EQ(GC_get_gc_no(), n0 + 1);
  GC_dont_gc = 1;  // direct assignment, as old clients do
  GC_gcollect();
  EXPECT_EQ(GC_get_gc_no(), n0 + 1);
  GC_dont_gc = 0;
  capture_warnings();
  GC_enable();
  EXPECT_TRUE(warned("more often than GC_disable"));
}

TEST(BdwApi, AutomaticCollectionCanBeTurnedOff) {
  GC_INIT();
  GC_set_disable_automatic_collection(1);
  EXPECT_TRUE(GC_get_disable_automatic_collection());
  GC_word n0 = GC_get_gc_no();
  for (int i = 0; i < 100000; i++) GC_MALLOC(128);  // 12 MiB of garbage
  EXPECT_EQ(GC_get_gc_no(), n0);
  GC_gcollect();
  EXPECT_EQ(GC_get_gc_no(), n0 + 1);
}

// ---------------------------------------------------------------- roots

namespace {
SETUP store(void **slot, Watch &w, size_t i) {
  *slot = GC_MALLOC(64);
  w.watch(i, *slot);
}
void *static_slot;
}  // namespace

TEST(BdwApi, AddedRootsKeepObjectsUntilRemoved) {
  GC_INIT();
  auto **buf = static_cast<void **>(calloc(4, sizeof(void *)));  // malloc memory: not scanned
  Watch w(2);
  GC_add_roots(buf, buf + 4);
  store(&buf[2], w, 0);
  collect_clean();
  EXPECT_TRUE(w.alive(0));
  GC_remove_roots(buf, buf + 4);
  collect_clean();
  EXPECT_FALSE(w.alive(0));
  GC_add_roots(buf, buf + 4);
  store(&buf[1], w, 1);
  GC_clear_roots();
  collect_clean();
  EXPECT_FALSE(w.alive(1));
  free(buf);
}

TEST(BdwApi, ExcludedStaticRootsAreNotScanned) {
  GC_INIT();
  Watch w(2);
  GC_exclude_static_roots(&static_slot, &static_slot + 1);
  store(&static_slot, w, 0);
  collect_clean();
  EXPECT_FALSE(w.alive(0));
  GC_clear_exclusion_table();
  store(&static_slot, w, 1);
  collect_clean();
  EXPECT_TRUE(w.alive(1));
}

namespace {
std::vector<std::string> &libraries() {
  static std::vector<std::string> l;
  return l;
}
int GC_CALLBACK skip_test_dso(const char *name, void *, size_t) {
  libraries().emplace_back(name);
  return strstr(name, "gc_test_dso") == nullptr;
}
}  // namespace

TEST(BdwApi, LibraryDataFollowsNoDlsAndTheStaticRootsCallback) {
  GC_INIT();
  void *h = GC_dlopen(TEST_DSO_PATH, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(h, nullptr) << dlerror();
  auto **slot = static_cast<void **>(dlsym(h, "dunegc_test_dso_slot"));
  ASSERT_NE(slot, nullptr);
  Watch w(3);
  store(slot, w, 0);
  collect_clean();
  EXPECT_TRUE(w.alive(0));
  EXPECT_EQ(GC_is_tmp_root(slot), 1);
  GC_no_dls = 1;  // direct assignment: read at the next collection
  collect_clean();
  EXPECT_FALSE(w.alive(0));
  GC_set_no_dls(0);
  EXPECT_EQ(GC_get_no_dls(), 0);
  store(slot, w, 1);
  GC_register_has_static_roots_callback(skip_test_dso);
  collect_clean();
  EXPECT_FALSE(w.alive(1));
  bool saw = false;
  for (auto &l : libraries()) saw = saw || l.find("gc_test_dso") != std::string::npos;
  EXPECT_TRUE(saw);
  GC_register_has_static_roots_callback(nullptr);
  store(slot, w, 2);
  collect_clean();
  EXPECT_TRUE(w.alive(2));
  *slot = nullptr;
}

// ---------------------------------------------------------------- heap figures

TEST(BdwApi, HeapFiguresAddUp) {
  GC_INIT();
  size_t total0 = GC_get_total_bytes();
  static void *big;
  GC_disable();  // no collection while the figures are read
  big = GC_MALLOC(4 << 20);
  ASSERT_NE(big, nullptr);
  for (int i = 0; i < 10000; i++) GC_MALLOC(100);
  EXPECT_GE(GC_get_total_bytes(), total0 + (5 << 20));
  EXPECT_GE(GC_get_bytes_since_gc(), size_t{4} << 20);
  size_t heap = GC_get_heap_size();
  EXPECT_GE(heap, size_t{5} << 20);
  EXPECT_LE(GC_get_free_bytes(), heap);
  EXPECT_GE(GC_get_obtained_from_os_bytes(), heap);
  GC_enable();
  GC_gcollect();
  EXPECT_LT(GC_get_bytes_since_gc(), size_t{1} << 20);
  GC_word h, f, u, s, t;
  GC_get_heap_usage_safe(&h, &f, &u, &s, &t);
  EXPECT_EQ(h, GC_get_heap_size());
  EXPECT_EQ(t, GC_get_total_bytes());
  GC_prof_stats_s ps;
  EXPECT_EQ(GC_get_prof_stats(&ps, sizeof ps), sizeof ps);
  EXPECT_EQ(ps.gc_no, GC_get_gc_no());
  EXPECT_EQ(ps.heapsize_full, h + u);
  EXPECT_EQ(ps.markers_m1, GC_word(GC_get_parallel()));
  EXPECT_EQ(GC_get_prof_stats_unsafe(&ps, sizeof ps), sizeof ps);
  EXPECT_TRUE(GC_expand_hp(32 << 20));
  EXPECT_GE(GC_get_heap_size(), heap + (size_t{32} << 20));
  big = nullptr;
  GC_gcollect_and_unmap();
  EXPECT_GT(GC_get_unmapped_bytes(), 0u);
}

namespace {
std::vector<GC_word> &resizes() {
  static std::vector<GC_word> r;
  return r;
}
}  // namespace

TEST(BdwApi, HeapResizeProcSeesEveryNewSize) {
  GC_INIT();
  GC_set_on_heap_resize([](GC_word bytes) { resizes().push_back(bytes); });
  ASSERT_TRUE(GC_expand_hp(8 << 20));
  ASSERT_FALSE(resizes().empty());
  EXPECT_EQ(resizes().back(), GC_get_heap_size());
  static void *big;
  big = GC_MALLOC(64 << 20);
  ASSERT_NE(big, nullptr);
  EXPECT_GE(resizes().back(), GC_word{64} << 20);
}

TEST(BdwApi, CollectALittleSweepsTheRest) {
  GC_INIT();
  for (int i = 0; i < 200000; i++) GC_MALLOC(48);
  GC_gcollect();
  int steps = 0;
  while (GC_collect_a_little()) steps++;
  EXPECT_GT(steps, 0);
  EXPECT_EQ(GC_collect_a_little(), 0);
}

// ---------------------------------------------------------------- debugging aids

namespace {
int bad_pairs, invisible;
void GC_CALLBACK on_bad_pair(void *, void *) { bad_pairs++; }
void GC_CALLBACK on_invisible(void *) { invisible++; }
}  // namespace

TEST(BdwApi, PointerChecksCallTheirPrintProcs) {
  GC_INIT();
  GC_same_obj_print_proc = on_bad_pair;
  GC_is_visible_print_proc = on_invisible;
  auto *a = static_cast<char *>(GC_MALLOC(64));
  auto *b = static_cast<char *>(GC_MALLOC(64));
  EXPECT_EQ(GC_same_obj(a + 8, a), a + 8);
  EXPECT_EQ(bad_pairs, 0);
  GC_same_obj(b, a);
  EXPECT_EQ(bad_pairs, 1);
  void *p = a;
  EXPECT_EQ(GC_post_incr(&p, 16), a);
  EXPECT_EQ(GC_pre_incr(&p, 16), a + 32);
  EXPECT_EQ(bad_pairs, 1);
  GC_is_visible(a + 8);     // a word of a scanned object
  GC_is_visible(&static_slot);  // a data segment
  EXPECT_EQ(invisible, 0);
  auto *atomic = static_cast<char *>(GC_MALLOC_ATOMIC(64));
  GC_is_visible(atomic + 8);  // never scanned
  EXPECT_EQ(invisible, 1);
  EXPECT_EQ(GC_is_valid_displacement(a + 20), a + 20);
}

TEST(BdwApi, DumpsGoToTheLogFd) {
  GC_INIT();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  GC_set_log_fd(fds[1]);
  GC_REGISTER_FINALIZER(GC_MALLOC(16), [](void *, void *) {}, nullptr, nullptr, nullptr);
  GC_dump();
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, size_t(n));
  close(fds[0]);
  EXPECT_NE(out.find("***GC Dump collection #"), std::string::npos) << out;
  EXPECT_NE(out.find("collections"), std::string::npos) << out;
  EXPECT_NE(out.find("1 finalizers registered"), std::string::npos) << out;
}

TEST(BdwApiDeathTest, AbortOnOomExitsThroughTheAbortFunc) {
  EXPECT_EXIT(
      {
        GC_INIT();
        GC_set_abort_func([](const char *msg) { fprintf(stderr, "abort func(%s)\n", msg ? msg : "NULL"); });
        GC_abort_on_oom();
      },
      testing::ExitedWithCode(1), "Insufficient memory for the allocation\n.*abort func\\(NULL\\)");
}

TEST(BdwApiDeathTest, FatalErrorsGoThroughTheAbortFunc) {
  EXPECT_DEATH(
      {
        GC_INIT();
        GC_set_abort_func([](const char *msg) { fprintf(stderr, "abort func got: %s\n", msg); });
        GC_same_obj(GC_MALLOC(16), GC_MALLOC(16));  // the default print proc is fatal
      },
      "abort func got: GC_same_obj: .* are in different objects");
}

// ---------------------------------------------------------------- what dunegc cannot honour

TEST(BdwApi, WhatCannotBeHonouredSaysSo) {
  GC_INIT();
  struct Case {
    const char *name;
    void (*call)();
    const char *needle;
  };
  static const Case cases[] = {
      {"incremental", [] { GC_enable_incremental(); }, "stop-the-world only"},
      {"find leak", [] { GC_set_find_leak(1); }, "no leak-finding mode"},
      {"dont expand", [] { GC_set_dont_expand(1); }, "GC_dont_expand"},
      {"executable", [] { GC_set_pages_executable(1); }, "never executable"},
      {"non gc bytes", [] { GC_set_non_gc_bytes(12); }, "GC_set_non_gc_bytes"},
      {"finalizer pacing", [] { GC_set_allocd_bytes_per_finalizer(5); }, "does not count finalizers"},
      {"stop func", [] { GC_set_stop_func([]() -> int { return 0; }); }, "explicit collections only"},
      {"interior pointers", [] { GC_set_all_interior_pointers(0); }, "fixes interior-pointer recognition"},
      {"thread events", [] { GC_set_on_thread_event([](GC_EventType, void *) {}); }, "per-thread"},
      {"suspend signal", [] { GC_set_suspend_signal(SIGUSR1); }, "SIGPWR"},
      {"restart signal", [] { GC_set_thr_restart_signal(SIGUSR2); }, "without a signal"},
      {"suspend thread", [] { GC_suspend_thread(pthread_self()); }, "cannot suspend"},
      {"toggle refs", [] { EXPECT_EQ(GC_toggleref_add(GC_MALLOC(8), 1), GC_UNIMPLEMENTED); }, "toggle references"},
      {"custom kind", [] { EXPECT_EQ(GC_generic_malloc(16, int(GC_new_kind(nullptr, 0, 0, 1))), nullptr); },
       "custom object kinds"},
      {"mark bits", [] { EXPECT_EQ(GC_is_marked(GC_MALLOC(8)), 0); }, "custom object kinds"},
      {"enumerate", [] { GC_enumerate_reachable_objects_inner([](void *, size_t, void *) {}, nullptr); },
       "not supported"},
      {"gcj", [] { EXPECT_EQ(GC_gcj_malloc(16, nullptr), nullptr); }, "gcj"},
      {"disclaim", [] { EXPECT_EQ(GC_finalized_malloc(16, nullptr), nullptr); }, "disclaim"},
  };
  for (const Case &c : cases) {
    capture_warnings();
    c.call();
    EXPECT_TRUE(warned(c.needle)) << c.name << ": " << (warnings().empty() ? "no warning" : warnings()[0]);
  }
  EXPECT_EQ(GC_is_incremental_mode(), 0);
  EXPECT_EQ(GC_incremental_protection_needs(), GC_PROTECTS_NONE);
}
