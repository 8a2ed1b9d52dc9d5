/*
 * drt_entry.S - entering and leaving Dune mode, and the guest's interrupt entry points.
 *
 * The protocol is the original libdune's: the DUNE_ENTER ioctl starts the guest at
 * drt_guest_start on the caller's own stack (conf->rsp points at the registers saved
 * here), so in guest mode drt_enter_asm "returns" 0. The ioctl itself returns only when
 * Dune mode ends; then no C frame of the caller is trustworthy any more (the guest ran on
 * that stack), so the exit path switches to a fresh spot below the guest's stack pointer
 * before calling C, and re-entry (DUNE_RET_SIGNAL) is made from assembly.
 */
#define __ASSEMBLY__
#include "dune_ioctl.h"

#define NR_ioctl 16

/* ioctl(fd = rdi, DUNE_ENTER, conf = rsi), keeping fd in r12 and conf in r13 (the kernel
 * preserves both); on 0, Dune mode has ended: on to drt_after_ioctl. */
.macro DUNE_ENTER_IOCTL
	mov	%rdi, %r12
	mov	%rsi, %r13
	mov	%rsi, %rdx
	mov	$IOCTL_DUNE_ENTER, %esi
	mov	$NR_ioctl, %eax
	syscall
	test	%rax, %rax
	jz	drt_after_ioctl
.endm

	.text

/* int drt_enter_asm(int fd, struct dune_config *conf): -errno, or 0 in guest mode */
	.globl	drt_enter_asm
	.type	drt_enter_asm, @function
drt_enter_asm:
	pushfq
	push	%rbx
	push	%rbp
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	mov	%rsp, DUNE_CFG_RSP(%rsi)
	DUNE_ENTER_IOCTL
	pop	%r15			/* never entered: return the error */
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%rbp
	pop	%rbx
	popfq
	ret
	.size	drt_enter_asm, . - drt_enter_asm

/* Dune mode ended: r12 = fd, r13 = conf (the kernel keeps both across the syscall). */
drt_after_ioctl:
	mov	DUNE_CFG_RSP(%r13), %rsp
	sub	$256, %rsp		/* below the guest's red zone */
	and	$-16, %rsp
	mov	%r12, %rdi
	mov	%r13, %rsi
	call	drt_on_exit
	ud2

/* void drt_reenter(int fd, struct dune_config *conf): after DUNE_RET_SIGNAL */
	.globl	drt_reenter
	.type	drt_reenter, @function
drt_reenter:
	DUNE_ENTER_IOCTL
	mov	%rax, DUNE_CFG_STATUS(%r13)
	movq	$DUNE_RET_NOENTER, DUNE_CFG_RET(%r13)
	jmp	drt_after_ioctl
	.size	drt_reenter, . - drt_reenter

/* The first guest instruction: rsp points at what drt_enter_asm pushed. */
	.globl	drt_guest_start
	.type	drt_guest_start, @function
drt_guest_start:
	call	drt_guest_boot
	xor	%eax, %eax
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%rbp
	pop	%rbx
	popfq				/* the caller's flags: interrupts on again */
	ret
	.size	drt_guest_start, . - drt_guest_start

/*
 * Interrupt entry points, 16 bytes apart: vector i at drt_trap_stubs + 16 * i. Those without
 * a CPU-pushed error code push a 0, so every frame has the struct drt_tf layout.
 */
	.globl	drt_trap_stubs
	.align	16
drt_trap_stubs:
	i = 0
	.rept	256
	.align	16
	.if i <> 8 && (i < 10 || i > 14) && i <> 17 && i <> 21 && i <> 29 && i <> 30
	pushq	$0
	.endif
	pushq	$i
	jmp	drt_trap_common
	i = i + 1
	.endr

drt_trap_common:
	push	%rax
	push	%rbx
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	push	%rbp
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	mov	%rsp, %rbx		/* struct drt_tf */
	cld
	sub	drt_fpu_area(%rip), %rsp
	and	$-64, %rsp
	cmpb	$0, drt_use_xsave(%rip)
	je	1f
	xor	%eax, %eax		/* XSAVE leaves the header's reserved bytes alone */
	mov	$8, %ecx
	lea	512(%rsp), %rdi
	rep stosq
	mov	$-1, %eax
	mov	$-1, %edx
	xsave64	(%rsp)
	jmp	2f
1:	fxsave64 (%rsp)
2:	mov	%rbx, %rdi
	call	drt_trap
	cmpb	$0, drt_use_xsave(%rip)
	je	3f
	mov	$-1, %eax
	mov	$-1, %edx
	xrstor64 (%rsp)
	jmp	4f
3:	fxrstor64 (%rsp)
4:	mov	%rbx, %rsp
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%r11
	pop	%r10
	pop	%r9
	pop	%r8
	pop	%rbp
	pop	%rdi
	pop	%rsi
	pop	%rdx
	pop	%rcx
	pop	%rbx
	pop	%rax
	add	$16, %rsp		/* vector and error code */
	iretq

	.data
	.globl	drt_use_xsave, drt_fpu_area
drt_use_xsave:	.byte 0
	.align	8
drt_fpu_area:	.quad 576

	.section .note.GNU-stack, "", @progbits
