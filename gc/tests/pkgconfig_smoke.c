/* Built outside the tree against an installed prefix: cc prog.c $(pkg-config --cflags --libs dunegc) */
#include <dunegc/dunegc.h>
#include <stdio.h>
#include <string.h>

struct node {
	struct node *next;
	long value;
};

int main(void)
{
	if (dunegc_init(NULL) != 0) {
		fprintf(stderr, "init: %s\n", dunegc_last_error());
		return 1;
	}
	struct node *head = NULL;
	for (long i = 0; i < 200000; i++) { /* ~6 MiB: at least one collection */
		struct node *n = dunegc_malloc(sizeof *n);
		if (!n)
			return 1;
		n->value = i;
		n->next = (i % 100 == 0) ? NULL : head; /* keep only short chains */
		head = n;
	}
	dunegc_collect();
	long sum = 0;
	for (struct node *n = head; n; n = n->next)
		sum += n->value;
	printf("dunegc collections=%llu sum=%ld\n", (unsigned long long)dunegc_collections(), sum);
	return dunegc_collections() > 0 && sum == 199999L * 100 - 4950 ? 0 : 1;
}
