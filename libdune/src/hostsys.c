/* hostsys.c -- forwarding a Dune thread's system calls to the host kernel.
 *
 * The host side of the thread executes the call itself, so getpid(), signal masks,
 * blocking and credentials are the thread's own. A few calls need more than that:
 * the clone family (the child continues the guest's code in normal mode), thread exit
 * (the host stack goes away), exit_group (statistics), arch_prctl (the guest's FS/GS
 * bases live in the vCPU), and the mapping calls (the guest page table must follow).
 * Runs in the host loop: signal-handler rules (see run.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h> /* CLONE_*, struct clone_args */
#include <signal.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dune_internal.h"

#ifndef SYS_clone3
#define SYS_clone3 435
#endif

long __dune_host_clone(const struct dune_regs *sys, void *ctx) HIDDEN;
void __dune_resume_host(const struct dune_regs *r, const void *xsave, uint64_t mask,
			int *consumed) HIDDEN __attribute__((noreturn));
void __dune_exit_thread(void *stack, size_t len, int status) HIDDEN __attribute__((noreturn));
void __dune_clone_child(void *ctx) HIDDEN __attribute__((noreturn));
void dune_vcpu_release(struct dune_vcpu *v) HIDDEN;

#define raw6(nr, a0, a1, a2, a3, a4, a5)                                            \
	dune_raw_syscall6((long)(nr), (long)(a0), (long)(a1), (long)(a2), (long)(a3),       \
			  (long)(a4), (long)(a5))

/* ---- clone, fork, vfork --------------------------------------------------------- */

struct clone_ctx {
	struct dune_regs regs;  /* the child's guest registers */
	uint64_t flags;
	uint64_t fs_base, gs_base;
	const void *xsave;
	int consumed;
};

/* In the child, on the stack it was given (a copy of the host stack for fork). */
void __dune_clone_child(void *p)
{
	struct clone_ctx *c = p;
	struct dune_regs r = c->regs;
	uint64_t flags = c->flags;
	int *consumed = NULL;

	if (!(flags & CLONE_VM))
		dune_after_fork_child();
	else if (flags & CLONE_VFORK)
		dune_self = NULL; /* shared TLS: the parent sets it back when it resumes */
	else
		consumed = &c->consumed; /* a thread: the parent waits until we are done */
	if (!(flags & CLONE_SETTLS))
		raw6(SYS_arch_prctl, 0x1002 /* ARCH_SET_FS */, c->fs_base, 0, 0, 0, 0);
	raw6(SYS_arch_prctl, 0x1001 /* ARCH_SET_GS */, c->gs_base, 0, 0, 0, 0);
	__dune_resume_host(&r, c->xsave, dune_g.xsave_mask, consumed);
}

static long do_clone(struct dune_vcpu *v, struct dune_regs *g)
{
	struct clone_ctx c;
	struct dune_regs sys = *g;
	uint64_t flags, stack;
	long ret;

	switch (g->rax) {
	case SYS_fork:
		flags = SIGCHLD;
		stack = 0;
		break;
	case SYS_vfork:
		flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
		stack = 0;
		break;
	case SYS_clone:
		flags = g->rdi;
		stack = g->rsi;
		break;
	default: { /* clone3 */
		const struct clone_args *ca = (const struct clone_args *)(uintptr_t)g->rdi;
		if (g->rsi < 64)
			return -EINVAL;
		flags = ca->flags;
		stack = ca->stack ? ca->stack + ca->stack_size : 0;
		break;
	}
	}
	memset(&c, 0, sizeof(c));
	c.regs = *g;
	c.regs.rax = 0;
	c.regs.rip = g->rcx;     /* as sysret: continue after the syscall instruction */
	c.regs.rflags = g->r11;
	c.regs.rsp = stack ? stack : g->rsp;
	c.flags = flags;
	c.fs_base = dune_g.bk->sregs(v->h)->fs_base;
	c.gs_base = dune_g.bk->sregs(v->h)->gs_base;
	if (dune_g.bk->get_xsave(v->h, v->xsave_buf, dune_g.info.xsave_size) == 0)
		c.xsave = v->xsave_buf;

	ret = __dune_host_clone(&sys, &c);
	if (ret > 0 && (flags & CLONE_VM) && !(flags & CLONE_VFORK)) {
		/* The child reads c (on this stack) and our XSAVE buffer before it runs. */
		for (int spins = 0; !__atomic_load_n(&c.consumed, __ATOMIC_ACQUIRE); spins++) {
			if (spins > 100)
				raw6(SYS_sched_yield, 0, 0, 0, 0, 0, 0);
			else
				__builtin_ia32_pause();
		}
	}
	if (flags & CLONE_VFORK)
		dune_self = v;
	return ret;
}

/* ---- exits ----------------------------------------------------------------------- */

static __attribute__((noreturn)) void do_thread_exit(struct dune_vcpu *v, int status)
{
	uint64_t all = ~0ull;
	char *stack = v->hstack - PGSIZE; /* the guard page too */
	size_t len = v->hstack_size + PGSIZE;

	raw6(SYS_rt_sigprocmask, SIG_BLOCK, (uint64_t)(uintptr_t)&all, 0, 8, 0, 0);
	dune_self = NULL;
	v->hstack = NULL;
	dune_vcpu_release(v);
	__dune_exit_thread(stack, len, status);
}

/* ---- the rest -------------------------------------------------------------------- */

static long do_arch_prctl(struct dune_vcpu *v, uint64_t code, uint64_t addr)
{
	struct dune_sregs *s = dune_g.bk->sregs(v->h);

	switch (code) {
	case 0x1002: /* ARCH_SET_FS */
		s->fs_base = addr;
		dune_g.bk->dirty(v->h, 2);
		return 0;
	case 0x1001: /* ARCH_SET_GS */
		s->gs_base = addr;
		dune_g.bk->dirty(v->h, 2);
		return 0;
	case 0x1003: /* ARCH_GET_FS */
		*(uint64_t *)(uintptr_t)addr = s->fs_base;
		return 0;
	case 0x1004: /* ARCH_GET_GS */
		*(uint64_t *)(uintptr_t)addr = s->gs_base;
		return 0;
	default:
		return raw6(SYS_arch_prctl, code, addr, 0, 0, 0, 0);
	}
}

static int changes_mappings(long nr)
{
	switch (nr) {
	case SYS_mmap:
	case SYS_munmap:
	case SYS_mremap:
	case SYS_mprotect:
	case SYS_pkey_mprotect:
	case SYS_brk:
	case SYS_shmat:
	case SYS_shmdt:
		return 1;
	}
	return 0;
}

static long host_sys6(long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
		      uint64_t a4, uint64_t a5)
{
	return raw6(nr, a0, a1, a2, a3, a4, a5);
}

uint64_t dune_mapping_aux(long nr, const uint64_t a[6], dune_sys6_fn sys)
{
	if (nr == SYS_brk)
		return (uint64_t)sys(SYS_brk, 0, 0, 0, 0, 0, 0);
	if (nr == SYS_shmat) {
		struct shmid_ds ds;
		if (sys(SYS_shmctl, a[0], IPC_STAT, (uint64_t)(uintptr_t)&ds, 0, 0, 0) == 0)
			return ds.shm_segsz;
	} else if (nr == SYS_shmdt) {
		uintptr_t s, e;
		int prot;
		if (dune_host_vma(a[0], &s, &e, &prot) == 0)
			return e - s;
	}
	return 0;
}

/* Forwards the system call in the guest registers `g`, leaving the result in rax and the
 * guest ready to continue after its syscall instruction. */
long dune_host_syscall(struct dune_vcpu *v, struct dune_regs *g)
{
	long nr = (long)g->rax, ret;
	uint64_t aux = 0;

	switch (nr) {
	case SYS_clone:
	case SYS_clone3:
	case SYS_fork:
	case SYS_vfork:
		ret = do_clone(v, g);
		break;
	case SYS_exit:
		do_thread_exit(v, (int)g->rdi);
	case SYS_exit_group:
		dune_exit_process((int)g->rdi);
	case SYS_arch_prctl:
		ret = do_arch_prctl(v, g->rdi, g->rsi);
		break;
	case SYS_rt_sigreturn:
		/* Handlers the program installed with sigaction() run on the host side and
		 * return there; a sigreturn from guest code has no frame to return to. */
		ret = -ENOSYS;
		break;
	default:
		if (changes_mappings(nr))
			dune_map_lock(); /* released by the mirror upcall, or below */
		if (changes_mappings(nr)) {
			const uint64_t a[6] = {g->rdi, g->rsi, g->rdx, g->r10, g->r8, g->r9};
			aux = dune_mapping_aux(nr, a, host_sys6);
		}
		ret = raw6(nr, g->rdi, g->rsi, g->rdx, g->r10, g->r8, g->r9);
		break;
	}
	g->rax = (uint64_t)ret;
	g->rip = g->rcx;
	g->rflags = (g->r11 & 0x40cd5ull) | 0x202;
	dune_g.bk->dirty(v->h, 1);
	/* Keep the selectors of the context the syscall came from (some hypervisors enter
	 * LSTAR at CPL 0 even from CPL-3 Dune code). */
	struct dune_sregs *s = dune_g.bk->sregs(v->h);
	uint16_t cs = dune_g.cpl == 0 ? GD_KT : (GD_UT | 3);
	if (s->cs != cs) {
		s->cs = cs;
		s->ss = dune_g.cpl == 0 ? GD_KD : (GD_UD | 3);
		dune_g.bk->dirty(v->h, 2);
	}
	if (changes_mappings(nr)) {
		if (!(ret < 0 && ret > -4096))
			dune_upcall(v, DUNE_UPC_MIRROR, (uint64_t)nr, aux);
		else
			dune_map_unlock();
	}
	return ret;
}
