// Finalization and weak references as Boehm documents them: finalizer order, the four
// registration flavours, on-demand finalization, disappearing and long links.
#include "bdw_test_util.h"

using namespace bdwtest;

namespace {

struct Obj {
  Obj *ref;
  Obj *self;
  GC_word tag;
};

std::vector<std::string> &log() {
  static std::vector<std::string> l;
  return l;
}

void GC_CALLBACK record(void *obj, void *cd) {
  log().push_back(std::string(static_cast<const char *>(cd)) + ":" + std::to_string(static_cast<Obj *>(obj)->tag));
}

Obj *make(GC_word tag) {
  auto *o = GC_NEW(Obj);
  o->tag = tag;
  return o;
}

using Register = void (*)(void *, GC_finalization_proc, void *, GC_finalization_proc *, void **);

SETUP two_linked(Register ra, Register rb) {
  Obj *a = make(1), *b = make(2);
  a->ref = b;
  static char na[] = "a", nb[] = "b";
  ra(a, record, na, nullptr, nullptr);
  rb(b, record, nb, nullptr, nullptr);
}

}  // namespace

TEST(BdwFinalize, OrderedReferrerIsFinalizedFirst) {
  GC_INIT();
  two_linked(GC_register_finalizer, GC_register_finalizer);
  collect_clean();
  ASSERT_EQ(log().size(), 1u);  // GC_gcollect ran the ready finalizers
  EXPECT_EQ(log()[0], "a:1");
  collect_clean();
  ASSERT_EQ(log().size(), 2u);
  EXPECT_EQ(log()[1], "b:2");
}

TEST(BdwFinalize, NoOrderFinalizesBothAtOnce) {
  GC_INIT();
  two_linked(GC_register_finalizer_no_order, GC_register_finalizer_no_order);
  collect_clean();
  EXPECT_EQ(log().size(), 2u);
}

namespace {
SETUP self_cycle(Register r) {
  Obj *a = make(7);
  a->self = a;
  static char n[] = "self";
  r(a, record, n, nullptr, nullptr);
}
}  // namespace

TEST(BdwFinalize, SelfCyclesBlockOrderedButNotIgnoreSelf) {
  GC_INIT();
  self_cycle(GC_register_finalizer);
  for (int i = 0; i < 3; i++) collect_clean();
  EXPECT_TRUE(log().empty()) << "an object reachable from itself was finalized";
  self_cycle(GC_register_finalizer_ignore_self);
  collect_clean();
  ASSERT_EQ(log().size(), 1u);
  EXPECT_EQ(log()[0], "self:7");
}

TEST(BdwFinalize, UnreachableWaitsForTheNoOrderFinalizerThatReachesIt) {
  GC_INIT();
  ASSERT_TRUE(GC_get_java_finalization());
  // a (no order) reaches b (unreachable): a's finalizer may still use b, so b is
  // finalized only once a's has run and nothing reaches b any more.
  two_linked(GC_register_finalizer_no_order, GC_register_finalizer_unreachable);
  collect_clean();
  ASSERT_EQ(log().size(), 1u);
  EXPECT_EQ(log()[0], "a:1");
  collect_clean();
  ASSERT_EQ(log().size(), 2u);
  EXPECT_EQ(log()[1], "b:2");
}

TEST(BdwFinalize, RegistrationReturnsThePreviousFinalizerAndZeroRemovesIt) {
  GC_INIT();
  Obj *o = make(3);
  static char first[] = "first", second[] = "second";
  GC_finalization_proc ofn = record;
  void *ocd = first;
  GC_REGISTER_FINALIZER(o, record, first, &ofn, &ocd);
  EXPECT_EQ(ofn, nullptr);
  EXPECT_EQ(ocd, nullptr);
  GC_REGISTER_FINALIZER(o, record, second, &ofn, &ocd);
  EXPECT_EQ(ofn, record);
  EXPECT_EQ(ocd, first);
  GC_REGISTER_FINALIZER(o, nullptr, nullptr, &ofn, &ocd);
  EXPECT_EQ(ocd, second);
  // Outside the heap: ignored, old values NULL.
  static int not_heap;
  GC_REGISTER_FINALIZER(&not_heap, record, first, &ofn, &ocd);
  EXPECT_EQ(ofn, nullptr);
  EXPECT_EQ(ocd, nullptr);
  o = nullptr;
  collect_clean();
  EXPECT_TRUE(log().empty());
}

namespace {
int notified;
void GC_CALLBACK notify() { notified++; }
std::vector<void *> awaited;
void GC_CALLBACK await(void *obj) { awaited.push_back(obj); }
SETUP one_finalizable(GC_word tag) {
  static char n[] = "fin";
  GC_REGISTER_FINALIZER(make(tag), record, n, nullptr, nullptr);
}
}  // namespace

TEST(BdwFinalize, OnDemandWaitsForInvokeFinalizersAndNotifies) {
  GC_INIT();
  GC_set_finalize_on_demand(1);
  GC_set_finalizer_notifier(notify);
  GC_set_await_finalize_proc(await);
  one_finalizable(5);
  collect_clean();
  EXPECT_TRUE(log().empty());
  EXPECT_TRUE(GC_should_invoke_finalizers());
  EXPECT_EQ(notified, 1);
  EXPECT_EQ(awaited.size(), 1u);
  EXPECT_EQ(GC_invoke_finalizers(), 1);
  ASSERT_EQ(log().size(), 1u);
  EXPECT_EQ(log()[0], "fin:5");
  EXPECT_FALSE(GC_should_invoke_finalizers());
}

TEST(BdwFinalize, DirectlyAssignedFinalizeOnDemandIsHonoured) {
  GC_INIT();
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  GC_finalize_on_demand = 1;  // old clients assign the variable
#pragma GCC diagnostic pop
  one_finalizable(6);
  collect_clean();
  EXPECT_TRUE(log().empty());
  EXPECT_EQ(GC_invoke_finalizers(), 1);
}

TEST(BdwFinalize, FinalizeAllRunsEvenReachableObjects) {
  GC_INIT();
  static Obj *kept;
  kept = make(9);
  static char n[] = "all";
  GC_REGISTER_FINALIZER(kept, record, n, nullptr, nullptr);
  GC_finalize_all();
  ASSERT_EQ(log().size(), 1u);
  EXPECT_EQ(log()[0], "all:9");
}

namespace {
SETUP data_object(Watch &w) {
  Obj *o = make(4);
  Obj *data = make(44);
  w.watch(0, data);
  GC_REGISTER_FINALIZER(o, [](void *, void *cd) { log().push_back(std::to_string(static_cast<Obj *>(cd)->tag)); },
                        data, nullptr, nullptr);
}
}  // namespace

TEST(BdwFinalize, ClientDataStaysAliveUntilTheFinalizerRan) {
  GC_INIT();
  Watch w(1);
  data_object(w);
  collect_clean();
  ASSERT_EQ(log().size(), 1u);
  EXPECT_EQ(log()[0], "44");
  collect_clean();
  EXPECT_FALSE(w.alive(0));
}

// ---------------------------------------------------------------- links

namespace {
SETUP linked(Watch &w, Obj **root) {
  Obj *dies = make(1), *lives = make(2);
  w.watch(0, dies);
  w.watch(1, lives);
  *root = lives;
}
}  // namespace

TEST(BdwLinks, DisappearingLinksAreClearedWhenTheTargetDies) {
  GC_INIT();
  static Obj *root;
  Watch w(2);
  linked(w, &root);
  collect_clean();
  EXPECT_FALSE(w.alive(0));
  EXPECT_TRUE(w.alive(1));
  EXPECT_EQ(GC_unregister_disappearing_link(w.slot(1)), 1);
  EXPECT_EQ(GC_unregister_disappearing_link(w.slot(1)), 0);
}

TEST(BdwLinks, DuplicateAndMoveFollowBoehmsCodes) {
  GC_INIT();
  static void *slots[3];
  Obj *a = make(1), *b = make(2);
  EXPECT_EQ(GC_general_register_disappearing_link(&slots[0], a), GC_SUCCESS);
  EXPECT_EQ(GC_general_register_disappearing_link(&slots[0], b), GC_DUPLICATE);
  EXPECT_EQ(GC_move_disappearing_link(&slots[0], &slots[1]), GC_SUCCESS);
  EXPECT_EQ(GC_move_disappearing_link(&slots[0], &slots[2]), GC_NOT_FOUND);
  EXPECT_EQ(GC_general_register_disappearing_link(&slots[2], a), GC_SUCCESS);
  EXPECT_EQ(GC_move_disappearing_link(&slots[1], &slots[2]), GC_DUPLICATE);
  EXPECT_EQ(GC_move_disappearing_link(&slots[1], &slots[1]), GC_SUCCESS);
  EXPECT_EQ(GC_unregister_disappearing_link(&slots[1]), 1);
  // A link inside a heap object, cleared with it (GC_register_disappearing_link).
  auto *holder = static_cast<void **>(GC_MALLOC(2 * sizeof(void *)));
  EXPECT_EQ(GC_register_disappearing_link(&holder[1]), GC_SUCCESS);
  EXPECT_EQ(GC_register_disappearing_link(&holder[1]), GC_DUPLICATE);
  GC_reachable_here(a);
  GC_reachable_here(b);
}

namespace {
// The target is kept for an unordered finalizer that may revive it: the short link goes
// at once, the long one only once the object is truly gone.
SETUP revivable(void **short_link, void **long_link) {
  Obj *o = make(8);
  *short_link = *long_link = o;
  EXPECT_EQ(GC_general_register_disappearing_link(short_link, o), GC_SUCCESS);
  EXPECT_EQ(GC_register_long_link(long_link, o), GC_SUCCESS);
  static char n[] = "revivable";
  GC_REGISTER_FINALIZER_NO_ORDER(o, record, n, nullptr, nullptr);
}
}  // namespace

TEST(BdwLinks, LongLinksOutliveFinalization) {
  GC_INIT();
  auto **slots = static_cast<void **>(calloc(2, sizeof(void *)));  // not scanned
  revivable(&slots[0], &slots[1]);
  collect_clean();
  EXPECT_EQ(slots[0], nullptr) << "short link kept";
  EXPECT_NE(slots[1], nullptr) << "long link cleared while the finalizer could still revive the object";
  ASSERT_EQ(log().size(), 1u);
  collect_clean();
  EXPECT_EQ(slots[1], nullptr) << "long link kept after the object died";
  EXPECT_EQ(GC_unregister_long_link(&slots[1]), 0);
  free(slots);
}
