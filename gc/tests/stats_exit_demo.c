/* Allocates and collects a little, then exits: with DUNEGC_STATS=1 the collector prints
 * its report at exit (checked by the gc_stats_at_exit test). */
#include <dunegc/dunegc.h>

int main(void)
{
	for (int i = 0; i < 100000; i++)
		dunegc_malloc(64);
	dunegc_collect();
	return 0;
}
