/* backend_kmod.c -- libdune over /dev/dune, the original Dune kernel module's ABI.
 *
 * The module runs the thread itself: DUNE_ENTER returns only when Dune mode ends, system
 * calls are VMMCALLs it executes in the kernel, nested paging is filled on demand (no
 * memslots), and nothing returns to user space on a trap. So what the KVM backend's host
 * loop does (run.c, hostsys.c) happens here in Dune ring 0, at real CPL 0: the entry,
 * system-call and trap paths are in kmod_guest.S, and this file holds their C halves --
 * the vCPU boot, the calls libdune must follow (mapping calls, fork, arch_prctl), trap
 * dispatch into the shared trap.c, ring 3, and emulated IPIs -- plus the device and the
 * thread's exit path in normal mode. docs/libdune.md ("Backends") and docs/kmod.md.
 *
 * The module has no x2APIC: an IPI is a bit in the target's struct dune_percpu plus a
 * tgkill of DUNE_KMOD_IPI_SIGNAL, which the module injects as interrupt
 * DUNE_SIGNAL_INTR_BASE + DUNE_KMOD_IPI_SIGNAL; its handler runs the pending vectors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h> /* CLONE_*, struct clone_args */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backend.h"
#include "dune_internal.h"
#include "dune_ioctl.h"

#ifndef SYS_clone3
#define SYS_clone3 435
#endif

#define MSR_FS_BASE 0xc0000100
#define MSR_GS_BASE 0xc0000101
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MSR_LSTAR 0xc0000082
#define MSR_SFMASK 0xc0000084

struct kmod_vcpu {
	struct dune_config conf; /* first: the assembly reaches it as the handle */
	struct dune_vcpu *v;
	struct dune_regs regs;   /* views for the core's messages */
	struct dune_sregs sregs;
};

struct dune_kmod_clone {
	struct dune_regs r;      /* the calling context: rax = nr, arguments, rip, rsp */
	uint64_t new_stack;      /* the child's stack, when the call gives one */
};

static int dune_fd = -1;
static struct dune_layout layout;

/* kmod_guest.S */
int __dune_kmod_enter(int fd, struct dune_config *conf) HIDDEN;
void __dune_kmod_reenter(int fd, struct dune_config *conf) HIDDEN __attribute__((noreturn));
long __dune_kmod_clone(struct dune_kmod_clone *c) HIDDEN;
long __dune_kmod_clone_thread(const struct dune_regs *r) HIDDEN;
void __dune_kmod_to_user(struct dune_tf *tf, struct dune_percpu *pc, uint64_t fs) HIDDEN
	__attribute__((noreturn));
void __dune_kmod_to_kernel(const struct dune_tf *k, long ret) HIDDEN __attribute__((noreturn));
extern char __dune_kmod_guest_start[] HIDDEN;
extern char __dune_kmod_syscall[] HIDDEN;
/* host.S, hostsys.c, entry.c */
void __dune_resume_host(const struct dune_regs *r, const void *xsave, uint64_t mask,
			int *consumed) HIDDEN __attribute__((noreturn));
void dune_vcpu_release(struct dune_vcpu *v) HIDDEN;
void __dune_upcall(struct dune_upcall_frame *f) HIDDEN;

/* Called from assembly only. */
void __dune_kmod_guest_boot(struct dune_vcpu *v) HIDDEN;
void __dune_kmod_exited(int fd, void *handle) HIDDEN __attribute__((noreturn));
void __dune_kmod_syscall_slow(struct dune_regs *r) HIDDEN;
void __dune_kmod_fork_child(struct dune_kmod_clone *c, uint64_t sp) HIDDEN
	__attribute__((noreturn));
void __dune_kmod_upcall(struct dune_upcall_frame *f) HIDDEN;
void __dune_kmod_stack_overflow(struct dune_upcall_frame *f) HIDDEN __attribute__((noreturn));

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return lo | (uint64_t)hi << 32;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

/* A system call made by the module directly (never through LSTAR). */
static inline long vmmcall6(long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
			    uint64_t a4, uint64_t a5)
{
	long ret;
	register uint64_t r10 __asm__("r10") = a3;
	register uint64_t r8 __asm__("r8") = a4;
	register uint64_t r9 __asm__("r9") = a5;
	__asm__ volatile("vmmcall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

/* ---- the device ---------------------------------------------------------------- */

static void ipi_host_side(int sig)
{
	(void)sig; /* outside Dune mode: the pending bits wait for the next interrupt */
}

int dune_kmod_set_signals(uint64_t mask)
{
	mask |= 1ull << (DUNE_KMOD_IPI_SIGNAL - 1);
	if (dune_fd >= 0 && ioctl(dune_fd, DUNE_SET_SIGNALS, &mask) < 0)
		return -errno;
	return 0;
}

static int kmod_open(struct dune_vm_info *info)
{
	if (dune_fd < 0)
		dune_fd = open("/dev/dune", O_RDWR | O_CLOEXEC);
	if (dune_fd < 0) {
		int e = errno;
		if (e == ENOENT)
			dune_warn("dune: DUNE_BACKEND=kmod but /dev/dune does not exist (load dune.ko)");
		else
			dune_warn("dune: /dev/dune: %s", e == EACCES ? "permission denied" : strerror(e));
		return -e;
	}
	if (ioctl(dune_fd, DUNE_GET_LAYOUT, &layout) < 0) {
		int e = errno;
		dune_warn("dune: /dev/dune: DUNE_GET_LAYOUT failed: %s", strerror(e));
		close(dune_fd);
		dune_fd = -1;
		return -e;
	}
	/* The IPI signal: a host handler (not SIG_DFL) so that it is always delivered, and
	 * SA_RESTART so that a blocked call it interrupts is made again. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ipi_host_side;
	sa.sa_flags = SA_RESTART;
	sigfillset(&sa.sa_mask);
	int r = sigaction(DUNE_KMOD_IPI_SIGNAL, &sa, NULL) < 0 ? -errno : 0;
	if (r == 0) /* per process (mm): sent again in a fork child */
		r = dune_kmod_set_signals(dune_signal_mask);
	if (r < 0) {
		dune_warn("dune: /dev/dune: cannot register signals: %s", strerror(-r));
		return r;
	}
	unsigned a, b, c, d;
	__asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0x80000001u), "c"(0));
	info->max_vcpus = DUNE_MAX_VCPUS;
	info->phys_bits = __builtin_ctzll(layout.phys_limit);
	info->max_slots = 1 << 30; /* no memslots */
	info->xsave_size = 4096;
	info->big_1g_pages = (d >> 26) & 1;
	return dune_layout_init_fixed(layout.phys_limit, layout.base_map, layout.base_stack);
}

/* A fork child keeps the descriptor (the module keys its state by process); open()
 * sends the signal mask again. */
static void kmod_forget(void)
{
}

static int kmod_map_window(int slot, uint64_t gpa, uint64_t size, void *hva)
{
	(void)slot, (void)gpa, (void)size, (void)hva;
	return 0; /* nested paging is filled on demand by the module */
}

static int kmod_vcpu_create(int index, void **handle)
{
	struct kmod_vcpu *k = mmap(NULL, sizeof(*k), PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	(void)index;
	if (k == MAP_FAILED)
		return -errno;
	*handle = k;
	return 0;
}

static void kmod_vcpu_forget(void *h)
{
	(void)h; /* a fork child's copy: the parent's vCPU is not ours to touch */
}

static int kmod_vcpu_setup(void *h, const struct dune_vcpu_boot *boot)
{
	(void)h, (void)boot; /* the guest loads its own tables (__dune_kmod_guest_boot) */
	return 0;
}

static struct dune_regs *kmod_regs(void *h)
{
	struct kmod_vcpu *k = h;
	const struct dune_config *c = &k->conf;
	struct dune_regs *r = &k->regs;

	r->rax = c->rax, r->rbx = c->rbx, r->rcx = c->rcx, r->rdx = c->rdx;
	r->rsi = c->rsi, r->rdi = c->rdi, r->rsp = c->rsp, r->rbp = c->rbp;
	r->r8 = c->r8, r->r9 = c->r9, r->r10 = c->r10, r->r11 = c->r11;
	r->r12 = c->r12, r->r13 = c->r13, r->r14 = c->r14, r->r15 = c->r15;
	r->rip = c->rip, r->rflags = c->rflags;
	return r;
}

static struct dune_sregs *kmod_sregs(void *h)
{
	struct kmod_vcpu *k = h;
	k->sregs.cs = GD_KT;
	k->sregs.ss = GD_KD;
	k->sregs.cr3 = k->conf.cr3;
	return &k->sregs;
}

const struct dune_backend_ops dune_kmod_backend = {
	.name = "kmod",
	.kernel_loop = 1,
	.open = kmod_open,
	.forget = kmod_forget,
	.map_window = kmod_map_window,
	.vcpu_create = kmod_vcpu_create,
	.vcpu_forget = kmod_vcpu_forget,
	.vcpu_setup = kmod_vcpu_setup,
	.regs = kmod_regs,
	.sregs = kmod_sregs,
};

/* ---- entering and leaving -------------------------------------------------------- */

/* dune_enter() on a prepared vCPU (entry.c): 0 in Dune mode, or -errno. */
int dune_kmod_enter(struct dune_vcpu *v)
{
	struct kmod_vcpu *k = v->h;
	struct dune_percpu *pc = v->pc;
	uint8_t *ist[3] = {pc->ist1 + sizeof(pc->ist1), pc->ist2 + sizeof(pc->ist2),
			   pc->ist3 + sizeof(pc->ist3)};

	/* Each IST top holds the percpu pointer just above the CPU's frame. */
	for (int i = 0; i < 3; i++) {
		((uint64_t *)ist[i])[-1] = (uint64_t)(uintptr_t)pc;
		((uint64_t *)ist[i])[-2] = (uint64_t)(uintptr_t)pc;
		pc->tss.ist[i] = (uint64_t)(uintptr_t)(ist[i] - 16);
	}
	pc->tss.rsp[0] = pc->tss.ist[0];
	pc->kfs_base = v->kfs_base;
	pc->tstack_lo = (uint64_t)(uintptr_t)v->tstack;
	pc->tstack_hi = (uint64_t)(uintptr_t)(v->tstack + v->tstack_size);
	pc->xsave_size = dune_g.xsave_size;
	pc->xsave_mask = dune_g.xsave_mask;
	pc->in_user = 0;
	k->v = v;
	memset(&k->conf, 0, sizeof(k->conf));
	k->conf.rip = (uint64_t)(uintptr_t)__dune_kmod_guest_start;
	k->conf.rdi = (uint64_t)(uintptr_t)v;
	k->conf.rflags = 0x2; /* interrupts off until the IDT is loaded */
	k->conf.cr3 = dune_va_to_pa(pgroot);
	int r = __dune_kmod_enter(dune_fd, &k->conf);
	if (r < 0) {
		dune_self = NULL;
		dune_warn("dune: DUNE_ENTER failed: %s%s", strerror(-r),
			  r == -EBUSY ? " (KVM holds SVM: no VMs may run beside Dune)" : "");
	}
	return r;
}

/* The first code in Dune mode (CPL 0, interrupts off). */
void __dune_kmod_guest_boot(struct dune_vcpu *v)
{
	struct dune_percpu *pc = v->pc;
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) gdtr = {sizeof(pc->gdt) - 1, (uint64_t)(uintptr_t)pc->gdt},
				  idtr = {IDT_ENTRIES * 16 - 1, dune_g.idt_base};

	pc->gdt[GD_TSS >> 3] &= ~(2ull << 40); /* a reused vCPU's TSS was left busy */
	__asm__ volatile("lgdt %0" ::"m"(gdtr));
	__asm__ volatile("ltr %w0" ::"r"((uint16_t)GD_TSS));
	__asm__ volatile("lidt %0" ::"m"(idtr));
	wrmsr(MSR_LSTAR, (uint64_t)(uintptr_t)__dune_kmod_syscall);
	wrmsr(MSR_SFMASK, 0x700); /* TF IF DF */
	wrmsr(MSR_KERNEL_GS_BASE, (uint64_t)(uintptr_t)pc);
	dune_self = v;
	atomic_store(&v->state, VCPU_IN_GUEST);
	atomic_store(&pc->tlb_ack, dune_tlb_generation()); /* the entry flushed the TLB */
}

/* Dune mode ended (normal mode, below the guest's stack). */
void __dune_kmod_exited(int fd, void *handle)
{
	struct kmod_vcpu *k = handle; /* conf is its first member */
	struct dune_config *c = &k->conf;
	struct dune_vcpu *v = k->v;
	char why[200];

	switch (c->ret) {
	case DUNE_RET_SIGNAL: /* Linux ran host handlers on the way out; carry on */
		v->stats.exit_signal++;
		/* Re-entry flushes the TLB (first entry of a DUNE_ENTER): rounds up to now are
		 * covered; later ones see the vCPU in the guest. */
		atomic_store(&v->state, VCPU_IN_GUEST);
		atomic_store(&v->pc->tlb_ack, dune_tlb_generation());
		__dune_kmod_reenter(fd, c);
	case DUNE_RET_EXIT:
		if (c->rax == SYS_exit) {
			uint64_t all = ~0ull;
			syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, NULL, 8);
			dune_self = NULL;
			dune_vcpu_release(v);
			syscall(SYS_exit, (int)c->status);
		}
		dune_exit_process((int)c->status);
	case DUNE_RET_EPT_VIOLATION:
		snprintf(why, sizeof(why),
			 "access to guest-physical 0x%llx, which is not memory of this process "
			 "(or not with this permission)", (unsigned long long)c->status);
		break;
	case DUNE_RET_UNHANDLED_VMEXIT:
		snprintf(why, sizeof(why), "the guest cannot continue (SVM exit %#llx%s)",
			 (unsigned long long)c->status,
			 c->status == 0x7f ? ": triple fault, no usable IDT or stack" : "");
		break;
	case DUNE_RET_NOENTER:
		snprintf(why, sizeof(why), "Dune mode could not be entered again: %s",
			 strerror((int)-c->status));
		break;
	default:
		snprintf(why, sizeof(why), "DUNE_ENTER returned %lld (status %lld)",
			 (long long)c->ret, (long long)c->status);
	}
	dune_fatal_exit(v, SIGSEGV, why);
}

/* ---- system calls libdune follows (Dune ring 0, interrupts as the caller had them) --- */

void __dune_kmod_fork_child(struct dune_kmod_clone *c, uint64_t sp)
{
	struct dune_regs r = c->r;

	dune_after_fork_child();
	if (c->new_stack)
		r.rsp = sp;
	__dune_resume_host(&r, NULL, 0, NULL);
}

static long arch_prctl(uint64_t code, uint64_t addr)
{
	switch (code) {
	case 0x1002: /* ARCH_SET_FS: the guest's register, and the thread's for normal mode */
	case 0x1001: { /* ARCH_SET_GS */
		long r = vmmcall6(SYS_arch_prctl, code, addr, 0, 0, 0, 0);
		if (r == 0) {
			wrmsr(code == 0x1002 ? MSR_FS_BASE : MSR_GS_BASE, addr);
			if (code == 0x1002)
				dune_self->kfs_base = dune_self->pc->kfs_base = addr;
		}
		return r;
	}
	case 0x1003: /* ARCH_GET_FS */
	case 0x1004: /* ARCH_GET_GS */
		*(uint64_t *)(uintptr_t)addr = rdmsr(code == 0x1003 ? MSR_FS_BASE : MSR_GS_BASE);
		return 0;
	default:
		return vmmcall6(SYS_arch_prctl, code, addr, 0, 0, 0, 0);
	}
}

void __dune_kmod_syscall_slow(struct dune_regs *r)
{
	long nr = (long)r->rax;
	const uint64_t a[6] = {r->rdi, r->rsi, r->rdx, r->r10, r->r8, r->r9};
	uint64_t flags = SIGCHLD, stack = 0, aux;
	long ret;

	switch (nr) {
	case SYS_clone3:
		if (a[1] < 64) {
			r->rax = (uint64_t)-EINVAL;
			return;
		}
		flags = ((const struct clone_args *)(uintptr_t)a[0])->flags;
		stack = ((const struct clone_args *)(uintptr_t)a[0])->stack;
		if (stack)
			stack += ((const struct clone_args *)(uintptr_t)a[0])->stack_size;
		/* fall through */
	case SYS_clone:
	case SYS_fork:
		if (nr == SYS_clone) {
			flags = a[0];
			stack = a[1];
		}
		if (flags & CLONE_VM) { /* threads: a fresh TLS, nothing to fix in the child */
			ret = __dune_kmod_clone_thread(r);
		} else {
			struct dune_kmod_clone c = {.r = *r, .new_stack = stack};
			c.r.rip = r->rcx;
			ret = __dune_kmod_clone(&c);
		}
		break;
	case SYS_arch_prctl:
		ret = arch_prctl(a[0], a[1]);
		break;
	default: /* the mapping calls: the page table follows (hostsys.c, mirror.c) */
		dune_map_lock();
		aux = dune_mapping_aux(nr, a, vmmcall6);
		ret = vmmcall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
		if (!(ret < 0 && ret > -4096))
			dune_mirror_after_syscall(nr, a, ret, aux);
		dune_map_unlock();
		break;
	}
	r->rax = (uint64_t)ret;
}

/* ---- traps ---------------------------------------------------------------------- */

/* Runs the IPI vectors pending for this vCPU (the IPI signal's interrupt). */
static void run_ipis(struct dune_upcall_frame *f)
{
	struct dune_percpu *pc = dune_self->pc;

	for (int w = 0; w < 4; w++) {
		uint64_t bits = atomic_exchange(&pc->ipi[w], 0);
		while (bits) {
			int vec = w * 64 + __builtin_ctzll(bits);
			bits &= bits - 1;
			dune_trap_dispatch(&f->tf, vec, 0);
		}
	}
}

void __dune_kmod_upcall(struct dune_upcall_frame *f)
{
	struct dune_vcpu *v = dune_self;
	int vec = (int)f->vec;

	if (f->kind == DUNE_UPC_TRAP && vec == DUNE_SIGNAL_INTR_BASE + DUNE_KMOD_IPI_SIGNAL) {
		run_ipis(f);
		return;
	}
	if (f->kind == DUNE_UPC_TRAP && vec > DUNE_SIGNAL_INTR_BASE) {
		/* A host signal: it waits while its own handler runs (as sa_mask would have
		 * it), through the thread's signal mask, which the module honours. */
		uint64_t bit = 1ull << (vec - DUNE_SIGNAL_INTR_BASE - 1);
		v->stats.signals++;
		f->kind = DUNE_UPC_SIGNAL;
		vmmcall6(SYS_rt_sigprocmask, SIG_BLOCK, (uint64_t)(uintptr_t)&bit, 0, 8, 0, 0);
		__dune_upcall(f);
		vmmcall6(SYS_rt_sigprocmask, SIG_UNBLOCK, (uint64_t)(uintptr_t)&bit, 0, 8, 0, 0);
		return;
	}
	if (f->kind == DUNE_UPC_TRAP) {
		v->stats.exit_trap++;
		if (vec == T_PGFLT)
			v->stats.page_faults++;
		else
			f->cr2 = 0;
		if (vec == T_DBLFLT || vec == T_MCHK || vec == T_NMI) {
			dune_printf("dune: fatal exception %d\n", vec);
			dune_dump_trap_frame(&f->tf);
			dune_die_signal(vec == T_MCHK ? SIGBUS : SIGSEGV);
		}
	}
	__dune_upcall(f);
}

void __dune_kmod_stack_overflow(struct dune_upcall_frame *f)
{
	dune_warn("dune: vCPU %d: handler stack overflow (handlers nest too deep); the last "
		  "trap: vector %llu at rip %#llx, cr2 %#llx", dune_self ? dune_self->index : -1,
		  (unsigned long long)f->vec, (unsigned long long)f->tf.rip,
		  (unsigned long long)f->cr2);
	dune_die_signal(SIGSEGV);
}

/* ---- ring 3, IPIs, hypercalls ---------------------------------------------------- */

int dune_kmod_jump_to_user(struct dune_tf *tf, struct dune_tf *kctx)
{
	struct dune_vcpu *v = dune_self;

	if (!v || v->kctx)
		return -EBUSY;
	v->kctx = kctx;
	__dune_kmod_to_user(tf, v->pc, v->pc->ufs_base);
}

void dune_kmod_ret_from_user(long ret)
{
	struct dune_vcpu *v = dune_self;
	const struct dune_tf *k = v ? v->kctx : NULL;

	if (!k) {
		dune_warn("dune: dune_ret_from_user() outside dune_jump_to_user()");
		dune_die_signal(SIGSEGV);
	}
	v->kctx = NULL;
	__dune_kmod_to_kernel(k, ret);
}

int dune_kmod_send_ipi(uint32_t apic_id, uint8_t vector)
{
	struct dune_vcpu *t = apic_id < DUNE_MAX_VCPUS ? dune_vcpus[apic_id] : NULL;

	if (!t || atomic_load(&t->state) == VCPU_FREE)
		return -ESRCH;
	atomic_fetch_or(&t->pc->ipi[vector / 64], 1ull << (vector % 64));
	return (int)syscall(SYS_tgkill, dune_g.pid, t->tid, DUNE_KMOD_IPI_SIGNAL);
}

long dune_kmod_hcall(long nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
	(void)a2;
	switch (nr) {
	case DUNE_HC_BACK:
		return dune_layout_back(a0, a1);
	case DUNE_HC_VMA: {
		struct dune_hc_vma *out = (struct dune_hc_vma *)(uintptr_t)a1;
		uintptr_t s, e;
		int prot, r = dune_host_vma(a0, &s, &e, &prot);
		if (r == 0) {
			out->start = s;
			out->end = e;
			out->prot = prot;
		}
		return r;
	}
	case DUNE_HC_IPI:
		return dune_kmod_send_ipi((uint32_t)a0, (uint8_t)a1);
	case DUNE_HC_EXIT:
		dune_exit_process((int)a0);
	}
	return -ENOSYS;
}
