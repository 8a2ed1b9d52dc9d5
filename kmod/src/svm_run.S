/* SPDX-License-Identifier: GPL-2.0 */
/*
 * svm_run.S - the AMD SVM world switch.
 *
 * void __dune_svm_run(u64 vmcb_pa, unsigned long *regs, u64 host_save_pa)
 *
 * Called with interrupts disabled. Everything between CLGI and STGI runs with the global
 * interrupt flag clear, so no interrupt or NMI can see the half-switched state (the guest's
 * GS base is live between VMSAVE and VMLOAD below). The STI makes the host's RFLAGS.IF 1 in
 * the state VMRUN saves: with V_INTR_MASKING that is what lets a physical interrupt end
 * guest mode (#VMEXIT(INTR)) instead of waiting for the guest.
 *
 * VMRUN/#VMEXIT switch RIP, RSP, RAX, RFLAGS, CR0/3/4, EFER, GDTR/IDTR and CS/SS/DS/ES;
 * VMSAVE/VMLOAD switch the rest of the system state the guest may change: FS, GS (with
 * their bases), TR, LDTR, KERNEL_GS_BASE, STAR, LSTAR, CSTAR, SFMASK and SYSENTER_*. The
 * host's are saved right before and restored right after, on this CPU, every time.
 * General-purpose registers other than RAX and RSP are the software's job.
 */
#include <linux/linkage.h>
#include <asm/asm.h>
#include <asm/nospec-branch.h>
#include "regs.h"

#define R(reg) (DUNE_REG_##reg * 8)

SYM_FUNC_START(__dune_svm_run)
	push	%rbp
	mov	%rsp, %rbp
	push	%r15
	push	%r14
	push	%r13
	push	%r12
	push	%rbx
	push	%rsi			/* 16(%rsp): regs */
	push	%rdx			/* 8(%rsp): host save area */
	push	%rdi			/* 0(%rsp): guest VMCB */

	clgi
	sti
	mov	%rdx, %rax
	vmsave	%rax			/* the host's FS/GS/TR/LDTR/syscall MSRs */
	mov	%rdi, %rax
	vmload	%rax			/* the guest's */

	mov	R(RCX)(%rsi), %rcx
	mov	R(RDX)(%rsi), %rdx
	mov	R(RBX)(%rsi), %rbx
	mov	R(RBP)(%rsi), %rbp
	mov	R(RDI)(%rsi), %rdi
	mov	R(R8)(%rsi), %r8
	mov	R(R9)(%rsi), %r9
	mov	R(R10)(%rsi), %r10
	mov	R(R11)(%rsi), %r11
	mov	R(R12)(%rsi), %r12
	mov	R(R13)(%rsi), %r13
	mov	R(R14)(%rsi), %r14
	mov	R(R15)(%rsi), %r15
	mov	R(RSI)(%rsi), %rsi

	mov	(%rsp), %rax
	vmrun	%rax
	/* #VMEXIT: the host's RSP and RAX (the VMCB's address) are back. */
	mov	(%rsp), %rax
	vmsave	%rax			/* the guest's system state, for the next VMLOAD */

	mov	16(%rsp), %rax
	mov	%rcx, R(RCX)(%rax)
	mov	%rdx, R(RDX)(%rax)
	mov	%rbx, R(RBX)(%rax)
	mov	%rbp, R(RBP)(%rax)
	mov	%rsi, R(RSI)(%rax)
	mov	%rdi, R(RDI)(%rax)
	mov	%r8, R(R8)(%rax)
	mov	%r9, R(R9)(%rax)
	mov	%r10, R(R10)(%rax)
	mov	%r11, R(R11)(%rax)
	mov	%r12, R(R12)(%rax)
	mov	%r13, R(R13)(%rax)
	mov	%r14, R(R14)(%rax)
	mov	%r15, R(R15)(%rax)

	mov	8(%rsp), %rax
	vmload	%rax			/* the host's state: its GS base (per-CPU data) is back */

	/* Guest values must not reach speculation; callee-saved ones are popped below. */
	xor	%ecx, %ecx
	xor	%edx, %edx
	xor	%esi, %esi
	xor	%edi, %edi
	xor	%r8d, %r8d
	xor	%r9d, %r9d
	xor	%r10d, %r10d
	xor	%r11d, %r11d

	/* As KVM does after VMRUN: no guest-trained return predictions survive. */
	FILL_RETURN_BUFFER %rax, RSB_CLEAR_LOOPS, X86_FEATURE_RETPOLINE
	UNTRAIN_RET

	cli
	stgi				/* a pending NMI is taken here, in host state */

	add	$24, %rsp
	pop	%rbx
	pop	%r12
	pop	%r13
	pop	%r14
	pop	%r15
	pop	%rbp
	RET
SYM_FUNC_END(__dune_svm_run)
