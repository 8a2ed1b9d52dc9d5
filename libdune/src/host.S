/* host.S -- host-side register juggling: entering Dune mode, clone children, thread exit.
 * Offsets follow struct dune_regs (backend.h): rax rbx rcx rdx rsi rdi rsp rbp r8..r15
 * rip rflags. */

#define RAX 0
#define RBX 8
#define RCX 16
#define RDX 24
#define RSI 32
#define RDI 40
#define RSP 48
#define RBP 56
#define R8 64
#define R9 72
#define R10 80
#define R11 88
#define R12 96
#define R13 104
#define R14 112
#define R15 120
#define RIP 128
#define RFLAGS 136

	.section .note.GNU-stack, "", @progbits
	.text

/* int __dune_enter_trampoline(struct dune_regs *save, void *host_stack_top, vcpu)
 * Saves where the caller continues (callee-saved registers, rsp, rip = label 1), moves to
 * the host stack and boots the vCPU there. The guest resumes at label 1 with those
 * registers, so the call returns 0 in Dune mode; the thread's host side never returns. */
	.globl __dune_enter_trampoline
	.hidden __dune_enter_trampoline
	.type __dune_enter_trampoline, @function
__dune_enter_trampoline:
	movq	%rbx, RBX(%rdi)
	movq	%rbp, RBP(%rdi)
	movq	%r12, R12(%rdi)
	movq	%r13, R13(%rdi)
	movq	%r14, R14(%rdi)
	movq	%r15, R15(%rdi)
	movq	%rsp, RSP(%rdi)
	leaq	1f(%rip), %rax
	movq	%rax, RIP(%rdi)
	pushfq
	popq	RFLAGS(%rdi)
	movq	%rsi, %rsp
	movq	%rdx, %rdi
	call	dune_vcpu_boot
	ud2
1:	xorl	%eax, %eax
	ret
	.size __dune_enter_trampoline, . - __dune_enter_trampoline

/* long __dune_host_clone(const struct dune_regs *sys, void *ctx)
 * Performs the clone-family syscall described by `sys` (rax = nr, args in rdi rsi rdx r10
 * r8 r9). The parent gets the result; the child, in normal mode, calls
 * __dune_clone_child(ctx) on whatever stack it got, which never returns. */
	.globl __dune_host_clone
	.hidden __dune_host_clone
	.type __dune_host_clone, @function
__dune_host_clone:
	pushq	%rbx
	pushq	%rbp
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	movq	%rsi, %r12
	movq	RAX(%rdi), %rax
	movq	RSI(%rdi), %rsi
	movq	RDX(%rdi), %rdx
	movq	R10(%rdi), %r10
	movq	R8(%rdi), %r8
	movq	R9(%rdi), %r9
	movq	RDI(%rdi), %rdi
	syscall
	testq	%rax, %rax
	jz	1f
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbp
	popq	%rbx
	ret
1:	andq	$-16, %rsp
	movq	%r12, %rdi
	call	__dune_clone_child
	ud2
	.size __dune_host_clone, . - __dune_host_clone

/* void __dune_resume_host(const struct dune_regs *r, const void *xsave, uint64_t mask,
 *                         int *consumed)
 * Continues guest code in normal mode with registers r, as a syscall returning 0 would:
 * rax = 0, rcx = rip, r11 = rflags. Restores the FPU/AVX image first (if any; mask 0 means
 * an FXSAVE image, for CPUs without XSAVE), then tells
 * the parent (consumed = 1) that it no longer reads the parent's memory. Nothing is
 * written below the target stack pointer (the red zone of the code that made the call). */
	.globl __dune_resume_host
	.hidden __dune_resume_host
	.type __dune_resume_host, @function
__dune_resume_host:
	movq	%rdi, %r12
	movq	%rcx, %r13
	testq	%rsi, %rsi
	jz	1f
	testq	%rdx, %rdx
	jz	3f
	movl	%edx, %eax
	shrq	$32, %rdx
	xrstor	(%rsi)
	jmp	1f
3:	fxrstor64 (%rsi) /* no XSAVE on this CPU */
1:	testq	%r13, %r13
	jz	2f
	movl	$1, (%r13)
2:	movq	%r12, %rdi
	pushq	RFLAGS(%rdi)
	popfq
	movq	RBX(%rdi), %rbx
	movq	RDX(%rdi), %rdx
	movq	RSI(%rdi), %rsi
	movq	RBP(%rdi), %rbp
	movq	R8(%rdi), %r8
	movq	R9(%rdi), %r9
	movq	R10(%rdi), %r10
	movq	RFLAGS(%rdi), %r11
	movq	R12(%rdi), %r12
	movq	R13(%rdi), %r13
	movq	R14(%rdi), %r14
	movq	R15(%rdi), %r15
	xorl	%eax, %eax
	movq	RSP(%rdi), %rsp
	movq	RIP(%rdi), %rcx
	movq	RDI(%rdi), %rdi
	jmp	*%rcx
	.size __dune_resume_host, . - __dune_resume_host

/* void __dune_exit_thread(void *stack, size_t len, int status): unmaps the host stack the
 * caller runs on, then exits the thread, touching no memory in between. Signals must be
 * blocked already. */
	.globl __dune_exit_thread
	.hidden __dune_exit_thread
	.type __dune_exit_thread, @function
__dune_exit_thread:
	movl	%edx, %r12d
	movl	$11, %eax /* munmap */
	syscall
	movl	%r12d, %edi
	movl	$60, %eax /* exit */
	syscall
	ud2
	.size __dune_exit_thread, . - __dune_exit_thread
