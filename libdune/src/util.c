/* util.c -- small services of the original API: printing, dying, dune_mmap, dune_signal,
 * Dune ring-3 FS base, and the privileged operations behind the header's inline helpers. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dune_internal.h"

static void write_all(const char *s, size_t n)
{
	while (n) {
		long w = syscall(SYS_write, 2, s, n);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static int vprint(const char *fmt, va_list ap, int newline)
{
	char buf[1024];
	int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);

	if (n < 0)
		return n;
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	if (newline && (n == 0 || buf[n - 1] != '\n'))
		buf[n++] = '\n';
	write_all(buf, (size_t)n);
	return n;
}

int dune_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vprint(fmt, ap, 0);
	va_end(ap);
	return n;
}

void dune_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprint(fmt, ap, 1);
	va_end(ap);
}

void dune_die(void)
{
	if (dune_stats_enabled_at_exit())
		dune_stats_print(2);
	syscall(SYS_exit_group, 1);
	__builtin_unreachable();
}

void *dune_mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
{
	void *p = mmap(addr, length, prot, flags, fd, offset);
	ptent_t f = dune_prot_to_pte(prot);

	if (p == MAP_FAILED || !f || !dune_g.initialized)
		return p;
	/* Mapping syscalls in Dune mode already map small regions; make sure of this one
	 * whatever its size. */
	if (dune_layout_ensure((uintptr_t)p, length) == 0)
		dune_vm_map_host(pgroot, (uintptr_t)p, (length + PGSIZE - 1) & ~(size_t)PGMASK, f);
	return p;
}

/* dune_signal(): sighandler-style callbacks, called from the Dune interrupt handler. */
static sighandler_t sig_cbs[64];

static void signal_trampoline(struct dune_tf *tf)
{
	int sig = dune_current_vector - DUNE_SIGNAL_INTR_BASE;

	(void)tf;
	if (sig > 0 && sig < 64 && sig_cbs[sig])
		sig_cbs[sig](sig);
}

sighandler_t dune_signal(int sig, sighandler_t cb)
{
	if (sig <= 0 || sig >= 64)
		return SIG_ERR;
	sighandler_t old = sig_cbs[sig];
	sig_cbs[sig] = cb;
	if (dune_register_signal_handler(sig, signal_trampoline) < 0)
		return SIG_ERR;
	return old ? old : SIG_DFL;
}

unsigned long dune_get_user_fs(void)
{
	return dune_self ? dune_self->pc->ufs_base : 0;
}

void dune_set_user_fs(unsigned long fs_base)
{
	if (dune_self)
		dune_self->pc->ufs_base = fs_base;
}

/* ---- privileged operations for Dune code at CPL 3 ------------------------------- */

void __dune_priv_invlpg(unsigned long addr)
{
	dune_priv_call(DUNE_PRIV_INVLPG, addr, 0);
}

void __dune_priv_flush_tlb(void)
{
	dune_priv_call(DUNE_PRIV_FLUSH, 0, 0);
}

void __dune_priv_load_cr3(unsigned long cr3)
{
	dune_priv_call(DUNE_PRIV_LOAD_CR3, cr3, 0);
}

/* ---- x2APIC ---------------------------------------------------------------------- */

#define MSR_X2APIC_EOI 0x80b
#define MSR_X2APIC_ICR 0x830

uint32_t dune_apic_id(void)
{
	return dune_self ? (uint32_t)dune_self->pc->apic_id : 0;
}

uint32_t dune_apic_id_for_vcpu(int vcpu)
{
	return (uint32_t)vcpu; /* KVM gives vCPU n the x2APIC ID n */
}

static void wrmsr(uint32_t msr, uint64_t v)
{
	if (__dune_cpl0)
		__asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32))
				 : "memory");
	else
		dune_priv_call(DUNE_PRIV_WRMSR, msr, v);
}

void dune_apic_send_ipi(uint8_t vector, uint32_t dest_apic_id)
{
	/* Fixed delivery, physical destination. */
	wrmsr(MSR_X2APIC_ICR, ((uint64_t)dest_apic_id << 32) | vector);
}

void dune_apic_eoi(void)
{
	wrmsr(MSR_X2APIC_EOI, 0);
}
