/* Built outside the tree against an installed prefix, as a Boehm client would be:
 *   cc prog.c $(pkg-config --cflags --libs dunegc-bdw)
 * Unchanged Boehm-style code (GC_THREADS, <gc.h>, <gc/gc_typed.h>); it checks that the
 * libgc.so.1 it runs on is dunegc-bdw's, not the system's Boehm. */
#define GC_THREADS
#include <gc.h>
#include <gc/gc_typed.h>
#include <stdio.h>
#include <string.h>

struct node {
  struct node *next;
  long value;
};

static void *worker(void *arg) {
  struct node *head = NULL;
  for (long i = 0; i < 100000; i++) {
    struct node *n = GC_NEW(struct node);
    n->value = i;
    n->next = i % 100 == 0 ? NULL : head;
    head = n;
  }
  *(long *)arg = head ? head->value : -1;
  return NULL;
}

static int runs_on_dunegc(void) {
  char line[512];
  int found = 0;
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return 0;
  while (fgets(line, sizeof line, f))
    if (strstr(line, "/dunegc-bdw/libgc.so")) found = 1;
  fclose(f);
  return found;
}

int main(void) {
  GC_INIT();
  GC_word bm[1] = {0};
  GC_set_bit(bm, 0);
  GC_descr d = GC_make_descriptor(bm, GC_WORD_LEN(struct node));
  struct node *typed = GC_MALLOC_EXPLICITLY_TYPED(sizeof(struct node), d);
  typed->value = 42;
  long last = 0;
  pthread_t t;
  if (pthread_create(&t, NULL, worker, &last) != 0 || pthread_join(t, NULL) != 0) return 1;
  GC_gcollect();
  printf("dunegc-bdw: collections=%lu last=%ld typed=%ld on_dunegc=%d\n", (unsigned long)GC_get_gc_no(), last,
         typed->value, runs_on_dunegc());
  return GC_get_gc_no() > 0 && last == 99999 && typed->value == 42 && runs_on_dunegc() ? 0 : 1;
}
