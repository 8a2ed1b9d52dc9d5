/* gc_typed.h -- dunegc-bdw: Boehm GC 8.2's typed allocation, served by dunegc's layouts.
 *
 * A descriptor is a pointer bitmap: bit i (least significant bit of the first word
 * first) set means word i may hold a pointer; words past the bitmap hold none. dunegc
 * interns one layout per distinct bitmap, so make descriptors once per type. Words the
 * bitmap leaves clear are never treated as pointers: a value there retains nothing.
 * GC_calloc_explicitly_typed repeats the element's bitmap over every element.
 */
#ifndef GC_TYPED_H
#define GC_TYPED_H

#ifndef GC_H
#include "gc.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef GC_word *GC_bitmap;

#define GC_WORDSZ (8 * sizeof(GC_word))
#define GC_get_bit(bm, index) (((bm)[(index) / GC_WORDSZ] >> ((index) % GC_WORDSZ)) & 1)
#define GC_set_bit(bm, index) ((bm)[(index) / GC_WORDSZ] |= (GC_word)1 << ((index) % GC_WORDSZ))
#define GC_WORD_OFFSET(t, f) (offsetof(t, f) / sizeof(GC_word))
#define GC_WORD_LEN(t) (sizeof(t) / sizeof(GC_word))
#define GC_BITMAP_SIZE(t) ((GC_WORD_LEN(t) + GC_WORDSZ - 1) / GC_WORDSZ)

typedef GC_word GC_descr;

/* len: meaningful bits of bm. Returns an opaque descriptor (dunegc: the interned layout;
 * 0 for a layout without pointers). */
GC_API GC_descr GC_CALL GC_make_descriptor(const GC_word * /* GC_bitmap bm */, size_t /* len */);

/* Zeroed; size_in_bytes is at least len words of d. Not for GC_realloc. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL GC_malloc_explicitly_typed(size_t /* size_in_bytes */,
                                                                                    GC_descr /* d */);
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
GC_malloc_explicitly_typed_ignore_off_page(size_t /* size_in_bytes */, GC_descr /* d */);
/* nelements elements of element_size_in_bytes (a multiple of the word), each laid out
 * by d. Zeroed. */
GC_API GC_ATTR_MALLOC GC_ATTR_CALLOC_SIZE(1, 2) void *GC_CALL GC_calloc_explicitly_typed(size_t /* nelements */,
                                                                                        size_t /* element_size */,
                                                                                        GC_descr /* d */);

#ifdef GC_DEBUG
#define GC_MALLOC_EXPLICITLY_TYPED(bytes, d) ((void)(d), GC_MALLOC(bytes))
#define GC_CALLOC_EXPLICITLY_TYPED(n, bytes, d) ((void)(d), GC_MALLOC((n) * (bytes)))
#else
#define GC_MALLOC_EXPLICITLY_TYPED(bytes, d) GC_malloc_explicitly_typed(bytes, d)
#define GC_CALLOC_EXPLICITLY_TYPED(n, bytes, d) GC_calloc_explicitly_typed(n, bytes, d)
#endif

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GC_TYPED_H */
