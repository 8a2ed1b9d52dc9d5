/* gc.h for the no-GC baselines (collectors "malloc" and "jemalloc").
 *
 * The GC workloads are written once against Boehm's API. Built against this header instead
 * of Boehm's, the same source runs on plain malloc/free: allocation is calloc (Boehm's
 * GC_MALLOC returns zeroed memory, so the baseline pays for zeroing too), GC_MALLOC_ATOMIC
 * is malloc (Boehm does not clear atomic objects either), and GC_FREE is free -- which the
 * workloads call, through WL_FREE, exactly where their objects die. Which malloc that is,
 * glibc's or jemalloc's, is decided at link time. There is no collector: no collection
 * events are ever delivered and GC_get_gc_no() stays 0.
 *
 * Only the slice of the API the workloads and the harness use is here. */
#ifndef GCWL_MANUAL_GC_H
#define GCWL_MANUAL_GC_H

#include <stddef.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef unsigned long GC_word;
#define GC_CALL
#define GC_CALLBACK

/* Prints the failed request and exits with the harness's out-of-memory status. */
void *GC_manual_out_of_memory(size_t bytes) __attribute__((noreturn, cold));

static inline void *GC_malloc(size_t n)
{
	void *p = calloc(1, n);
	return __builtin_expect(p != NULL, 1) ? p : GC_manual_out_of_memory(n);
}

static inline void *GC_malloc_atomic(size_t n)
{
	void *p = malloc(n);
	return __builtin_expect(p != NULL, 1) ? p : GC_manual_out_of_memory(n);
}

static inline void GC_free(void *p)
{
	free(p);
}

#define GC_INIT() ((void)0)
#define GC_MALLOC(n) GC_malloc(n)
#define GC_MALLOC_ATOMIC(n) GC_malloc_atomic(n)
#define GC_FREE(p) GC_free(p)

static inline GC_word GC_get_gc_no(void)
{
	return 0;
}

/* Boehm 8.2's collection events, same values; never delivered here. */
typedef enum {
	GC_EVENT_START,
	GC_EVENT_MARK_START,
	GC_EVENT_MARK_END,
	GC_EVENT_RECLAIM_START,
	GC_EVENT_RECLAIM_END,
	GC_EVENT_END,
	GC_EVENT_PRE_STOP_WORLD,
	GC_EVENT_POST_STOP_WORLD,
	GC_EVENT_PRE_START_WORLD,
	GC_EVENT_POST_START_WORLD,
	GC_EVENT_THREAD_SUSPENDED,
	GC_EVENT_THREAD_UNSUSPENDED
} GC_EventType;
typedef void (*GC_on_collection_event_proc)(GC_EventType);

static inline void GC_set_on_collection_event(GC_on_collection_event_proc fn)
{
	(void)fn;
}

#ifdef __cplusplus
}
#endif

#endif /* GCWL_MANUAL_GC_H */
