/* dunegc.h -- the native C API of the dunegc collector (C++: <dunegc/dunegc.hpp>).
 *
 * A stop-the-world, parallel mark / lazy-sweep collector. Objects are conservative
 * (scanned word by word, like malloc'd memory that may hold pointers), atomic (never
 * scanned), uncollectable (scanned, never reclaimed, freed explicitly) or typed (scanned
 * by a layout: a pointer bitmap or a trace callback). Roots are the stacks and registers
 * of registered threads, the data and bss of the program (and of loaded libraries unless
 * turned off) and ranges added explicitly.
 *
 * Conventions: functions return 0 or a negative errno; allocation returns NULL (after the
 * out-of-memory handler, if any, declined). Every failure also calls the warn handler
 * with a one-line message and leaves it in dunegc_last_error(). Calling any allocation
 * function before dunegc_init() initialises with the current settings (and registers the
 * calling thread), as Boehm's collector does.
 *
 * Threads: a thread that holds pointers into the heap must be registered -- created by
 * dunegc_pthread_create(), or dunegc_register_thread() -- or its stack is not scanned.
 * Collection stops registered threads with a signal (SIGPWR); threads blocked in system
 * calls may see EINTR where the call does not restart (nanosleep, sleep).
 */
#ifndef DUNEGC_DUNEGC_H
#define DUNEGC_DUNEGC_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DUNEGC_API __attribute__((visibility("default")))

/* A positive return: the thing was already so (already registered). */
#define DUNEGC_DUPLICATE 1

/* ---------------------------------------------------------------- initialisation */

/* Fields left at their "unset" value (0, or -1 for switches) keep the current setting
 * (the default, a setter called before init, or an environment variable). */
typedef struct dunegc_options {
	size_t struct_size;          /* sizeof(dunegc_options), set by dunegc_options_init */
	size_t initial_heap_bytes;   /* committed at init */
	size_t max_heap_bytes;       /* committed-heap limit; default none (DUNEGC_MAX_HEAP) */
	size_t reserve_bytes;        /* address space for the heap; default max(2 x max, 32 GiB) */
	unsigned markers;            /* marking threads, the collecting one included;
	                                default: online CPUs (DUNEGC_MARKERS) */
	double growth;               /* collect after allocating growth x (live bytes); 1.0 */
	size_t min_trigger_bytes;    /* ...but not before this many bytes; 4 MiB */
	size_t mark_stack_entries;   /* per marker before overflow recovery; 256 Ki */
	int all_interior_pointers;   /* 1: a pointer anywhere into an object keeps it (default);
	                                0: only pointers to its first byte */
	int scan_dynamic_libraries;  /* 1: scan data/bss of shared libraries too (default) */
	int java_finalization;       /* 1: objects reachable from an unordered finalizable
	                                object are kept until its finalizer ran (default) */
	int finalize_on_demand;      /* 1: finalizers run only in dunegc_invoke_finalizers() */
	int verify;                  /* 1: heap verifier after every collection, poisoning of
	                                reclaimed memory (slow; DUNEGC_VERIFY=1) */
	/* Not yet implemented; present so that later versions keep this layout. Init fails
	 * with -ENOTSUP and says so if any is requested. */
	const char *paging_backend;  /* NULL or "none" */
	int concurrent;              /* 0: stop-the-world marking */
	int compaction;              /* 0: objects never move */
} dunegc_options;

DUNEGC_API void dunegc_options_init(dunegc_options *opt);
/* 0; -EALREADY when already initialised; -EINVAL / -ENOTSUP for bad options; -ENOMEM. */
DUNEGC_API int dunegc_init(const dunegc_options *opt);
DUNEGC_API int dunegc_is_initialized(void);
/* The message of this thread's last failure ("" if none). */
DUNEGC_API const char *dunegc_last_error(void);

/* Settings that may change before init only (-EBUSY after). */
DUNEGC_API int dunegc_set_all_interior_pointers(int on);
DUNEGC_API int dunegc_get_all_interior_pointers(void);
DUNEGC_API int dunegc_set_markers(unsigned n);
/* Settings that may change any time. */
DUNEGC_API void dunegc_set_scan_dynamic_libraries(int on);
DUNEGC_API int dunegc_get_scan_dynamic_libraries(void);
DUNEGC_API void dunegc_set_java_finalization(int on);
DUNEGC_API int dunegc_get_java_finalization(void);
DUNEGC_API void dunegc_set_finalize_on_demand(int on);
DUNEGC_API int dunegc_get_finalize_on_demand(void);
DUNEGC_API int dunegc_set_max_heap(size_t bytes); /* 0: no limit */
DUNEGC_API size_t dunegc_get_max_heap(void);
DUNEGC_API int dunegc_expand_heap(size_t bytes);  /* commit ahead; -ENOMEM past the max */

/* ---------------------------------------------------------------- allocation */

/* Conservatively scanned, zeroed. */
DUNEGC_API void *dunegc_malloc(size_t bytes);
/* Never scanned (must hold no pointers that keep objects alive); not zeroed. */
DUNEGC_API void *dunegc_malloc_atomic(size_t bytes);
/* Scanned, zeroed, never reclaimed by the collector: free it with dunegc_free. */
DUNEGC_API void *dunegc_malloc_uncollectable(size_t bytes);
/* Large objects kept alive only by pointers into their first page (or to their start,
 * with interior pointers off): for big arrays whose interior addresses are common. */
DUNEGC_API void *dunegc_malloc_ignore_off_page(size_t bytes);
DUNEGC_API void *dunegc_malloc_atomic_ignore_off_page(size_t bytes);
/* Several zeroed conservative objects of one size, as a list linked through their first
 * word (the rest of each is zero). NULL when out of memory. */
DUNEGC_API void *dunegc_malloc_many(size_t bytes);
/* C realloc: same kind; the old object is freed when the object moves. */
DUNEGC_API void *dunegc_realloc(void *p, size_t bytes);
/* Immediate explicit free. 0; -EINVAL (and a warning) when p is not the start of a live
 * heap object. p == NULL: 0. Do not free an object another pointer still uses. */
DUNEGC_API int dunegc_free(void *p);
/* Bytes usable at p (the object's full size), 0 when p is not the start of an object. */
DUNEGC_API size_t dunegc_size(const void *p);
/* Start of the heap object containing p (any interior address), or NULL. */
DUNEGC_API void *dunegc_base(const void *p);

/* ---------------------------------------------------------------- typed objects */

/* A layout describes where an object's pointers are. Layouts are interned and live
 * forever; make one per type, not per allocation. */
typedef const struct dunegc_layout_s *dunegc_layout;
/* Bit i (word i / 64, bit i % 64) set: word i of the object may hold a pointer; words at
 * or past nwords hold none. Objects allocated with it are at least nwords words long.
 * NULL (-EINVAL) when nwords is 0 or over 1 Mi. */
DUNEGC_API dunegc_layout dunegc_layout_bitmap(const uint64_t *bitmap, size_t nwords);
/* A trace callback: called (possibly on several marker threads at once, with the world
 * stopped) for each reachable object; it must report every pointer field with
 * dunegc_trace_slot and must not allocate or call the collector otherwise. */
typedef struct dunegc_tracer dunegc_tracer;
typedef void (*dunegc_trace_fn)(void *obj, size_t bytes, dunegc_tracer *tracer);
DUNEGC_API dunegc_layout dunegc_layout_trace(dunegc_trace_fn fn);
/* Reports a field that holds a heap pointer (or NULL, or a non-heap value: ignored). */
DUNEGC_API void dunegc_trace_slot(dunegc_tracer *tracer, void *const *slot);
/* Zeroed; scanned only where the layout says. */
DUNEGC_API void *dunegc_malloc_typed(size_t bytes, dunegc_layout layout);

/* ---------------------------------------------------------------- roots and threads */

DUNEGC_API int dunegc_add_roots(void *lo, void *hi);    /* [lo, hi) */
DUNEGC_API int dunegc_remove_roots(void *lo, void *hi); /* added ranges inside [lo, hi) */
DUNEGC_API void dunegc_clear_roots(void);                /* all added ranges */

/* Registers the calling thread; stack_base is the highest address of its stack (NULL:
 * ask pthread). 0, DUNEGC_DUPLICATE, or -errno. Threads exiting while registered are
 * unregistered automatically. */
DUNEGC_API int dunegc_register_thread(const void *stack_base);
DUNEGC_API int dunegc_unregister_thread(void);
DUNEGC_API int dunegc_thread_is_registered(void);
/* The calling thread's stack base (highest address). 0 or -errno. */
DUNEGC_API int dunegc_get_stack_base(void **base);
/* pthread_create whose new thread is registered for its whole life. */
DUNEGC_API int dunegc_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                                     void *(*start)(void *), void *arg);
/* pthread_join / pthread_detach: registration ends when the thread exits, so these only
 * forward; they exist so Boehm-style code can route every thread call through dunegc. */
DUNEGC_API int dunegc_pthread_join(pthread_t thread, void **ret);
DUNEGC_API int dunegc_pthread_detach(pthread_t thread);
/* dlopen/dlclose with collection excluded meanwhile, so a library's data segment is never
 * scanned half-loaded or after it was unmapped. */
DUNEGC_API void *dunegc_dlopen(const char *path, int flags);
DUNEGC_API int dunegc_dlclose(void *handle);
/* Runs fn(arg) holding the collector's lock: no collection happens meanwhile (e.g. to
 * read a hidden weak pointer). fn must not allocate. */
DUNEGC_API void *dunegc_call_with_lock(void *(*fn)(void *), void *arg);

/* ---------------------------------------------------------------- collection */

DUNEGC_API void dunegc_collect(void);
/* Incremental collection is future work. This does a bounded step of the work a
 * stop-the-world collector has pending: it lazily sweeps up to a few spans, or, when
 * nothing is left to sweep and the allocation trigger has been reached, runs a full
 * collection. Returns 1 while sweeping work remains, else 0. */
DUNEGC_API int dunegc_collect_a_little(void);
/* Collection is disabled while the count is positive (allocation then grows the heap). */
DUNEGC_API void dunegc_disable(void);
DUNEGC_API void dunegc_enable(void);

/* ---------------------------------------------------------------- finalization, weak links */

typedef void (*dunegc_finalizer)(void *obj, void *data);
enum dunegc_finalize_order {
	/* Not finalized while reachable from another unreachable finalizable object: if a
	 * points to b, a is finalized first and b in a later collection. Objects on a cycle
	 * through themselves are never finalized. (Boehm's GC_register_finalizer.) */
	DUNEGC_FINALIZE_ORDERED = 0,
	/* Ordered, but pointers from the object to itself do not count. */
	DUNEGC_FINALIZE_IGNORE_SELF = 1,
	/* Finalized as soon as unreachable from the roots (and from ordered finalizable
	 * objects); its own pointers delay nothing. (Boehm's _no_order.) */
	DUNEGC_FINALIZE_UNORDERED = 2,
};
/* Registers fn(obj, data) to run once obj is unreachable; fn == NULL unregisters. The
 * previous fn/data go to *old_fn and *old_data when non-NULL. data is a root until the
 * finalizer has run. 0; -EINVAL when obj is not the start of a collectable heap object. */
DUNEGC_API int dunegc_register_finalizer(void *obj, dunegc_finalizer fn, void *data,
                                         enum dunegc_finalize_order order,
                                         dunegc_finalizer *old_fn, void **old_data);
/* Runs finalizers of objects found unreachable; returns how many ran. Unless
 * finalize_on_demand is set they also run after a collection, on the thread whose
 * allocation (or dunegc_collect call) triggered it, outside the collector's lock. */
DUNEGC_API int dunegc_invoke_finalizers(void);
DUNEGC_API size_t dunegc_pending_finalizers(void);

/* *link is set to NULL when obj becomes unreachable (before any finalizer reachable from
 * it runs). The registration ends then, on unregister, or when the heap object holding
 * link dies. link must not itself keep obj alive (store obj hidden, e.g. ~(uintptr_t)obj,
 * or in atomic memory). 0; DUNEGC_DUPLICATE if link was registered (it now follows obj);
 * -EINVAL when obj is not the start of a heap object. */
DUNEGC_API int dunegc_register_disappearing_link(void **link, const void *obj);
/* 1 when link was registered, else 0. */
DUNEGC_API int dunegc_unregister_disappearing_link(void **link);

/* ---------------------------------------------------------------- callbacks */

/* Called when an allocation of `bytes` cannot be satisfied even after a collection;
 * what it returns is returned by the allocation. Called without the collector's lock. */
typedef void *(*dunegc_oom_fn)(size_t bytes);
DUNEGC_API void dunegc_set_oom_handler(dunegc_oom_fn fn);
DUNEGC_API dunegc_oom_fn dunegc_get_oom_handler(void);

/* Receives every warning and error message (one line, no newline); default: stderr.
 * May be called with the collector's lock held: it must not call the collector. */
typedef void (*dunegc_warn_fn)(const char *msg);
DUNEGC_API void dunegc_set_warn_handler(dunegc_warn_fn fn);
DUNEGC_API dunegc_warn_fn dunegc_get_warn_handler(void);

/* Collection events, in Boehm 8.2's GC_EventType order. One collection reports, in
 * Boehm's sequence, START, PRE_STOP_WORLD, POST_STOP_WORLD, MARK_START, MARK_END,
 * PRE_START_WORLD, POST_START_WORLD, RECLAIM_START, RECLAIM_END, END. The world is stopped
 * from POST_STOP_WORLD to PRE_START_WORLD; the reclaim (large objects, sweep set-up,
 * decommit) runs after the restart with the collector's lock held, and small objects are
 * swept lazily during allocation. The handler runs on the collecting thread, maybe with
 * other threads stopped: it must not allocate, lock, or call the collector. */
typedef enum dunegc_event {
	DUNEGC_EVENT_START = 0,
	DUNEGC_EVENT_MARK_START,
	DUNEGC_EVENT_MARK_END,
	DUNEGC_EVENT_RECLAIM_START,
	DUNEGC_EVENT_RECLAIM_END,
	DUNEGC_EVENT_END,
	DUNEGC_EVENT_PRE_STOP_WORLD,
	DUNEGC_EVENT_POST_STOP_WORLD,
	DUNEGC_EVENT_PRE_START_WORLD,
	DUNEGC_EVENT_POST_START_WORLD,
} dunegc_event;
typedef void (*dunegc_event_fn)(dunegc_event event);
DUNEGC_API void dunegc_set_event_handler(dunegc_event_fn fn);
DUNEGC_API dunegc_event_fn dunegc_get_event_handler(void);

/* ---------------------------------------------------------------- statistics */

/* Pause histogram: bucket 0 counts pauses under 2 us; bucket k >= 1 counts pauses in
 * [2^k, 2^(k+1)) us; the last bucket also counts everything longer. */
#define DUNEGC_PAUSE_BUCKETS 24
enum { DUNEGC_PHASE_STOP, DUNEGC_PHASE_ROOTS, DUNEGC_PHASE_MARK, DUNEGC_PHASE_SWEEP,
       DUNEGC_PHASES };

typedef struct dunegc_stats {
	size_t struct_size;            /* set by the caller: sizeof(dunegc_stats) */
	/* heap */
	size_t heap_bytes;             /* committed heap (in-use and free pages) */
	size_t free_bytes;             /* heap_bytes minus live-after-GC and allocated since */
	size_t unmapped_bytes;         /* free pages returned to the kernel */
	size_t max_heap_bytes;         /* 0: none */
	size_t live_bytes;             /* marked by the last collection */
	uint64_t bytes_since_gc;       /* allocated since the last collection */
	uint64_t total_bytes;          /* allocated since init */
	uint64_t collections;
	unsigned markers;
	/* pauses (world stopped), nanoseconds; the stop, roots and mark phases make up a
	 * pause, the sweep phase (reclaim) follows it with the lock held */
	uint64_t pause_total_ns, pause_max_ns, pause_last_ns;
	uint64_t phase_total_ns[DUNEGC_PHASES], phase_last_ns[DUNEGC_PHASES];
	uint64_t pause_histogram[DUNEGC_PAUSE_BUCKETS];
	/* work outside pauses */
	uint64_t lazy_sweep_ns;        /* sweeping done by allocating threads */
	uint64_t spans_swept;
	/* counters */
	uint64_t objects_marked_last;
	uint64_t mark_stack_overflows; /* collections that needed overflow recovery */
	uint64_t finalizers_queued, finalizers_run;
	uint64_t links_cleared;
	uint64_t explicit_frees;
	uint64_t large_objects_freed;
	uint64_t threads_registered;   /* now */
	uint64_t helper_objects_last;  /* of objects_marked_last, marked by helper markers */
} dunegc_stats;

/* Fills *out (up to out->struct_size bytes; 0 there means the full struct). */
DUNEGC_API void dunegc_get_stats(dunegc_stats *out);
DUNEGC_API size_t dunegc_heap_size(void);
DUNEGC_API size_t dunegc_free_bytes(void);
DUNEGC_API size_t dunegc_unmapped_bytes(void);
DUNEGC_API uint64_t dunegc_bytes_since_gc(void);
DUNEGC_API uint64_t dunegc_total_bytes(void);
DUNEGC_API uint64_t dunegc_collections(void);
/* The report DUNEGC_STATS=1 prints at exit, to file descriptor fd. */
DUNEGC_API void dunegc_print_stats(int fd);

#ifdef __cplusplus
}
#endif

#endif /* DUNEGC_DUNEGC_H */
