/* A Boehm GC client, compiled and linked against Debian's Boehm (`pkg-config bdw-gc`): the
 * drop-in test runs this same binary on Boehm's libgc.so.1 and, through LD_LIBRARY_PATH
 * and LD_PRELOAD, on dunegc-bdw's. It prints which libgc.so.1 the process mapped and checks
 * what Boehm documents: collection events, typed objects, ordered finalization,
 * disappearing links, uncollectable objects, threads (GC_THREADS redirects), and the oom
 * function at the heap maximum. Exit status 0 when everything held. */
#define GC_THREADS
#include <gc.h>
#include <gc/gc_typed.h>
#include <stdio.h>
#include <string.h>

static int failures;
#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      fprintf(stderr, "dropin_client: check failed: %s\n", #cond);   \
      failures++;                                                     \
    }                                                                 \
  } while (0)

struct node {
  struct node *next;
  GC_word value;
};

static int events[12], stops;
static void GC_CALLBACK on_event(GC_EventType e) {
  events[e]++;
  if (e == GC_EVENT_PRE_STOP_WORLD) stops++;
}

static char order[8];
static void GC_CALLBACK note(void *obj, void *cd) {
  (void)obj;
  strncat(order, (const char *)cd, sizeof order - strlen(order) - 1);
}

static __attribute__((noinline)) void clear_stack(void) {
  volatile GC_word junk[8192];
  for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) junk[i] = 0;
}

static __attribute__((noinline)) void make_finalizable_pair(void **weak) {
  struct node *a = GC_NEW(struct node), *b = GC_NEW(struct node);
  a->next = b;
  GC_REGISTER_FINALIZER(a, note, "a", NULL, NULL);
  GC_REGISTER_FINALIZER(b, note, "b", NULL, NULL);
  *weak = (void *)GC_HIDE_POINTER(b); /* a link must not keep its target alive */
  CHECK(GC_GENERAL_REGISTER_DISAPPEARING_LINK(weak, b) == GC_SUCCESS);
}

static void *worker(void *arg) {
  struct node *head = NULL;
  for (GC_word i = 0; i < 50000; i++) {
    struct node *n = GC_NEW(struct node);
    n->value = i;
    n->next = head;
    head = n;
  }
  GC_word sum = 0;
  for (struct node *n = head; n; n = n->next) sum += n->value;
  *(GC_word *)arg = sum;
  return NULL;
}

static size_t oom_bytes;
static void *GC_CALLBACK on_oom(size_t bytes) {
  oom_bytes = bytes;
  return NULL;
}

/* The libgc.so.1 this process mapped, from /proc/self/maps. */
static void print_libgc(void) {
  char line[512], path[400] = "(none)";
  FILE *f = fopen("/proc/self/maps", "r");
  while (f && fgets(line, sizeof line, f)) {
    char *p = strchr(line, '/');
    if (p && strstr(p, "/libgc.so")) {
      p[strcspn(p, "\n")] = 0;
      snprintf(path, sizeof path, "%s", p);
    }
  }
  if (f) fclose(f);
  printf("libgc: %s\n", path);
}

int main(void) {
  GC_INIT();
  print_libgc();
  GC_set_on_collection_event(on_event);

  /* Typed: the non-pointer word holds a heap address that must not retain it. */
  GC_word bm[1] = {0};
  GC_set_bit(bm, 0);
  GC_descr d = GC_make_descriptor(bm, GC_WORD_LEN(struct node));
  static struct node *typed;
  typed = GC_MALLOC_EXPLICITLY_TYPED(sizeof(struct node), d);
  typed->next = GC_NEW(struct node);
  typed->next->value = 42;

  static struct node *kept;
  kept = GC_MALLOC_UNCOLLECTABLE(sizeof(struct node));
  kept->next = GC_NEW(struct node);
  kept->next->value = 7;

  GC_word sum = 0;
  pthread_t t;
  CHECK(pthread_create(&t, NULL, worker, &sum) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK(sum == (GC_word)50000 * 49999 / 2);

  static void *weak;
  make_finalizable_pair(&weak);
  clear_stack();
  GC_gcollect();
  CHECK(strcmp(order, "a") == 0); /* the referrer first */
  CHECK(weak == NULL);            /* cleared before any finalizer ran */
  clear_stack();
  GC_gcollect();
  CHECK(strcmp(order, "ab") == 0);
  CHECK(typed->next->value == 42 && kept->next->value == 7);
  CHECK(events[GC_EVENT_START] >= 2 && events[GC_EVENT_END] == events[GC_EVENT_START]);
  /* Public variables read directly: this program holds copies of them (copy relocations),
   * which the library must update, not copies of its own. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  CHECK(GC_gc_no == GC_get_gc_no() && GC_gc_no >= 2);
  CHECK(GC_all_interior_pointers == 1 && GC_java_finalization == 1);
#pragma GCC diagnostic pop
  CHECK(stops >= 2 && events[GC_EVENT_POST_START_WORLD] == stops);

  GC_set_max_heap_size(GC_get_heap_size() + (8 << 20));
  GC_set_oom_fn(on_oom);
  static void *volatile hold[64]; /* volatile: the stores must happen */
  int i = 0;
  while (i < 64 && (hold[i] = GC_MALLOC_ATOMIC(1 << 20))) i++;
  if (!(i < 64 && oom_bytes >= 1 << 20)) fprintf(stderr, "dropin_client: %d MiB allocated, oom fn asked for %zu bytes\n", i, oom_bytes);
  CHECK(i < 64 && oom_bytes >= 1 << 20);

  printf("collections %lu, pauses %d, finalized \"%s\", heap %lu bytes: %s\n", (unsigned long)GC_get_gc_no(),
         stops, order, (unsigned long)GC_get_heap_size(), failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
