/* run.c -- the host side of a Dune thread: run the vCPU, handle what makes it stop.
 *
 * The thread that called dune_enter() lives here, on a private stack, while its guest
 * side runs the program. Guest exits can happen at any instruction -- inside malloc,
 * holding stdio locks -- and host and guest are the same thread, so nothing here may take
 * a libc lock: the rules are those of a signal handler (raw syscalls, no malloc, no stdio).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <unistd.h>

#include "dune_internal.h"

extern char __dune_upcall_entry[] HIDDEN;
extern char __dune_idt_stubs[] HIDDEN;
extern char __dune_cpl0_end[] HIDDEN;

#define RFLAGS_IF 0x200ull
#define RFLAGS_SAFE 0x40cd5ull /* CF PF AF ZF SF DF OF AC: what a frame may restore */

/* DUNE_TRACE=1: one line per trap and hypercall on stderr (debugging). */
static int dune_trace;

static inline struct dune_regs *R(struct dune_vcpu *v)
{
	return dune_g.bk->regs(v->h);
}

static inline struct dune_sregs *S(struct dune_vcpu *v)
{
	return dune_g.bk->sregs(v->h);
}

/* Selectors of Dune ring 0 or ring 3 code. Where Dune ring 0 runs at CPL 3, both are
 * the user selectors: only libdune's bookkeeping (in_user) tells them apart. */
static void set_ring(struct dune_vcpu *v, int user)
{
	struct dune_sregs *s = S(v);
	uint16_t cs = (user || dune_g.cpl == 3) ? (GD_UT | 3) : GD_KT;
	uint16_t ss = (user || dune_g.cpl == 3) ? (GD_UD | 3) : GD_KD;

	if (s->cs != cs || s->ss != ss) {
		s->cs = cs;
		s->ss = ss;
		dune_g.bk->dirty(v->h, 2);
	}
}

static void set_fs(struct dune_vcpu *v, uint64_t fs)
{
	struct dune_sregs *s = S(v);

	if (s->fs_base != fs) {
		s->fs_base = fs;
		dune_g.bk->dirty(v->h, 2);
	}
}

/* ---- fatal errors ---------------------------------------------------------------- */

static void say(const char *s)
{
	size_t n = strlen(s);
	while (n) {
		ssize_t w = write(2, s, n);
		if (w <= 0)
			break;
		s += w;
		n -= (size_t)w;
	}
}

void dune_exit_process(int status)
{
	dune_stats_at_exit();
	syscall(SYS_exit_group, status);
	__builtin_unreachable();
}

/* Ends the process by signal `sig`, as an unhandled fault would natively. */
void dune_fatal_exit(struct dune_vcpu *v, int sig, const char *why)
{
	char buf[512];

	if (v) {
		struct dune_regs *r = R(v);
		snprintf(buf, sizeof(buf),
			 "dune: vCPU %d: %s\n"
			 "dune: RIP 0x%016llx RSP 0x%016llx RFLAGS 0x%llx CS 0x%x\n"
			 "dune: RAX 0x%016llx RBX 0x%016llx RCX 0x%016llx RDX 0x%016llx\n",
			 v->index, why, (unsigned long long)r->rip, (unsigned long long)r->rsp,
			 (unsigned long long)r->rflags, S(v)->cs, (unsigned long long)r->rax,
			 (unsigned long long)r->rbx, (unsigned long long)r->rcx,
			 (unsigned long long)r->rdx);
	} else {
		snprintf(buf, sizeof(buf), "dune: %s\n", why);
	}
	say(buf);
	dune_stats_at_exit();
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	syscall(SYS_rt_sigaction, sig, &sa, NULL, 8);
	uint64_t mask = 1ull << (sig - 1);
	syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &mask, NULL, 8);
	syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
	syscall(SYS_exit_group, 128 + sig);
	__builtin_unreachable();
}

/* ---- upcalls: starting Dune ring-0 C code from the host ------------------------- */

static void tf_from_regs(struct dune_tf *tf, const struct dune_regs *r)
{
	tf->rdi = r->rdi;
	tf->rsi = r->rsi;
	tf->rdx = r->rdx;
	tf->rcx = r->rcx;
	tf->r8 = r->r8;
	tf->r9 = r->r9;
	tf->r10 = r->r10;
	tf->r11 = r->r11;
	tf->rbx = r->rbx;
	tf->rbp = r->rbp;
	tf->r12 = r->r12;
	tf->r13 = r->r13;
	tf->r14 = r->r14;
	tf->r15 = r->r15;
	tf->rax = r->rax;
	tf->rip = r->rip;
	tf->rflags = r->rflags;
	tf->rsp = r->rsp;
}

/* The guest registers from a trap frame (flags a frame may not change are ours). */
static void regs_from_tf(struct dune_regs *g, const struct dune_tf *tf)
{
	g->rax = tf->rax;
	g->rbx = tf->rbx;
	g->rcx = tf->rcx;
	g->rdx = tf->rdx;
	g->rsi = tf->rsi;
	g->rdi = tf->rdi;
	g->rbp = tf->rbp;
	g->r8 = tf->r8;
	g->r9 = tf->r9;
	g->r10 = tf->r10;
	g->r11 = tf->r11;
	g->r12 = tf->r12;
	g->r13 = tf->r13;
	g->r14 = tf->r14;
	g->r15 = tf->r15;
	g->rip = tf->rip;
	g->rsp = tf->rsp;
	g->rflags = (tf->rflags & RFLAGS_SAFE) | 0x2 | RFLAGS_IF;
}

struct ctx {
	struct dune_regs r; /* the interrupted registers, rip/rsp/rflags included */
	uint32_t err;
	int in_user;
};

static int place_upcall(struct dune_vcpu *v, const struct ctx *c, int kind, uint64_t vec,
			uint64_t arg0, uint64_t arg1, uint64_t cr2, int sysret)
{
	uintptr_t lo = (uintptr_t)v->tstack, hi = lo + v->tstack_size, top = hi;

	/* Nested (a fault in a handler): below the interrupted handler and its red zone. */
	if (!c->in_user && c->r.rsp > lo && c->r.rsp <= hi)
		top = c->r.rsp - 128;
	uintptr_t f = (top - sizeof(struct dune_upcall_frame)) & ~(uintptr_t)63;
	uintptr_t xs = (f - dune_g.xsave_size) & ~(uintptr_t)63;
	uintptr_t sp = (xs - 64) & ~(uintptr_t)15;
	if (sp < lo + 8192)
		dune_fatal_exit(v, SIGSEGV, "handler stack overflow (handlers nest too deep)");

	struct dune_upcall_frame *uf = (struct dune_upcall_frame *)f;
	const struct dune_regs *r = &c->r;
	memset(uf, 0, sizeof(*uf));
	tf_from_regs(&uf->tf, r);
	uf->tf.err = c->err;
	uf->tf.cs = (c->in_user || dune_g.cpl == 3) ? (GD_UT | 3) : GD_KT;
	uf->tf.ss = (c->in_user || dune_g.cpl == 3) ? (GD_UD | 3) : GD_KD;
	uf->kind = (uint64_t)kind;
	uf->vec = vec;
	uf->arg0 = arg0;
	uf->arg1 = arg1;
	uf->cr2 = cr2;
	uf->in_user = (uint64_t)c->in_user;
	uf->fs_base = S(v)->fs_base;
	uf->xsave = xs;
	uf->magic = DUNE_UF_MAGIC_VALUE;
	uf->sysret = (uint64_t)sysret;
	if (dune_g.xsave_mask) /* XSAVE header: standard format (FXSAVE areas have none) */
		memset((void *)(xs + 512), 0, 64);

	struct dune_regs *g = R(v);
	memset(g, 0, sizeof(*g));
	g->rip = (uint64_t)(uintptr_t)__dune_upcall_entry;
	g->rsp = sp;
	g->rdi = f;
	g->rsi = xs;
	g->r13 = dune_g.xsave_mask;
	g->rflags = 0x2 | RFLAGS_IF;
	dune_g.bk->dirty(v->h, 1);
	v->in_user = 0;
	set_ring(v, 0);
	set_fs(v, v->kfs_base);
	return 0;
}

/* The current guest registers as an interrupted context (signals, flushes). */
static void current_ctx(struct dune_vcpu *v, struct ctx *c)
{
	c->r = *R(v);
	c->err = 0;
	c->in_user = v->in_user;
}

int dune_upcall(struct dune_vcpu *v, int kind, uint64_t vec, uint64_t arg0)
{
	struct ctx c;

	current_ctx(v, &c);
	return place_upcall(v, &c, kind, vec, arg0, 0, 0, 0);
}

/* DUNE_HC_TRET: resume the context saved in an upcall frame. */
static void trap_return(struct dune_vcpu *v, uintptr_t f)
{
	struct dune_upcall_frame *uf = (struct dune_upcall_frame *)f;
	uintptr_t lo = (uintptr_t)v->tstack, hi = lo + v->tstack_size;

	if (f < lo || f + sizeof(*uf) > hi || uf->magic != DUNE_UF_MAGIC_VALUE)
		dune_fatal_exit(v, SIGSEGV, "trap return with a corrupt frame");
	uf->magic = 0;
	if (uf->kind == DUNE_UPC_SIGNAL && uf->vec >= DUNE_SIGNAL_INTR_BASE &&
	    uf->vec < DUNE_SIGNAL_INTR_BASE + 64)
		v->sigs_in_handler &= ~(1ull << (uf->vec - DUNE_SIGNAL_INTR_BASE));
	struct dune_regs *g = R(v);
	if (dune_trace)
		dune_warn("dune-trace: vcpu %d trap return to rip %#llx rsp %#llx rax %#llx rdi %#llx "
			  "rbx %#llx", v->index, (unsigned long long)uf->tf.rip,
			  (unsigned long long)uf->tf.rsp, (unsigned long long)uf->tf.rax,
			  (unsigned long long)uf->tf.rdi, (unsigned long long)uf->tf.rbx);
	const struct dune_tf *tf = &uf->tf;
	regs_from_tf(g, tf);
	if (uf->sysret) { /* return from a ring-3 syscall, as the original's sysret path */
		g->r10 = tf->rcx;
		g->rcx = tf->rip;
		g->r11 = g->rflags;
	}
	dune_g.bk->dirty(v->h, 1);
	v->in_user = (int)uf->in_user;
	set_ring(v, v->in_user);
	set_fs(v, uf->fs_base);
}

/* ---- exits ----------------------------------------------------------------------- */

static void on_trap(struct dune_vcpu *v)
{
	struct dune_regs *g = R(v);
	uintptr_t sp = g->rsp;
	uintptr_t ist_lo = (uintptr_t)v->pc->ist1, ist_hi = (uintptr_t)(v->pc + 1);
	struct ctx c;

	if (dune_trace)
		dune_warn("dune-trace: vcpu %d trap exit at rip %#llx rsp %#llx: frame %#llx %#llx "
			  "%#llx %#llx", v->index, (unsigned long long)g->rip, (unsigned long long)sp,
			  (unsigned long long)((uint64_t *)sp)[0], (unsigned long long)((uint64_t *)sp)[1],
			  (unsigned long long)((uint64_t *)sp)[2], (unsigned long long)((uint64_t *)sp)[3]);
	if (sp < ist_lo || sp + 7 * 8 > ist_hi)
		dune_fatal_exit(v, SIGSEGV, "trap exit with the stack outside the IST stacks");
	const uint64_t *fr = (const uint64_t *)sp;
	uint64_t vec = fr[0], err = fr[1];
	c.r = *g;
	c.r.rip = fr[2];
	c.r.rflags = fr[4];
	c.r.rsp = fr[5];
	c.err = (uint32_t)err;
	if (dune_g.cpl == 0)
		c.in_user = (fr[3] & 3) == 3;
	else
		c.in_user = v->in_user;
	if (c.r.rip >= (uintptr_t)__dune_idt_stubs && c.r.rip < (uintptr_t)__dune_cpl0_end) {
		char why[96];
		snprintf(why, sizeof(why),
			 "exception %llu (error %#llx) inside libdune's CPL-0 stubs at %#llx, "
			 "cs %#llx rflags %#llx rsp %#llx",
			 (unsigned long long)vec, (unsigned long long)err,
			 (unsigned long long)fr[2], (unsigned long long)fr[3],
			 (unsigned long long)fr[4], (unsigned long long)fr[5]);
		dune_fatal_exit(v, SIGSEGV, why);
	}
	if (vec == T_DBLFLT || vec == T_MCHK || vec == T_NMI) {
		char why[64];
		snprintf(why, sizeof(why), "fatal exception %llu", (unsigned long long)vec);
		dune_fatal_exit(v, vec == T_MCHK ? SIGBUS : SIGSEGV, why);
	}
	uint64_t cr2 = 0;
	if (vec == T_PGFLT)
		cr2 = S(v)->cr2;
	if (dune_trace)
		dune_warn("dune-trace: vcpu %d trap %llu err %#x rip %#llx rsp %#llx cr2 %#llx%s",
			  v->index, (unsigned long long)vec, c.err, (unsigned long long)c.r.rip,
			  (unsigned long long)c.r.rsp, (unsigned long long)cr2,
			  c.in_user ? " (ring 3)" : "");
	if (vec == T_PGFLT) {
		v->stats.page_faults++;
		/* Dune ring-0 code is never "user" in its error codes, whatever its CPL. */
		if (!c.in_user)
			c.err &= ~(uint32_t)FEC_U;
	}
	v->stats.exit_trap++;
	place_upcall(v, &c, DUNE_UPC_TRAP, vec, 0, 0, cr2, 0);
}

static void on_hypercall(struct dune_vcpu *v)
{
	struct dune_regs *g = R(v);
	long ret = -ENOSYS;

	v->stats.exit_hypercall++;
	if (dune_trace)
		dune_warn("dune-trace: vcpu %d hypercall %llu (%#llx, %#llx)", v->index,
			  (unsigned long long)g->rax, (unsigned long long)g->rdi,
			  (unsigned long long)g->rsi);
	switch (g->rax) {
	case DUNE_HC_TRET:
		trap_return(v, g->rdi);
		return;
	case DUNE_HC_BACK:
		ret = dune_layout_back(g->rdi, g->rsi);
		break;
	case DUNE_HC_VMA: {
		struct dune_hc_vma *out = (struct dune_hc_vma *)(uintptr_t)g->rsi;
		uintptr_t s, e;
		int prot;
		ret = dune_host_vma(g->rdi, &s, &e, &prot);
		if (ret == 0) {
			out->start = s;
			out->end = e;
			out->prot = prot;
		}
		break;
	}
	case DUNE_HC_JUMP_USER: {
		struct dune_tf *tf = (struct dune_tf *)(uintptr_t)g->rdi;
		if (v->kctx || v->in_user) {
			ret = -EBUSY;
			break;
		}
		v->kctx = (struct dune_tf *)(uintptr_t)g->rsi;
		regs_from_tf(g, tf);
		tf->cs = GD_UT | 3;
		tf->ss = GD_UD | 3;
		dune_g.bk->dirty(v->h, 1);
		v->in_user = 1;
		set_ring(v, 1);
		set_fs(v, v->pc->ufs_base);
		return;
	}
	case DUNE_HC_RET_USER: {
		const struct dune_tf *k = v->kctx;
		if (!k) {
			ret = -EINVAL;
			break;
		}
		long val = (long)g->rdi;
		v->kctx = NULL;
		memset(g, 0, sizeof(*g));
		g->rax = (uint64_t)val;
		g->rip = k->rip;
		g->rsp = k->rsp;
		g->rflags = (k->rflags & RFLAGS_SAFE) | 0x2 | RFLAGS_IF;
		dune_g.bk->dirty(v->h, 1);
		v->in_user = 0;
		set_ring(v, 0);
		set_fs(v, v->kfs_base);
		return;
	}
	case DUNE_HC_IPI:
		ret = dune_g.bk->send_ipi((uint32_t)g->rdi, (uint8_t)g->rsi);
		break;
	case DUNE_HC_EXIT:
		dune_exit_process((int)g->rdi);
	}
	g->rax = (uint64_t)ret;
	dune_g.bk->dirty(v->h, 1);
}

static void on_syscall(struct dune_vcpu *v)
{
	struct dune_regs *g = R(v);

	v->stats.exit_syscall++;
	if (dune_trace)
		dune_warn("dune-trace: vcpu %d syscall %llu (%#llx, %#llx, %#llx) rip %#llx rcx %#llx "
			  "rbx %#llx", v->index, (unsigned long long)g->rax, (unsigned long long)g->rdi,
			  (unsigned long long)g->rsi, (unsigned long long)g->rdx,
			  (unsigned long long)g->rip, (unsigned long long)g->rcx,
			  (unsigned long long)g->rbx);
	if (v->in_user) {
		/* Dune ring 3: the registered handler decides (ARG3 = r10, as the original). */
		struct ctx c;
		current_ctx(v, &c);
		c.r.rip = g->rcx;
		c.r.rflags = g->r11;
		c.r.rcx = g->r10;
		c.in_user = 1;
		place_upcall(v, &c, DUNE_UPC_USER_SYSCALL, g->rax, 0, 0, 0, 1);
		return;
	}
	dune_host_syscall(v, g);
}

/* A guest access to guest-physical memory nothing backs: back its window if the host has
 * memory there, and complete the access the hypervisor decoded. */
static void on_mmio(struct dune_vcpu *v, const struct dune_exit *x)
{
	uintptr_t va = dune_layout_pa_to_va(x->gpa);
	uintptr_t s, e;
	int prot;
	char why[128];

	v->stats.exit_mmio++;
	if (va && dune_host_vma(va, &s, &e, &prot) == 0 && dune_layout_back(va, 1) == 0) {
		if (x->mmio_write)
			memcpy((void *)va, x->mmio_data, x->mmio_len);
		else
			memcpy(x->mmio_data, (void *)va, x->mmio_len);
		return;
	}
	snprintf(why, sizeof(why), "access to guest-physical 0x%llx, which nothing backs",
		 (unsigned long long)x->gpa);
	dune_fatal_exit(v, SIGSEGV, why);
}

/* Before entering the guest: a missed shootdown, then host signals (when the guest can
 * take an interrupt). One upcall at a time: each returns here through DUNE_HC_TRET.
 * Nothing is placed while the guest is inside libdune's CPL-0 stubs (interrupts off, a
 * frame half built on the interrupt stack): the backend is asked to exit again once the
 * stub has returned and the guest can take an interrupt. */
static void before_entry(struct dune_vcpu *v)
{
	int flush = atomic_load(&v->pc->tlb_ack) < dune_tlb_generation();
	/* A signal waits while its own handler runs (as sa_mask would have it). */
	uint64_t p = atomic_load(&v->pending_sigs) & ~v->sigs_in_handler;
	uintptr_t rip = (uintptr_t)R(v)->rip;

	if (!flush && !p)
		return;
	if (v->async_exit ||
	    (rip >= (uintptr_t)__dune_idt_stubs && rip < (uintptr_t)__dune_cpl0_end)) {
		dune_g.bk->irq_window(v->h, 1);
		return;
	}
	if (flush) {
		dune_upcall(v, DUNE_UPC_FLUSH, 0, 0);
		return;
	}
	if (!(R(v)->rflags & RFLAGS_IF)) {
		dune_g.bk->irq_window(v->h, 1); /* Dune code runs with interrupts off */
		return;
	}
	if (p) {
		int sig = __builtin_ctzll(p);
		atomic_fetch_and(&v->pending_sigs, ~(1ull << sig));
		v->stats.signals++;
		v->sigs_in_handler |= 1ull << sig;
		dune_upcall(v, DUNE_UPC_SIGNAL, (uint64_t)(DUNE_SIGNAL_INTR_BASE + sig), 0);
	}
}

/* A triple fault leaves the vCPU reset: say where it last entered the guest and which of
 * the structures exception delivery needs the page table lacks. */
static void explain_shutdown(struct dune_vcpu *v, uint64_t rip, uint64_t rsp)
{
	const struct {
		const char *what;
		uint64_t va;
	} need[] = {
		{"IDT", dune_g.idt_base},
		{"GDT", (uint64_t)(uintptr_t)v->pc->gdt},
		{"TSS", (uint64_t)(uintptr_t)&v->pc->tss},
		{"IST 1", v->pc->tss.ist[0] - 8},
		{"IST 2", v->pc->tss.ist[1] - 8},
		{"IST 3", v->pc->tss.ist[2] - 8},
		{"entry RIP", rip},
		{"entry RSP", rsp - 8},
	};
	char line[160];

	snprintf(line, sizeof(line), "dune: vCPU %d last entered the guest at RIP %#llx RSP %#llx\n",
		 v->index, (unsigned long long)rip, (unsigned long long)rsp);
	say(line);
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		int level;
		ptent_t *p = dune_vm_walk(pgroot, need[i].va, &level);
		ptent_t e = p ? __atomic_load_n(p, __ATOMIC_RELAXED) : 0;
		if (e & PTE_P)
			continue;
		snprintf(line, sizeof(line), "dune: the %s at %#llx is not mapped (entry %#llx)\n",
			 need[i].what, (unsigned long long)need[i].va, (unsigned long long)e);
		say(line);
	}
}

static __attribute__((noreturn)) void run_loop(struct dune_vcpu *v)
{
	struct dune_exit x;
	char why[160];

	for (;;) {
		atomic_store(&v->state, VCPU_IN_GUEST);
		before_entry(v);
		uint64_t rip = R(v)->rip, rsp = R(v)->rsp;
		dune_g.bk->vcpu_run(v->h, &x);
		v->async_exit = 0;
		atomic_store(&v->state, VCPU_OUT);
		v->stats.exits++;
		switch (x.kind) {
		case DUNE_EXIT_IO:
			if (x.port == DUNE_PORT_SYSCALL)
				on_syscall(v);
			else if (x.port == DUNE_PORT_TRAP)
				on_trap(v);
			else if (x.port == DUNE_PORT_HCALL)
				on_hypercall(v);
			else {
				snprintf(why, sizeof(why), "I/O to port %#x", x.port);
				dune_fatal_exit(v, SIGSEGV, why);
			}
			break;
		case DUNE_EXIT_SIGNAL:
			v->async_exit = 1;
			v->stats.exit_signal++;
			if (dune_trace)
				dune_warn("dune-trace: vcpu %d interrupted by a signal at rip %#llx "
					  "rsp %#llx cs %#x", v->index, (unsigned long long)R(v)->rip,
					  (unsigned long long)R(v)->rsp, S(v)->cs);
			break;
		case DUNE_EXIT_MMIO:
			on_mmio(v, &x);
			break;
		case DUNE_EXIT_HLT:
			v->stats.exit_other++;
			break;
		case DUNE_EXIT_IRQ_WINDOW: /* before_entry places what it held back */
			v->stats.exit_other++;
			dune_g.bk->irq_window(v->h, 0);
			break;
		case DUNE_EXIT_FAULT:
			dune_fatal_exit(v, SIGSEGV,
					"the host memory behind a guest mapping is gone (unmapped "
					"outside Dune mode, or past the end of a mapped file)");
		case DUNE_EXIT_SHUTDOWN:
			explain_shutdown(v, rip, rsp);
			dune_fatal_exit(v, SIGSEGV, "triple fault (no usable IDT or stack)");
		case DUNE_EXIT_EMULATION:
			dune_fatal_exit(v, SIGILL,
					"the hypervisor could not emulate an instruction of guest "
					"CPL-0 code");
		case DUNE_EXIT_OTHER:
		default:
			snprintf(why, sizeof(why), "unexpected exit (reason %u, errno %d)",
				 x.raw_reason, x.err);
			dune_fatal_exit(v, SIGSEGV, why);
		}
	}
}

/* First run of a vCPU by the thread that called dune_enter(), on its host stack. */
void dune_vcpu_boot(struct dune_vcpu *v)
{
	struct dune_regs *g = R(v);
	const char *t = getenv("DUNE_TRACE");

	dune_trace = t && *t && *t != '0';
	memset(g, 0, sizeof(*g));
	g->rbx = v->entry.rbx;
	g->rbp = v->entry.rbp;
	g->r12 = v->entry.r12;
	g->r13 = v->entry.r13;
	g->r14 = v->entry.r14;
	g->r15 = v->entry.r15;
	g->rsp = v->entry.rsp;
	g->rip = v->entry.rip;
	g->rflags = (v->entry.rflags & RFLAGS_SAFE) | 0x2 | RFLAGS_IF;
	dune_g.bk->dirty(v->h, 1);
	run_loop(v);
}
