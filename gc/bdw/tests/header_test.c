/* Boehm-style C code using every macro of gc.h and gc_typed.h. Built against dunegc-bdw's
 * headers without GC_THREADS, with it, and with GC_DEBUG too, and once against Boehm's own
 * headers and libgc: the same source must compile cleanly (-Wall -Wextra -Werror) and run
 * on all of them. Exits non-zero on a wrong result. */
#include <gc.h>
#include <gc/gc_typed.h>
#include <stdio.h>
#include <string.h>

struct cell {
  struct cell *next;
  GC_word value;
};

static int finalized;
static void GC_CALLBACK count_finalization(void *obj, void *cd) {
  (void)obj;
  *(int *)cd += 1;
}

static __attribute__((noinline)) void drop_finalizable(void) {
  GC_REGISTER_FINALIZER(GC_MALLOC(32), count_finalization, &finalized, NULL, NULL);
  GC_REGISTER_FINALIZER_NO_ORDER(GC_MALLOC(32), count_finalization, &finalized, NULL, NULL);
  GC_REGISTER_FINALIZER_IGNORE_SELF(GC_MALLOC(32), count_finalization, &finalized, NULL, NULL);
}

static __attribute__((noinline)) void clear_stack(void) {
  volatile GC_word junk[4096];
  for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) junk[i] = 0;
}

#ifdef GC_THREADS
static void *thread_main(void *arg) {
  struct cell *c = GC_NEW(struct cell);
  c->value = 7;
  *(GC_word *)arg = c->value;
  return NULL;
}
#endif

int main(void) {
  int ok = 1;
  GC_INIT();
  struct cell *c = GC_NEW(struct cell);
  double *d = GC_NEW_ATOMIC(double);
  struct cell *u = GC_NEW_UNCOLLECTABLE(struct cell);
  char *s = GC_STRDUP("dunegc");
  char *s2 = GC_STRNDUP("dunegc", 4);
  void *big = GC_MALLOC_IGNORE_OFF_PAGE(100000);
  void *abig = GC_MALLOC_ATOMIC_IGNORE_OFF_PAGE(100000);
  void *au = GC_MALLOC_ATOMIC_UNCOLLECTABLE(64);
  ok &= c && d && u && big && abig && au && strcmp(s, "dunegc") == 0 && strcmp(s2, "dune") == 0;
  c->value = 11;
  c = GC_REALLOC(c, 4 * sizeof *c);
  ok &= c->value == 11;

  GC_word bm[GC_BITMAP_SIZE(struct cell)] = {0};
  GC_set_bit(bm, GC_WORD_OFFSET(struct cell, next));
  ok &= GC_get_bit(bm, 0) == 1 && GC_get_bit(bm, 1) == 0;
  GC_descr descr = GC_make_descriptor(bm, GC_WORD_LEN(struct cell));
  struct cell *t = GC_MALLOC_EXPLICITLY_TYPED(sizeof *t, descr);
  struct cell *arr = GC_CALLOC_EXPLICITLY_TYPED(4, sizeof *arr, descr);
  ok &= t && arr && arr[3].value == 0;
  t->next = c;
  arr[2].next = t;

  static void *weak;
  GC_hidden_pointer hidden = GC_HIDE_POINTER(t);
  weak = GC_REVEAL_POINTER(hidden);
  ok &= GC_GENERAL_REGISTER_DISAPPEARING_LINK(&weak, t) == GC_SUCCESS;
  ok &= GC_REGISTER_LONG_LINK(&weak, t) == GC_SUCCESS;

  void *list = GC_malloc_many(16);
  ok &= list != NULL;
  if (list) (void)GC_NEXT(list);

  char *p = GC_MALLOC(64);
  char *q = GC_PTR_ADD(p, 8);
  GC_PRE_INCR(q, 8);
  GC_POST_INCR(q);
  GC_POST_DECR(q);
  ok &= q == p + 16;
  GC_PTR_STORE(&u->next, c);
  GC_PTR_STORE_AND_DIRTY(&u->next, c);
  GC_END_STUBBORN_CHANGE(u);
  GC_REGISTER_DISPLACEMENT(8);

#ifdef GC_THREADS
  GC_word from_thread = 0;
  pthread_t th;
  ok &= pthread_create(&th, NULL, thread_main, &from_thread) == 0; /* GC_pthread_create */
  ok &= pthread_join(th, NULL) == 0;
  ok &= from_thread == 7;
  GC_alloc_lock();
  GC_alloc_unlock();
#endif

  drop_finalizable();
  clear_stack();
  GC_gcollect();
  GC_invoke_finalizers();
  ok &= finalized == 3 && GC_get_gc_no() > 0;
  ok &= arr[2].next == t && t->next == c && c->value == 11 && weak == t;
  GC_reachable_here(arr);
  GC_FREE(u);
  printf("%s: finalized %d, collections %lu, %s\n", ok ? "ok" : "FAILED", finalized,
         (unsigned long)GC_get_gc_no(), GC_is_incremental_mode() ? "incremental" : "stop-the-world");
  return ok ? 0 : 1;
}
