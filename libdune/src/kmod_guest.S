/* kmod_guest.S -- the kmod backend's entry, system-call and trap paths (/dev/dune).
 *
 * Under /dev/dune the thread runs inside the DUNE_ENTER ioctl and nothing comes back to
 * user space on a trap, so Dune ring 0 (real CPL 0 under SVM) does everything the KVM
 * backend's host loop does: the IDT stubs build the upcall frame (struct
 * dune_upcall_frame, guest_abi.h) on the vCPU's handler stack and call the shared C
 * dispatch, returning with iretq; `syscall` lands at __dune_kmod_syscall (written into
 * LSTAR at boot), which passes plain calls to the module with VMMCALL and takes the few
 * calls libdune must follow (mapping calls, fork, arch_prctl) through C, and turns
 * syscalls of Dune ring 3 into upcalls. The per-vCPU block (struct dune_percpu) is found
 * from the slot above every IST stack top, and through KERNEL_GS_BASE (swapgs) at LSTAR.
 */
#define __ASSEMBLY__
#include "dune_ioctl.h"
#include "guest_abi.h"

#define NR_ioctl 16
#define MSR_FS_BASE 0xc0000100
#define RFLAGS_SAFE 0x40cd5 /* CF PF AF ZF SF DF OF AC: what a frame may restore */
#define KCS 0x10
#define KDS 0x18
#define UCS 0x33
#define UDS 0x2b

	.section .note.GNU-stack, "", @progbits
	.text

.macro PUSH_CALLEE_SAVED
	pushq	%rbx
	pushq	%rbp
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
.endm

.macro POP_CALLEE_SAVED
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbp
	popq	%rbx
.endm

/* ---- entering and leaving ------------------------------------------------------- */

/* int __dune_kmod_enter(int fd, struct dune_config *conf): -errno, or 0 in Dune mode.
 * The guest starts at __dune_kmod_guest_start with rsp = the registers pushed here
 * (conf->rsp) and rdi = conf->rdi (the vCPU). When Dune mode ends the ioctl returns 0 and
 * __dune_kmod_after runs; r12 (fd) and r13 (conf) survive the syscall. */
	.globl __dune_kmod_enter
	.hidden __dune_kmod_enter
	.type __dune_kmod_enter, @function
__dune_kmod_enter:
	pushfq
	PUSH_CALLEE_SAVED
	movq	%rsp, DUNE_CFG_RSP(%rsi)
	movq	%rdi, %r12
	movq	%rsi, %r13
	movq	%rsi, %rdx
	movl	$IOCTL_DUNE_ENTER, %esi
	movl	$NR_ioctl, %eax
	syscall
	testq	%rax, %rax
	jz	__dune_kmod_after
	POP_CALLEE_SAVED
	popfq
	ret
	.size __dune_kmod_enter, . - __dune_kmod_enter

/* Dune mode ended (r12 = fd, r13 = conf): the guest's stack is live above conf->rsp and
 * its red zone, so C runs below both. __dune_kmod_exited never returns. */
__dune_kmod_after:
	movq	DUNE_CFG_RSP(%r13), %rsp
	subq	$256, %rsp
	andq	$-16, %rsp
	movq	%r12, %rdi
	movq	%r13, %rsi
	call	__dune_kmod_exited
	ud2

/* void __dune_kmod_reenter(int fd, struct dune_config *conf): after DUNE_RET_SIGNAL. */
	.globl __dune_kmod_reenter
	.hidden __dune_kmod_reenter
	.type __dune_kmod_reenter, @function
__dune_kmod_reenter:
	movq	%rdi, %r12
	movq	%rsi, %r13
	movq	%rsi, %rdx
	movl	$IOCTL_DUNE_ENTER, %esi
	movl	$NR_ioctl, %eax
	syscall
	testq	%rax, %rax
	jz	__dune_kmod_after
	movq	%rax, DUNE_CFG_STATUS(%r13)
	movq	$DUNE_RET_NOENTER, DUNE_CFG_RET(%r13)
	jmp	__dune_kmod_after
	.size __dune_kmod_reenter, . - __dune_kmod_reenter

/* The first guest instruction (interrupts off): load this vCPU's tables, then return 0
 * from __dune_kmod_enter with the caller's registers and flags. */
	.globl __dune_kmod_guest_start
	.hidden __dune_kmod_guest_start
	.type __dune_kmod_guest_start, @function
__dune_kmod_guest_start:
	call	__dune_kmod_guest_boot
	xorl	%eax, %eax
	POP_CALLEE_SAVED
	popfq
	ret
	.size __dune_kmod_guest_start, . - __dune_kmod_guest_start

/* long __dune_kmod_clone(struct dune_kmod_clone *c): a fork-like clone (no CLONE_VM)
 * with the arguments in c->r. The parent returns the result. The child starts in normal
 * mode right after the VMMCALL (the module resumes a child there when the VMMCALL is at a
 * user address) with rax 0, on the stack it was given, with r12 = c (its copy), and goes
 * on in __dune_kmod_fork_child. */
	.globl __dune_kmod_clone
	.hidden __dune_kmod_clone
	.type __dune_kmod_clone, @function
__dune_kmod_clone:
	PUSH_CALLEE_SAVED
	movq	%rdi, %r12
	movq	0(%r12), %rax
	movq	32(%r12), %rsi
	movq	24(%r12), %rdx
	movq	80(%r12), %r10
	movq	64(%r12), %r8
	movq	72(%r12), %r9
	movq	40(%r12), %rdi
	vmmcall
	testq	%rax, %rax
	jz	1f
	POP_CALLEE_SAVED
	ret
1:	movq	%rsp, %rsi
	andq	$-16, %rsp
	movq	%r12, %rdi
	call	__dune_kmod_fork_child
	ud2
	.size __dune_kmod_clone, . - __dune_kmod_clone

/* long __dune_kmod_clone_thread(const struct dune_regs *r): a clone with CLONE_VM. The
 * child starts (in normal mode) right after the VMMCALL, on the stack the call gives it,
 * with every register as the caller of `syscall` had it (rax 0, rcx = rip), and jumps
 * to r->rip, exactly as natively; the parent returns here with the result. */
	.globl __dune_kmod_clone_thread
	.hidden __dune_kmod_clone_thread
	.type __dune_kmod_clone_thread, @function
__dune_kmod_clone_thread:
	PUSH_CALLEE_SAVED
	movq	0(%rdi), %rax
	movq	8(%rdi), %rbx
	movq	128(%rdi), %rcx
	movq	24(%rdi), %rdx
	movq	32(%rdi), %rsi
	movq	56(%rdi), %rbp
	movq	64(%rdi), %r8
	movq	72(%rdi), %r9
	movq	80(%rdi), %r10
	movq	88(%rdi), %r11
	movq	96(%rdi), %r12
	movq	104(%rdi), %r13
	movq	112(%rdi), %r14
	movq	120(%rdi), %r15
	movq	40(%rdi), %rdi
	vmmcall
	testq	%rax, %rax
	jnz	1f
	jmp	*%rcx			/* the child: the caller's registers, the stack it got */
1:	POP_CALLEE_SAVED
	ret
	.size __dune_kmod_clone_thread, . - __dune_kmod_clone_thread

/* ---- system calls --------------------------------------------------------------- */

/* LSTAR. SFMASK clears TF, IF and DF; rcx = return address, r11 = flags; rsp is the
 * caller's (nothing is written within its red zone). */
	.globl __dune_kmod_syscall
	.hidden __dune_kmod_syscall
	.type __dune_kmod_syscall, @function
	.align 16
__dune_kmod_syscall:
	swapgs
	cmpq	$0, %gs:PC_IN_USER
	jne	__dune_kmod_user_syscall
	incq	%gs:PC_SYSCALLS
	swapgs
	cmpq	$512, %rax
	jae	1f
	btq	%rax, __dune_kmod_slow_calls(%rip)
	jc	__dune_kmod_slow
1:	testl	$0x400, %r11d
	jz	2f
	std
2:	testl	$0x200, %r11d
	jz	3f
	sti			/* IF on at VMMCALL: a signal can interrupt a blocked call */
3:	vmmcall
	jmp	*%rcx			/* a vfork child, in normal mode, also goes on here */

/* The calls libdune follows: a struct dune_regs below the caller's red zone, then C. */
__dune_kmod_slow:
	leaq	-(128 + 144)(%rsp), %rsp
	movq	%rax, 0(%rsp)
	movq	%rbx, 8(%rsp)
	movq	%rcx, 16(%rsp)
	movq	%rdx, 24(%rsp)
	movq	%rsi, 32(%rsp)
	movq	%rdi, 40(%rsp)
	leaq	(128 + 144)(%rsp), %rax
	movq	%rax, 48(%rsp)
	movq	%rbp, 56(%rsp)
	movq	%r8, 64(%rsp)
	movq	%r9, 72(%rsp)
	movq	%r10, 80(%rsp)
	movq	%r11, 88(%rsp)
	movq	%r12, 96(%rsp)
	movq	%r13, 104(%rsp)
	movq	%r14, 112(%rsp)
	movq	%r15, 120(%rsp)
	movq	%rcx, 128(%rsp)
	movq	%r11, 136(%rsp)
	movq	%rsp, %rbx
	andq	$-16, %rsp
	testl	$0x200, %r11d
	jz	1f
	sti
1:	movq	%rbx, %rdi
	call	__dune_kmod_syscall_slow
	cli
	movq	%rbx, %rsp
	movq	0(%rsp), %rax
	movq	8(%rsp), %rbx
	movq	24(%rsp), %rdx
	movq	32(%rsp), %rsi
	movq	40(%rsp), %rdi
	movq	56(%rsp), %rbp
	movq	64(%rsp), %r8
	movq	72(%rsp), %r9
	movq	80(%rsp), %r10
	movq	96(%rsp), %r12
	movq	104(%rsp), %r13
	movq	112(%rsp), %r14
	movq	120(%rsp), %r15
	movq	128(%rsp), %rcx
	movq	136(%rsp), %r11
	movq	48(%rsp), %rsp
	testl	$0x400, %r11d
	jz	2f
	std
2:	testl	$0x200, %r11d
	jz	3f
	sti
3:	jmp	*%rcx

/* A syscall of Dune ring 3 (gs = the percpu block, interrupts off): an upcall of kind
 * DUNE_UPC_USER_SYSCALL on the top of the handler stack, resumed as sysret would. */
__dune_kmod_user_syscall:
	movq	%rsp, %gs:PC_SCRATCH
	movq	%gs:PC_TSTACK_HI, %rsp
	subq	$DUNE_UF_SIZE, %rsp
	andq	$-64, %rsp
	movq	%rdi, UF_RDI(%rsp)
	movq	%rsi, UF_RSI(%rsp)
	movq	%rdx, UF_RDX(%rsp)
	movq	%r10, UF_RCX(%rsp)	/* ARG3 is r10, as the original arranged */
	movq	%r8, UF_R8(%rsp)
	movq	%r9, UF_R9(%rsp)
	movq	%r10, UF_R10(%rsp)
	movq	%r11, UF_R11(%rsp)
	movq	%rbx, UF_RBX(%rsp)
	movq	%rbp, UF_RBP(%rsp)
	movq	%r12, UF_R12(%rsp)
	movq	%r13, UF_R13(%rsp)
	movq	%r14, UF_R14(%rsp)
	movq	%r15, UF_R15(%rsp)
	movq	%rax, UF_RAX(%rsp)
	movq	%rax, UF_VEC(%rsp)
	movq	$0, UF_ERR(%rsp)
	movq	%rcx, UF_RIP(%rsp)
	movq	$UCS, UF_CS(%rsp)
	movq	%r11, UF_RFLAGS(%rsp)
	movq	%gs:PC_SCRATCH, %rax
	movq	%rax, UF_RSP(%rsp)
	movq	$UDS, UF_SS(%rsp)
	movq	$DUNE_UPC_USER_SYSCALL, UF_KIND(%rsp)
	movq	$0, UF_ARG0(%rsp)
	movq	$0, UF_ARG1(%rsp)
	movq	$0, UF_CR2(%rsp)
	movq	$1, UF_IN_USER(%rsp)
	movq	$1, UF_SYSRET(%rsp)
	movq	%gs:PC_SELF, %rbx
	swapgs
	movq	%rsp, %r14
	jmp	__dune_kmod_from_user

/* ---- traps ---------------------------------------------------------------------- */

/* IDT entry points, 16 bytes apart. A stub pushes a zero error code where the CPU pushes
 * none, then the vector. Every gate has an IST stack whose top slot holds the percpu
 * pointer: [rsp] vector, error code, rip, cs, rflags, rsp, ss, percpu. */
	.globl __dune_kmod_idt_stubs
	.hidden __dune_kmod_idt_stubs
	.align 16
__dune_kmod_idt_stubs:
	vector = 0
	.rept 256
	.align 16
	.if (vector <> 8) && (vector <> 10) && (vector <> 11) && (vector <> 12) && (vector <> 13) && (vector <> 14) && (vector <> 17) && (vector <> 21) && (vector <> 29) && (vector <> 30)
	pushq	$0
	.endif
	pushq	$vector
	jmp	__dune_kmod_trap
	vector = vector + 1
	.endr

/* On the IST stack, interrupts off: the upcall frame goes on the handler stack (below the
 * interrupted handler and its red zone when a handler was interrupted). */
__dune_kmod_trap:
	cld
	pushq	%rax
	pushq	%rbx
	pushq	%rcx
	/* 0 rcx, 8 rbx, 16 rax, 24 vector, 32 error, 40 rip, 48 cs, 56 rflags, 64 rsp,
	 * 72 ss, 80 percpu */
	movq	80(%rsp), %rbx
	movq	PC_TSTACK_HI(%rbx), %rcx
	testb	$3, 48(%rsp)
	jnz	1f
	movq	64(%rsp), %rax
	cmpq	PC_TSTACK_LO(%rbx), %rax
	jbe	1f
	cmpq	%rcx, %rax
	ja	1f
	leaq	-128(%rax), %rcx
1:	subq	$DUNE_UF_SIZE, %rcx
	andq	$-64, %rcx
	movq	%rdi, UF_RDI(%rcx)
	movq	%rsi, UF_RSI(%rcx)
	movq	%rdx, UF_RDX(%rcx)
	movq	%r8, UF_R8(%rcx)
	movq	%r9, UF_R9(%rcx)
	movq	%r10, UF_R10(%rcx)
	movq	%r11, UF_R11(%rcx)
	movq	%rbp, UF_RBP(%rcx)
	movq	%r12, UF_R12(%rcx)
	movq	%r13, UF_R13(%rcx)
	movq	%r14, UF_R14(%rcx)
	movq	%r15, UF_R15(%rcx)
	movq	%rcx, %r14		/* r14: the upcall frame */
	popq	UF_RCX(%r14)
	popq	UF_RBX(%r14)
	popq	UF_RAX(%r14)
	popq	UF_VEC(%r14)
	popq	UF_ERR(%r14)
	popq	UF_RIP(%r14)
	popq	UF_CS(%r14)
	popq	UF_RFLAGS(%r14)
	popq	UF_RSP(%r14)
	popq	UF_SS(%r14)
	movq	%cr2, %rax
	movq	%rax, UF_CR2(%r14)
	movq	$DUNE_UPC_TRAP, UF_KIND(%r14)
	xorl	%eax, %eax
	movq	%rax, UF_ARG0(%r14)
	movq	%rax, UF_ARG1(%r14)
	movq	%rax, UF_SYSRET(%r14)
	movq	%rax, UF_IN_USER(%r14)
	movq	%rax, UF_FS(%r14)
	testb	$3, UF_CS(%r14)
	jz	__dune_kmod_run_upcall
	movq	$1, UF_IN_USER(%r14)

/* From Dune ring 3 (r14 = frame, rbx = percpu): save ring 3's FS base, load ring 0's. */
__dune_kmod_from_user:
	movl	$MSR_FS_BASE, %ecx
	rdmsr
	shlq	$32, %rdx
	orq	%rdx, %rax
	movq	%rax, UF_FS(%r14)
	movq	PC_KFS(%rbx), %rax
	movq	%rax, %rdx
	shrq	$32, %rdx
	wrmsr
	movq	$0, PC_IN_USER(%rbx)

/* r14 = frame, rbx = percpu, interrupts off: save the FPU/AVX state below the frame,
 * run __dune_kmod_upcall with interrupts on, then resume the frame. */
__dune_kmod_run_upcall:
	movq	%rbx, UF_PC(%r14)
	movabsq	$DUNE_UF_MAGIC_VALUE, %rax
	movq	%rax, UF_MAGIC(%r14)
	movq	%r14, %r12
	subq	PC_XSAVE_SIZE(%rbx), %r12
	andq	$-64, %r12		/* r12: the FPU/AVX save area */
	movq	%r12, UF_XSAVE(%r14)
	leaq	-64(%r12), %rax
	andq	$-16, %rax
	movq	PC_TSTACK_LO(%rbx), %rdx
	addq	$8192, %rdx
	cmpq	%rdx, %rax
	jb	9f
	movq	%rax, %rsp
	movq	PC_XSAVE_MASK(%rbx), %r13
	testq	%r13, %r13
	jz	1f
	xorl	%eax, %eax		/* a standard-format header */
	movq	%rax, 512(%r12)
	movq	%rax, 520(%r12)
	movq	%rax, 528(%r12)
	movq	%rax, 536(%r12)
	movq	%rax, 544(%r12)
	movq	%rax, 552(%r12)
	movq	%rax, 560(%r12)
	movq	%rax, 568(%r12)
	movl	%r13d, %eax
	movq	%r13, %rdx
	shrq	$32, %rdx
	xsave64	(%r12)
	jmp	2f
1:	fxsave64 (%r12)
2:	sti
	movq	%r14, %rdi
	call	__dune_kmod_upcall
	cli
	testq	%r13, %r13
	jz	3f
	movl	%r13d, %eax
	movq	%r13, %rdx
	shrq	$32, %rdx
	xrstor64 (%r12)
	jmp	4f
3:	fxrstor64 (%r12)
4:	movq	%r14, %rdi
	jmp	__dune_kmod_tret
9:	movq	%r14, %rdi
	call	__dune_kmod_stack_overflow
	ud2

/* Resume the context saved in the upcall frame at rdi (interrupts off). Its rip, cs,
 * rflags, rsp, ss are an iretq frame. */
__dune_kmod_tret:
	movq	$0, UF_MAGIC(%rdi)
	movq	UF_RFLAGS(%rdi), %rax
	andq	$RFLAGS_SAFE, %rax
	orq	$0x202, %rax
	movq	%rax, UF_RFLAGS(%rdi)
	cmpq	$0, UF_SYSRET(%rdi)
	je	1f
	movq	UF_RCX(%rdi), %rdx	/* as the original's sysret path: r10 = tf->rcx */
	movq	%rdx, UF_R10(%rdi)
	movq	UF_RIP(%rdi), %rdx
	movq	%rdx, UF_RCX(%rdi)
	movq	%rax, UF_R11(%rdi)
1:	cmpq	$0, UF_IN_USER(%rdi)
	jne	2f
	movq	$KCS, UF_CS(%rdi)
	movq	$KDS, UF_SS(%rdi)
	jmp	__dune_kmod_iret
2:	movq	UF_PC(%rdi), %rbx
	movq	$1, PC_IN_USER(%rbx)
	movq	UF_FS(%rdi), %rax
	movq	%rax, %rdx
	shrq	$32, %rdx
	movl	$MSR_FS_BASE, %ecx
	wrmsr
	movq	$UCS, UF_CS(%rdi)
	movq	$UDS, UF_SS(%rdi)
/* rdi = a struct dune_tf whose rip..ss are a complete iretq frame. */
__dune_kmod_iret:
	leaq	UF_RIP(%rdi), %rsp
	movq	(UF_RAX - UF_RIP)(%rsp), %rax
	movq	(UF_RBX - UF_RIP)(%rsp), %rbx
	movq	(UF_RCX - UF_RIP)(%rsp), %rcx
	movq	(UF_RDX - UF_RIP)(%rsp), %rdx
	movq	(UF_RSI - UF_RIP)(%rsp), %rsi
	movq	(UF_RBP - UF_RIP)(%rsp), %rbp
	movq	(UF_R8 - UF_RIP)(%rsp), %r8
	movq	(UF_R9 - UF_RIP)(%rsp), %r9
	movq	(UF_R10 - UF_RIP)(%rsp), %r10
	movq	(UF_R11 - UF_RIP)(%rsp), %r11
	movq	(UF_R12 - UF_RIP)(%rsp), %r12
	movq	(UF_R13 - UF_RIP)(%rsp), %r13
	movq	(UF_R14 - UF_RIP)(%rsp), %r14
	movq	(UF_R15 - UF_RIP)(%rsp), %r15
	movq	(UF_RDI - UF_RIP)(%rsp), %rdi
	iretq

/* ---- Dune ring 3 ---------------------------------------------------------------- */

/* void __dune_kmod_to_user(struct dune_tf *tf, struct dune_percpu *pc, uint64_t fs):
 * runs tf in Dune ring 3 with FS base fs (tf's selectors and flags are set here). */
	.globl __dune_kmod_to_user
	.hidden __dune_kmod_to_user
	.type __dune_kmod_to_user, @function
__dune_kmod_to_user:
	cli
	movq	%rdi, %r8
	movq	$1, PC_IN_USER(%rsi)
	movq	%rdx, %rax
	shrq	$32, %rdx
	movl	$MSR_FS_BASE, %ecx
	wrmsr
	movq	%r8, %rdi
	movq	$UCS, UF_CS(%rdi)
	movq	$UDS, UF_SS(%rdi)
	movq	UF_RFLAGS(%rdi), %rax
	andq	$RFLAGS_SAFE, %rax
	orq	$0x202, %rax
	movq	%rax, UF_RFLAGS(%rdi)
	jmp	__dune_kmod_iret
	.size __dune_kmod_to_user, . - __dune_kmod_to_user

/* void __dune_kmod_to_kernel(const struct dune_tf *k, long ret): back to the kernel
 * context dune_jump_to_user saved, with rax = ret (from a handler: its frames are
 * abandoned). */
	.globl __dune_kmod_to_kernel
	.hidden __dune_kmod_to_kernel
	.type __dune_kmod_to_kernel, @function
__dune_kmod_to_kernel:
	cli
	movq	%rsi, %rax
	movq	UF_RSP(%rdi), %rsp
	pushq	UF_RFLAGS(%rdi)
	pushq	UF_RIP(%rdi)
	movq	8(%rsp), %rsi
	andq	$~0x200, 8(%rsp)	/* IF comes back with the jump */
	popq	%rcx
	popfq
	testl	$0x200, %esi
	jz	1f
	sti
1:	jmp	*%rcx
	.size __dune_kmod_to_kernel, . - __dune_kmod_to_kernel

	.section .rodata
	.align 8
/* Bitmap of the system calls __dune_kmod_syscall_slow takes: mmap 9, mprotect 10,
 * munmap 11, brk 12, mremap 25, shmat 30, clone 56, fork 57, shmdt 67, arch_prctl 158,
 * pkey_mprotect 329, clone3 435. */
__dune_kmod_slow_calls:
	.quad (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12) | (1 << 25) | (1 << 30) | (1 << 56) | (1 << 57)
	.quad (1 << (67 - 64))
	.quad (1 << (158 - 128))
	.quad 0
	.quad 0
	.quad (1 << (329 - 320))
	.quad (1 << (435 - 384))
	.quad 0
