/* dune-platform: print this host's platform (virt kind, CPU, kernel) for result files.
 *   dune-platform          one JSON object
 *   dune-platform --id     the short tag used in result file names
 *   dune-platform --virt   hw | pvm | tcg | none */
#include <stdio.h>
#include <string.h>

#include "dune_platform.h"

int main(int argc, char **argv)
{
	struct dune_platform_info p;
	char buf[1024];

	if (argc > 1 && !strcmp(argv[1], "--id")) {
		dune_platform_info(&p);
		puts(p.id);
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "--virt")) {
		puts(dune_virt_name(dune_detect_virt(NULL, 0)));
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "usage: dune-platform [--id | --virt]\n");
		return 2;
	}
	if (dune_platform_json(buf, sizeof(buf)) >= (int)sizeof(buf)) {
		fprintf(stderr, "dune-platform: platform description truncated\n");
		return 1;
	}
	puts(buf);
	return 0;
}
