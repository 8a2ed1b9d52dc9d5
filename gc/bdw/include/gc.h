/* gc.h -- dunegc-bdw: Boehm GC's top-level header, which includes <gc/gc.h>. */
#include <gc/gc.h>
