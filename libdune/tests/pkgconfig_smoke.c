/* Built outside the tree against an installed prefix: cc prog.c $(pkg-config --cflags --libs libdune) */
#include <dune_platform.h>
#include <stdio.h>

int main(void)
{
	printf("virt=%s\n", dune_virt_name(dune_detect_virt(NULL, 0)));
	return 0;
}
