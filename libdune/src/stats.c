/* stats.c -- per-vCPU counters, printed at exit with DUNE_STATS=1.
 *
 * Counters are written by the vCPU's own thread only (host loop or its handlers), read by
 * anyone; a reader may see a slightly stale value, never a torn one (64-bit stores). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dune_internal.h"

int dune_stats_vcpus(void)
{
	return atomic_load(&dune_nvcpus);
}

int dune_stats_get(int vcpu, struct dune_vcpu_stats *out)
{
	if (vcpu < 0 || vcpu >= atomic_load(&dune_nvcpus) || !dune_vcpus[vcpu])
		return -EINVAL;
	memcpy(out, &dune_vcpus[vcpu]->stats, sizeof(*out));
	return 0;
}

void dune_stats_print(int fd)
{
	int n = atomic_load(&dune_nvcpus);
	char buf[512];

	for (int i = 0; i < n; i++) {
		const struct dune_vcpu_stats *s = dune_vcpus[i] ? &dune_vcpus[i]->stats : NULL;
		if (!s)
			continue;
		int len = snprintf(
			buf, sizeof(buf),
			"dune-stats: vcpu %d: exits %llu (syscall %llu, trap %llu, hypercall %llu, "
			"signal %llu, mmio %llu, other %llu); page faults %llu (lazy maps %llu); "
			"signals %llu; shootdowns sent %llu, received %llu\n",
			i, (unsigned long long)s->exits, (unsigned long long)s->exit_syscall,
			(unsigned long long)s->exit_trap, (unsigned long long)s->exit_hypercall,
			(unsigned long long)s->exit_signal, (unsigned long long)s->exit_mmio,
			(unsigned long long)s->exit_other, (unsigned long long)s->page_faults,
			(unsigned long long)s->lazy_maps, (unsigned long long)s->signals,
			(unsigned long long)s->shootdowns_sent, (unsigned long long)s->shootdowns_recv);
		if (len > 0)
			syscall(SYS_write, fd, buf, (size_t)(len < (int)sizeof(buf) ? len : (int)sizeof(buf) - 1));
	}
}

int dune_stats_enabled_at_exit(void)
{
	static int on = -1;
	if (on < 0) {
		const char *s = getenv("DUNE_STATS");
		on = s && *s && strcmp(s, "0") != 0;
	}
	return on;
}

void dune_stats_at_exit(void)
{
	if (dune_stats_enabled_at_exit())
		dune_stats_print(2);
}
