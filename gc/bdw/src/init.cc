// GC_init, Boehm's public variables, and the bridges from dunegc's callbacks (warnings,
// out of memory, fatal errors, collection events) to Boehm's.
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bdw.h"
#include "env.h"
#include "stats.h"

using namespace dunegc::bdw;
using dunegc::gc::warn;

namespace {

void GC_CALLBACK default_warn_proc(char *msg, GC_word arg);
void *GC_CALLBACK default_oom_fn(size_t bytes);
void GC_CALLBACK default_abort_func(const char *msg);
void GC_CALLBACK default_same_obj_print_proc(void *p, void *q);
void GC_CALLBACK default_displacement_print_proc(void *p);
void GC_CALLBACK default_visible_print_proc(void *p);

}  // namespace

// ---------------------------------------------------------------- the variables (gc.h)

extern "C" {
GC_word GC_gc_no = 0;
int GC_parallel = 0;
GC_oom_func GC_oom_fn = default_oom_fn;
GC_on_heap_resize_proc GC_on_heap_resize = nullptr;
int GC_find_leak = 0;
int GC_all_interior_pointers = 1;
int GC_finalize_on_demand = 0;
int GC_java_finalization = 1;
GC_finalizer_notifier_proc GC_finalizer_notifier = nullptr;
int GC_dont_gc = 0;
int GC_dont_expand = 0;
int GC_use_entire_heap = 0;
int GC_full_freq = 19;
GC_word GC_non_gc_bytes = 0;
int GC_no_dls = 0;
GC_word GC_free_space_divisor = 3;
GC_word GC_max_retries = 0;
char *GC_stackbottom = nullptr;
int GC_dont_precollect = 0;
unsigned long GC_time_limit = GC_TIME_UNLIMITED;
void(GC_CALLBACK *GC_same_obj_print_proc)(void *, void *) = default_same_obj_print_proc;
void(GC_CALLBACK *GC_is_valid_displacement_print_proc)(void *) = default_displacement_print_proc;
void(GC_CALLBACK *GC_is_visible_print_proc)(void *) = default_visible_print_proc;
extern void *GC_least_plausible_heap_addr, *GC_greatest_plausible_heap_addr;  // gc_mark.h
}

namespace dunegc::bdw {

std::atomic<bool> g_initialized{false};

namespace {

std::atomic<GC_warn_proc> g_warn_proc{default_warn_proc};
std::atomic<GC_abort_func> g_abort_func{default_abort_func};
std::atomic<GC_on_collection_event_proc> g_event_proc{nullptr};
std::atomic<void(GC_CALLBACK *)(void)> g_start_callback{nullptr};
std::atomic<uint64_t> g_collection_ns{0};  // START..END of every collection
uint64_t g_collection_start = 0;           // under the collector's lock

// Boehm's warn procs take a printf format: the line goes in with '%' doubled, after
// Boehm's own prefix, so filters written for Boehm's messages see the usual shape.
void warn_bridge(const char *line) {
  GC_warn_proc p = g_warn_proc.load(std::memory_order_acquire);
  if (p == default_warn_proc) {
    char out[400];
    int n = snprintf(out, sizeof out, "dunegc: %s\n", line);
    if (n > 0) (void)!write(STDERR_FILENO, out, size_t(n) < sizeof out ? size_t(n) : sizeof out - 1);
    return;
  }
  char msg[640] = "GC Warning: dunegc: ";
  size_t o = strlen(msg);
  for (const char *c = line; *c && o + 3 < sizeof msg; c++) {
    if (*c == '%') msg[o++] = '%';
    msg[o++] = *c;
  }
  msg[o++] = '\n';
  msg[o] = 0;
  p(msg, 0);
}

void *oom_bridge(size_t bytes) {
  GC_oom_func f = GC_oom_fn;
  return f ? f(bytes) : nullptr;
}

void fatal_bridge(const char *msg) {
  GC_abort_func f = g_abort_func.load(std::memory_order_acquire);
  if (f != default_abort_func) f(msg);  // dunegc has printed it already
}

void event_bridge(dunegc_event e) {
  if (e == DUNEGC_EVENT_START) {
    g_collection_start = dunegc::gc::now_ns();
    sync_variables_locked();
    if (auto cb = g_start_callback.load(std::memory_order_acquire)) cb();
  } else if (e == DUNEGC_EVENT_MARK_END) {
    __atomic_store_n(&GC_gc_no, GC_gc_no + 1, __ATOMIC_RELAXED);
  } else if (e == DUNEGC_EVENT_END) {
    g_collection_ns.fetch_add(dunegc::gc::now_ns() - g_collection_start, std::memory_order_relaxed);
  }
  if (GC_on_collection_event_proc p = g_event_proc.load(std::memory_order_acquire)) p(GC_EventType(e));
}

void notifier_bridge() {
  if (GC_finalizer_notifier_proc p = GC_finalizer_notifier) p();
}

void heap_resize_bridge(size_t bytes) {
  if (GC_on_heap_resize_proc p = GC_on_heap_resize) p(GC_word(bytes));
}

// The environment variables of Boehm's that dunegc honours (see docs/bdw.md).
void read_environment(dunegc_options *o) {
  if (size_t n = gc::env_size("GC_INITIAL_HEAP_SIZE")) o->initial_heap_bytes = n;
  if (size_t n = gc::env_size("GC_MAXIMUM_HEAP_SIZE")) dunegc_set_max_heap(n);
  const char *m = getenv("GC_MARKERS");
  if (!m || !*m) m = getenv("GC_NPROCS");
  if (m && *m) {
    int n = atoi(m);
    if (n >= 1) dunegc_set_markers(unsigned(n));
    else warn("ignoring GC_MARKERS=%s: not a positive number", m);
  }
  if (const char *d = getenv("GC_FREE_SPACE_DIVISOR")) {
    long n = atol(d);
    if (n > 0) GC_free_space_divisor = GC_word(n);
  }
  if (getenv("GC_DONT_GC")) GC_dont_gc = 1;
  if (getenv("GC_PRINT_STATS")) C().settings.print_stats = true;
  if (getenv("GC_FIND_LEAK")) GC_find_leak = 1;
  if (getenv("GC_ENABLE_INCREMENTAL"))
    warn("GC_ENABLE_INCREMENTAL is set, but dunegc collects stop-the-world only; it stays so");
}

}  // namespace

void sync_variables_locked() {
  gc::Settings &s = C().settings;
  s.scan_dls = __atomic_load_n(&GC_no_dls, __ATOMIC_RELAXED) == 0;
  s.java_finalization = __atomic_load_n(&GC_java_finalization, __ATOMIC_RELAXED) != 0;
  s.finalize_on_demand = __atomic_load_n(&GC_finalize_on_demand, __ATOMIC_RELAXED) != 0;
  GC_word divisor = __atomic_load_n(&GC_free_space_divisor, __ATOMIC_RELAXED);
  if (divisor > 0) s.growth = 3.0 / double(divisor);
  GC_word retries = __atomic_load_n(&GC_max_retries, __ATOMIC_RELAXED);
  s.max_retries = retries > 1000 ? 1000 : unsigned(retries);
  warn_unsupported_variables();
}

void apply_variables() {
  if (!g_initialized.load(std::memory_order_acquire)) {
    warn_unsupported_variables();
    return;
  }
  C().lock();
  sync_variables_locked();
  C().unlock();
}

void warn_unsupported_variables() {
  if (__atomic_load_n(&GC_find_leak, __ATOMIC_RELAXED))
    BDW_WARN_ONCE("GC_find_leak: dunegc has no leak-finding mode; it collects garbage as usual");
  if (__atomic_load_n(&GC_dont_expand, __ATOMIC_RELAXED))
    BDW_WARN_ONCE("GC_dont_expand: dunegc grows the heap by its allocation trigger; use GC_set_max_heap_size "
                  "to bound it");
  if (__atomic_load_n(&GC_use_entire_heap, __ATOMIC_RELAXED))
    BDW_WARN_ONCE("GC_use_entire_heap: not supported; dunegc collects by its allocation trigger");
}

void ensure_init_slow() { GC_init(); }

}  // namespace dunegc::bdw

namespace {

void GC_CALLBACK default_warn_proc(char *msg, GC_word arg) {
  char out[512];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
  int n = snprintf(out, sizeof out, msg, arg);  // Boehm's contract: msg formats arg
#pragma GCC diagnostic pop
  if (n > 0) (void)!write(STDERR_FILENO, out, size_t(n) < sizeof out ? size_t(n) : sizeof out - 1);
}

void *GC_CALLBACK default_oom_fn(size_t bytes) {
  warn("out of memory allocating %zu bytes (heap %zu bytes, max %zu): returning NULL", bytes,
       C().heap().pages().committed_bytes(), C().settings.max_heap);
  return nullptr;
}

void GC_CALLBACK default_abort_func(const char *msg) {
  if (msg) {
    (void)!write(STDERR_FILENO, msg, strlen(msg));
    (void)!write(STDERR_FILENO, "\n", 1);
  }
}

void GC_CALLBACK default_same_obj_print_proc(void *p, void *q) {
  dunegc::gc::fatal("GC_same_obj: %p and %p are in different objects", p, q);
}
void GC_CALLBACK default_displacement_print_proc(void *p) {
  dunegc::gc::fatal("GC_is_valid_displacement: %p is not a valid pointer into a heap object", p);
}
void GC_CALLBACK default_visible_print_proc(void *p) {
  dunegc::gc::fatal("GC_is_visible: %p is not visible to the collector", p);
}

}  // namespace

extern "C" {

unsigned GC_get_version(void) { return (GC_VERSION_MAJOR << 16) | (GC_VERSION_MINOR << 8) | GC_VERSION_MICRO; }

void GC_init(void) {
  static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
  if (g_initialized.load(std::memory_order_acquire)) return;
  pthread_mutex_lock(&once);
  if (g_initialized.load(std::memory_order_acquire)) {
    pthread_mutex_unlock(&once);
    return;
  }
  Collector &c = C();
  dunegc_set_warn_handler(warn_bridge);
  dunegc::gc::set_fatal_hook(fatal_bridge);
  dunegc_set_oom_handler(oom_bridge);
  dunegc_set_event_handler(event_bridge);
  c.hooks.disable_count = &GC_dont_gc;
  c.hooks.finalizers_ready = notifier_bridge;
  c.hooks.heap_resized = heap_resize_bridge;

  dunegc_options o;
  dunegc_options_init(&o);
  read_environment(&o);
  o.all_interior_pointers = GC_all_interior_pointers != 0;
  int rc = dunegc_init(&o);
  if (rc != 0 && rc != -EALREADY) dunegc::gc::fatal("GC_init: %s", dunegc_last_error());
  // The initialising thread is registered; a stack bottom the program set comes first.
  c.lock();
  if (dunegc::gc::ThreadRecord *t = dunegc::gc::t_self) {
    if (GC_stackbottom) t->stack_base = reinterpret_cast<uintptr_t>(GC_stackbottom);
    else GC_stackbottom = reinterpret_cast<char *>(t->stack_base);
  }
  sync_variables_locked();
  c.unlock();
  GC_parallel = int(c.settings.markers) - 1;
  // Just outside the heap on both sides: these variables lie in a scanned data segment,
  // and a value pointing at the heap's first object would keep it alive forever.
  GC_least_plausible_heap_addr = reinterpret_cast<void *>(c.heap().base() - 1);
  GC_greatest_plausible_heap_addr = reinterpret_cast<void *>(c.heap().base() + c.settings.reserve);
  g_initialized.store(true, std::memory_order_release);
  pthread_mutex_unlock(&once);
}

GC_word GC_get_gc_no(void) { return __atomic_load_n(&GC_gc_no, __ATOMIC_RELAXED); }

int GC_is_init_called(void) { return g_initialized.load(std::memory_order_acquire); }

// Boehm's GC_deinit releases Win32 critical sections; on Linux there is nothing to
// release, and dunegc's heap lives until the process exits (threads may still allocate).
void GC_deinit(void) {}

// ---------------------------------------------------------------- messages

void GC_set_warn_proc(GC_warn_proc p) {
  if (!p) {
    warn("GC_set_warn_proc(NULL): a warn proc must not be NULL; keeping the current one");
    return;
  }
  g_warn_proc.store(p, std::memory_order_release);
  if (!g_initialized.load(std::memory_order_acquire)) dunegc_set_warn_handler(warn_bridge);
}
GC_warn_proc GC_get_warn_proc(void) { return g_warn_proc.load(std::memory_order_acquire); }
void GC_CALLBACK GC_ignore_warn_proc(char *, GC_word) {}

void GC_set_abort_func(GC_abort_func fn) {
  if (!fn) {
    warn("GC_set_abort_func(NULL): an abort func must not be NULL; keeping the current one");
    return;
  }
  g_abort_func.store(fn, std::memory_order_release);
  dunegc::gc::set_fatal_hook(fatal_bridge);
}
GC_abort_func GC_get_abort_func(void) { return g_abort_func.load(std::memory_order_acquire); }

void GC_abort_on_oom(void) {
  static const char msg[] = "Insufficient memory for the allocation\n";
  (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
  g_abort_func.load(std::memory_order_acquire)(nullptr);
  exit(1);
}

void GC_set_oom_fn(GC_oom_func fn) {
  if (!fn) {
    warn("GC_set_oom_fn(NULL): an oom function must not be NULL; keeping the current one");
    return;
  }
  __atomic_store_n(&GC_oom_fn, fn, __ATOMIC_RELEASE);
}
GC_oom_func GC_get_oom_fn(void) { return __atomic_load_n(&GC_oom_fn, __ATOMIC_ACQUIRE); }

// ---------------------------------------------------------------- collection events

void GC_set_on_collection_event(GC_on_collection_event_proc fn) {
  g_event_proc.store(fn, std::memory_order_release);
}
GC_on_collection_event_proc GC_get_on_collection_event(void) {
  return g_event_proc.load(std::memory_order_acquire);
}

// gc_mark.h: called at the start of every collection, with the lock held.
void GC_set_start_callback(void(GC_CALLBACK *fn)(void)) { g_start_callback.store(fn, std::memory_order_release); }
void (*GC_get_start_callback(void))(void) { return g_start_callback.load(std::memory_order_acquire); }

// Full-collection time (START..END, milliseconds) since the measurement started.
static std::atomic<int64_t> g_measure_base{-1};
void GC_start_performance_measurement(void) {
  int64_t none = -1;
  g_measure_base.compare_exchange_strong(none, int64_t(g_collection_ns.load(std::memory_order_relaxed)));
}
unsigned long GC_get_full_gc_total_time(void) {
  int64_t base = g_measure_base.load(std::memory_order_relaxed);
  if (base < 0) return 0;
  return (unsigned long)((g_collection_ns.load(std::memory_order_relaxed) - uint64_t(base)) / 1000000);
}

}  // extern "C"
