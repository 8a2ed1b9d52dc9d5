/* procmap.c -- the original's /proc/self/maps iterator. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "dune.h"

static int classify(const char *path)
{
	if (!path[0])
		return PROCMAP_TYPE_ANONYMOUS;
	if (path[0] == '/')
		return PROCMAP_TYPE_FILE;
	if (!strcmp(path, "[heap]"))
		return PROCMAP_TYPE_HEAP;
	if (!strncmp(path, "[stack", 6))
		return PROCMAP_TYPE_STACK;
	if (!strcmp(path, "[vsyscall]"))
		return PROCMAP_TYPE_VSYSCALL;
	if (!strcmp(path, "[vdso]"))
		return PROCMAP_TYPE_VDSO;
	if (!strncmp(path, "[vvar", 5))
		return PROCMAP_TYPE_VVAR;
	return PROCMAP_TYPE_UNKNOWN;
}

void dune_procmap_iterate(dune_procmap_cb cb)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[4096];

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		struct dune_procmap_entry e;
		char perms[8] = {0};
		unsigned long begin, end, offset;
		int path_at = 0;

		memset(&e, 0, sizeof(e));
		line[strcspn(line, "\n")] = 0;
		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %n", &begin, &end, perms, &offset,
			   &path_at) < 4)
			continue;
		e.begin = begin;
		e.end = end;
		e.offset = offset;
		e.r = perms[0] == 'r';
		e.w = perms[1] == 'w';
		e.x = perms[2] == 'x';
		e.p = perms[3] == 'p';
		e.path = path_at ? line + path_at : line + strlen(line);
		e.type = classify(e.path);
		cb(&e);
	}
	fclose(f);
}

static void dump_cb(const struct dune_procmap_entry *e)
{
	printf("0x%016lx-0x%016lx %c%c%c%c %08lx %s\n", (unsigned long)e->begin,
	       (unsigned long)e->end, e->r ? 'r' : '-', e->w ? 'w' : '-', e->x ? 'x' : '-',
	       e->p ? 'p' : 's', (unsigned long)e->offset, e->path);
}

void dune_procmap_dump(void)
{
	printf("--- Process Map Dump ---\n");
	dune_procmap_iterate(dump_cb);
	printf("--- End Process Map Dump ---\n");
}
