/* tlb.c -- batched cross-vCPU TLB shootdown.
 *
 * A thread queues pages (or ranges) it changed, then one dune_tlb_shootdown() invalidates
 * them locally and runs one IPI round: every other vCPU running guest code takes the
 * interrupt, invalidates the same list and acknowledges by publishing the round's
 * generation. A vCPU outside the guest at that moment (in a host syscall, perhaps blocked)
 * is not waited for: before it next runs guest code it sees that its acknowledged
 * generation is behind and flushes its whole TLB. The two sides meet Dekker-style: the
 * initiator bumps the generation then reads the vCPU's state, the vCPU publishes its state
 * then reads the generation, both sequentially consistent.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "dune_internal.h"

#define QMAX 64

struct tlb_queue {
	uintptr_t va[QMAX];
	int n;
	int full;
};

static DUNE_TLS struct tlb_queue q;

/* The round in progress (written under `round_lock` before the generation is bumped). */
static struct {
	uintptr_t va[QMAX];
	int n;
	int full;
} req;
static DUNE_TLS int in_round; /* this thread runs a round (a handler may interrupt it) */
static DUNE_TLS int outer_full; /* a nested call asked for a full flush meanwhile */
static _Atomic uint64_t gen;
static atomic_flag round_lock = ATOMIC_FLAG_INIT;

void dune_tlb_queue_page(void *va)
{
	if (q.full)
		return;
	if (q.n == QMAX) {
		q.full = 1;
		return;
	}
	q.va[q.n++] = PGADDR(va);
}

void dune_tlb_queue_range(void *va, size_t len)
{
	uintptr_t a = PGADDR(va), end = (uintptr_t)va + len;

	if (len / PGSIZE > QMAX / 2) {
		q.full = 1;
		return;
	}
	for (; a < end; a += PGSIZE)
		dune_tlb_queue_page((void *)a);
}

void dune_tlb_flush_local_all(void)
{
	dune_flush_tlb();
}

static void flush_list(const uintptr_t *va, int n, int full)
{
	if (full || n > 16) {
		dune_flush_tlb();
	} else if (__dune_cpl0) {
		for (int i = 0; i < n; i++)
			__asm__ volatile("invlpg (%0)" ::"r"(va[i]) : "memory");
	} else if (n) {
		/* One trip to the CPL-0 stub for the whole list. */
		dune_priv_call(DUNE_PRIV_INVLPG_N, (uint64_t)(uintptr_t)va, (uint64_t)n);
	}
}

uint64_t dune_tlb_generation(void)
{
	return atomic_load(&gen);
}

/* On a vCPU that got the IPI: the round in flight has a stable list while its initiator
 * waits for us (and a late IPI just flushes a finished round's list again). */
void dune_tlb_handle_ipi(void)
{
	struct dune_vcpu *v = dune_self;
	uint64_t g = atomic_load(&gen);

	if (!v)
		return;
	flush_list(req.va, req.n, req.full);
	atomic_store(&v->pc->tlb_ack, g);
	v->stats.shootdowns_recv++;
}

/* Before running guest code after missing rounds. */
void dune_tlb_catch_up(void)
{
	struct dune_vcpu *v = dune_self;
	uint64_t g = atomic_load(&gen);

	dune_flush_tlb();
	if (v)
		atomic_store(&v->pc->tlb_ack, g);
}

static void poll_incoming(struct dune_vcpu *v)
{
	if (atomic_load(&v->pc->tlb_ack) < atomic_load(&gen))
		dune_tlb_handle_ipi();
}

static int shootdown(int all)
{
	struct dune_vcpu *v = dune_self;
	uint8_t waiting[DUNE_MAX_VCPUS];
	int n = atomic_load(&dune_nvcpus), others = 0;

	if (!v)
		return -EPERM;
	flush_list(q.va, q.n, all || q.full);
	for (int i = 0; i < n; i++)
		others += i != v->index && dune_vcpus[i] &&
			  atomic_load(&dune_vcpus[i]->state) != VCPU_FREE;
	if (!others) {
		q.n = q.full = 0;
		return 0;
	}
	if (in_round) {
		/* A handler interrupted this thread's own round: it cannot wait for it. Its
		 * local flush is done; the others get a full flush when that round ends. */
		outer_full = 1;
		q.n = q.full = 0;
		return -EDEADLK;
	}
	in_round = 1;
	while (atomic_flag_test_and_set_explicit(&round_lock, memory_order_acquire)) {
		poll_incoming(v); /* someone else's round may be waiting for us */
		__builtin_ia32_pause();
	}
	memcpy(req.va, q.va, sizeof(req.va));
	req.n = q.n;
	req.full = all || q.full || outer_full;
	outer_full = 0;
	q.n = q.full = 0;
	uint64_t g = atomic_fetch_add(&gen, 1) + 1;
	atomic_store(&v->pc->tlb_ack, g);
	memset(waiting, 0, sizeof(waiting));
	for (int i = 0; i < n; i++) {
		struct dune_vcpu *o = dune_vcpus[i];
		if (i == v->index || !o || atomic_load(&o->state) == VCPU_FREE)
			continue;
		if (atomic_load(&o->state) != VCPU_IN_GUEST)
			continue; /* catches up before it runs guest code again */
		waiting[i] = 1;
		if (__dune_cpl0)
			dune_apic_send_ipi(DUNE_TLB_VECTOR, dune_apic_id_for_vcpu(i));
		else
			dune_hcall(DUNE_HC_IPI, (uint64_t)dune_apic_id_for_vcpu(i), DUNE_TLB_VECTOR, 0);
	}
	for (int i = 0; i < n; i++) {
		struct dune_vcpu *o = dune_vcpus[i];
		while (waiting[i] && atomic_load(&o->pc->tlb_ack) < g) {
			if (atomic_load(&o->state) != VCPU_IN_GUEST) {
				/* It left the guest before taking the IPI: it will see the
				 * generation when it re-enters. */
				break;
			}
			poll_incoming(v);
			__builtin_ia32_pause();
		}
	}
	atomic_flag_clear_explicit(&round_lock, memory_order_release);
	in_round = 0;
	if (outer_full) /* a nested caller wanted more than this round carried */
		return shootdown(1);
	v->stats.shootdowns_sent++;
	return 0;
}

int dune_tlb_shootdown(void)
{
	return shootdown(0);
}

int dune_tlb_shootdown_all(void)
{
	return shootdown(1);
}
