/* trap.c -- exceptions, interrupts and ring-3 system calls, in Dune ring 0.
 *
 * The host turns every guest exception, interrupt and host signal into an upcall: a
 * struct dune_upcall_frame on the vCPU's handler stack, with the interrupted context in
 * its struct dune_tf, and __dune_upcall() below runs in Dune ring 0 on that stack. When
 * it returns, the (possibly changed) trap frame is resumed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dune_internal.h"

void __dune_upcall(struct dune_upcall_frame *f) HIDDEN;

static dune_intr_cb intr_cbs[IDT_ENTRIES];
static dune_pgflt_cb pgflt_cb;
static dune_syscall_cb syscall_cb;

/* The vector being handled (dune_signal()'s wrappers need the signal number). */
DUNE_TLS int dune_current_vector HIDDEN;

int dune_register_intr_handler(int vec, dune_intr_cb cb)
{
	if (vec < 0 || vec >= IDT_ENTRIES)
		return -EINVAL;
	intr_cbs[vec] = cb;
	return 0;
}

void dune_register_pgflt_handler(dune_pgflt_cb cb)
{
	pgflt_cb = cb;
}

void dune_register_syscall_handler(dune_syscall_cb cb)
{
	syscall_cb = cb;
}

HIDDEN dune_intr_cb dune_intr_handler(int vec)
{
	return vec >= 0 && vec < IDT_ENTRIES ? intr_cbs[vec] : NULL;
}

/* ---- dumps and death ------------------------------------------------------------- */

static int readable(const void *va)
{
	int level;
	ptent_t *p = pgroot ? dune_vm_walk(pgroot, (uintptr_t)va, &level) : NULL;
	return p && (*p & PTE_P);
}

void dune_dump_trap_frame(struct dune_tf *tf)
{
	dune_printf("dune: --- Begin Trap Dump ---\n");
	dune_printf("dune: RIP 0x%016llx\n", (unsigned long long)tf->rip);
	dune_printf("dune: CS 0x%02x SS 0x%02x\n", tf->cs, tf->ss);
	dune_printf("dune: ERR 0x%08x RFLAGS 0x%08llx\n", tf->err,
		    (unsigned long long)tf->rflags);
	dune_printf("dune: RAX 0x%016llx RCX 0x%016llx\n", (unsigned long long)tf->rax,
		    (unsigned long long)tf->rcx);
	dune_printf("dune: RDX 0x%016llx RBX 0x%016llx\n", (unsigned long long)tf->rdx,
		    (unsigned long long)tf->rbx);
	dune_printf("dune: RSP 0x%016llx RBP 0x%016llx\n", (unsigned long long)tf->rsp,
		    (unsigned long long)tf->rbp);
	dune_printf("dune: RSI 0x%016llx RDI 0x%016llx\n", (unsigned long long)tf->rsi,
		    (unsigned long long)tf->rdi);
	dune_printf("dune: R8  0x%016llx R9  0x%016llx\n", (unsigned long long)tf->r8,
		    (unsigned long long)tf->r9);
	dune_printf("dune: R10 0x%016llx R11 0x%016llx\n", (unsigned long long)tf->r10,
		    (unsigned long long)tf->r11);
	dune_printf("dune: R12 0x%016llx R13 0x%016llx\n", (unsigned long long)tf->r12,
		    (unsigned long long)tf->r13);
	dune_printf("dune: R14 0x%016llx R15 0x%016llx\n", (unsigned long long)tf->r14,
		    (unsigned long long)tf->r15);
	const uint64_t *sp = (const uint64_t *)(uintptr_t)tf->rsp;
	for (int i = 0; i < 8; i++) {
		if (!readable(&sp[i])) {
			dune_printf("dune: stack: unmapped at 0x%016llx\n",
				    (unsigned long long)(uintptr_t)&sp[i]);
			break;
		}
		dune_printf("dune: RSP%+-4d 0x%016llx\n", i * 8, (unsigned long long)sp[i]);
	}
	const unsigned char *ip = (const unsigned char *)(uintptr_t)tf->rip;
	if (readable(ip) && readable(ip + 15)) {
		char hex[64];
		for (int i = 0; i < 16; i++) {
			hex[3 * i] = "0123456789abcdef"[ip[i] >> 4];
			hex[3 * i + 1] = "0123456789abcdef"[ip[i] & 15];
			hex[3 * i + 2] = ' ';
		}
		hex[47] = 0;
		dune_printf("dune: code at RIP: %s\n", hex);
	}
	dune_printf("dune: --- End Trap Dump ---\n");
}

/* The signal an unhandled exception ends the process with, as Linux chooses for a
 * native fault of the same kind. */
static int signal_for(int vec)
{
	switch (vec) {
	case T_DIVIDE:
	case T_FPERR:
	case T_SIMDERR:
	case T_DEVICE:
		return SIGFPE;
	case T_DEBUG:
	case T_BRKPT:
		return SIGTRAP;
	case T_ILLOP:
		return SIGILL;
	case T_ALIGN:
	case T_STACK:
	case T_SEGNP:
	case T_MCHK:
		return SIGBUS;
	default:
		return SIGSEGV;
	}
}

static const char *vector_name(int vec)
{
	static const char *const n[] = {"divide error", "debug", "NMI", "breakpoint",
					"overflow", "bound range", "invalid opcode",
					"device not available", "double fault", "?", "invalid TSS",
					"segment not present", "stack fault", "general protection",
					"page fault", "?", "x87 error", "alignment check",
					"machine check", "SIMD error"};
	return vec >= 0 && vec < 20 ? n[vec] : "exception";
}

void dune_die_signal(int sig)
{
	struct sigaction sa;
	sigset_t set;

	if (dune_stats_enabled_at_exit())
		dune_stats_print(2);
	__builtin_memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigaction(sig, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
	syscall(SYS_exit_group, 128 + sig);
	__builtin_unreachable();
}

/* ---- dispatch -------------------------------------------------------------------- */

/* A page fault the page table does not explain: the translation is there and allows the
 * access. Shadow-paging hosts can deliver such faults (a stale shadow entry, or KVM-PVM
 * delivering not-present faults straight to the guest); flushing the page and retrying
 * is the answer, a few times in a row at most. */
static DUNE_TLS uintptr_t spurious_addr;
static DUNE_TLS int spurious_count;

static int spurious_fault(uintptr_t addr, uint64_t fec)
{
	int level;
	ptent_t *p = dune_vm_walk(pgroot, addr, &level);
	ptent_t e = p ? __atomic_load_n(p, __ATOMIC_ACQUIRE) : 0;

	if (!(e & PTE_P) || ((fec & FEC_W) && !(e & PTE_W)) || ((fec & FEC_I) && (e & PTE_NX)) ||
	    ((fec & FEC_U) && !(e & PTE_U)) || (fec & FEC_RSV)) {
		spurious_count = 0;
		return 0;
	}
	if (PGADDR(addr) == spurious_addr && ++spurious_count > 3)
		return 0;
	if (PGADDR(addr) != spurious_addr) {
		spurious_addr = PGADDR(addr);
		spurious_count = 1;
	}
	if (spurious_count > 1)
		dune_flush_tlb(); /* a retry after a flush of the page: everything */
	else
		dune_flush_tlb_one(addr);
	return 1;
}

int dune_fault_is_spurious(uintptr_t addr, uint64_t fec)
{
	return spurious_fault(addr, fec);
}

void dune_trap_dispatch(struct dune_tf *tf, int vec, uint64_t cr2)
{
	if (vec == DUNE_TLB_VECTOR) {
		dune_tlb_handle_ipi();
		return;
	}
	if (vec == T_PGFLT && (spurious_fault(cr2, tf->err) || dune_mirror_fault(cr2, tf->err)))
		return;
	dune_current_vector = vec;
	if (intr_cbs[vec]) {
		intr_cbs[vec](tf);
		return;
	}
	if (vec == T_PGFLT && pgflt_cb) {
		pgflt_cb(cr2, tf->err, tf);
		return;
	}
	if (vec >= 32) {
		dune_printf("dune: interrupt %d with no handler, ignored\n", vec);
		return;
	}
	if (vec == T_PGFLT)
		dune_printf("dune: unhandled page fault at 0x%llx, error code 0x%x\n",
			    (unsigned long long)cr2, tf->err);
	else
		dune_printf("dune: unhandled exception %d (%s), error code 0x%x\n", vec,
			    vector_name(vec), tf->err);
	dune_dump_trap_frame(tf);
	dune_die_signal(signal_for(vec));
}

void dune_syscall_dispatch(struct dune_tf *tf)
{
	if (syscall_cb) {
		syscall_cb(tf);
		return;
	}
	dune_printf("dune: system call %llu from ring 3 and no syscall handler\n",
		    (unsigned long long)tf->rax);
	dune_dump_trap_frame(tf);
	dune_die_signal(SIGSYS);
}

void dune_passthrough_syscall(struct dune_tf *tf)
{
	tf->rax = (uint64_t)dune_raw_syscall6((long)tf->rax, (long)tf->rdi, (long)tf->rsi,
					      (long)tf->rdx, (long)tf->rcx, (long)tf->r8,
					      (long)tf->r9);
}

void __dune_upcall(struct dune_upcall_frame *f)
{
	switch (f->kind) {
	case DUNE_UPC_TRAP:
		dune_trap_dispatch(&f->tf, (int)f->vec, f->cr2);
		break;
	case DUNE_UPC_SIGNAL:
		dune_current_vector = (int)f->vec;
		if (intr_cbs[f->vec])
			intr_cbs[f->vec](&f->tf);
		break;
	case DUNE_UPC_USER_SYSCALL:
		dune_syscall_dispatch(&f->tf);
		break;
	case DUNE_UPC_MIRROR: {
		const uint64_t a[6] = {f->tf.rdi, f->tf.rsi, f->tf.rdx,
				       f->tf.r10, f->tf.r8,  f->tf.r9};
		dune_mirror_after_syscall((long)f->vec, a, (long)f->tf.rax, f->arg0);
		dune_map_unlock(); /* taken by the host before the syscall */
		break;
	}
	case DUNE_UPC_FLUSH:
		dune_tlb_catch_up();
		break;
	}
}
