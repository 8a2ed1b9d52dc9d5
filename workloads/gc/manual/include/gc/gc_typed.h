/* gc/gc_typed.h for the no-GC baselines: typed allocation is plain zeroed allocation (there
 * is no marker to read the layout), with Boehm's bitmap macros so the workloads' descriptor
 * code compiles unchanged. See ../gc.h. */
#ifndef GCWL_MANUAL_GC_TYPED_H
#define GCWL_MANUAL_GC_TYPED_H

#include <stddef.h>

#include "../gc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef GC_word *GC_bitmap;
typedef GC_word GC_descr;

#define GC_WORDSZ (8 * sizeof(GC_word))
#define GC_get_bit(bm, index) (((bm)[(index) / GC_WORDSZ] >> ((index) % GC_WORDSZ)) & 1)
#define GC_set_bit(bm, index) ((bm)[(index) / GC_WORDSZ] |= (GC_word)1 << ((index) % GC_WORDSZ))
#define GC_WORD_OFFSET(t, f) (offsetof(t, f) / sizeof(GC_word))
#define GC_WORD_LEN(t) (sizeof(t) / sizeof(GC_word))
#define GC_BITMAP_SIZE(t) ((GC_WORD_LEN(t) + GC_WORDSZ - 1) / GC_WORDSZ)

static inline GC_descr GC_make_descriptor(const GC_word *bm, size_t len)
{
	(void)bm;
	(void)len;
	return 0;
}

static inline void *GC_malloc_explicitly_typed(size_t n, GC_descr d)
{
	(void)d;
	return GC_malloc(n);
}

#ifdef __cplusplus
}
#endif

#endif /* GCWL_MANUAL_GC_TYPED_H */
