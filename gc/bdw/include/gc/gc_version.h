/* gc_version.h -- dunegc-bdw: the version of Boehm GC's API these headers implement.
 *
 * dunegc-bdw is dunegc's Boehm-compatible layer: it implements the C API of the
 * Boehm-Demers-Weiser collector 8.2.2 (the one Debian ships), so the version macros are
 * that API's. GC_get_version() returns the same number; DUNEGC_BDW marks these headers.
 */
#ifndef GC_VERSION_H
#define GC_VERSION_H

#define GC_VERSION_MAJOR 8
#define GC_VERSION_MINOR 2
#define GC_VERSION_MICRO 2

/* Defined by dunegc-bdw's headers only: code may test it to know which collector's
 * headers it was compiled with. */
#define DUNEGC_BDW 1

#endif /* GC_VERSION_H */
