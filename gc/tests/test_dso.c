/* A shared library with a data word, for the test that library data segments are roots
 * (and stop being roots when scanning them is turned off). */
void *dunegc_test_dso_slot;
