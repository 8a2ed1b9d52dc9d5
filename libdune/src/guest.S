/* guest.S -- the code libdune runs in the guest around the program's own.
 *
 * Everything at CPL 0 here is a handful of plain integer instructions: on KVM-PVM guest
 * CPL 0 is interpreted by KVM's emulator, which knows no SSE4/AVX/XSAVE and costs about a
 * microsecond per instruction. The real work happens in the host (run.c) or in C code that
 * the host starts in Dune ring 0 through __dune_upcall_entry.
 */
#include "guest_abi.h"

	.section .note.GNU-stack, "", @progbits
	.text

/* LSTAR: every `syscall` of Dune code lands here. The host forwards it and resumes at
 * rcx with rflags = r11, as sysret would. No stack is touched (the caller's red zone). */
	.globl __dune_syscall_entry
	.hidden __dune_syscall_entry
	.type __dune_syscall_entry, @function
	.align 16
__dune_syscall_entry:
	outb	%al, $DUNE_PORT_SYSCALL
	ud2
	.size __dune_syscall_entry, . - __dune_syscall_entry

/* IDT entry points, 16 bytes apart. Every gate uses IST 1, so the CPU pushes the frame on
 * the vCPU's interrupt stack, never on the interrupted one. The stub pushes a zero error
 * code where the CPU pushes none, then the vector; the host reads both and the hardware
 * frame from the stack. */
	.globl __dune_idt_stubs, __dune_cpl0_end
	.hidden __dune_idt_stubs, __dune_cpl0_end
	.align 16
__dune_idt_stubs:
	vector = 0
	.rept 256
	.align 16
	.if vector == 3
	jmp	__dune_bp_entry
	.else
	.if (vector <> 8) && (vector <> 10) && (vector <> 11) && (vector <> 12) && (vector <> 13) && (vector <> 14) && (vector <> 17) && (vector <> 21) && (vector <> 29) && (vector <> 30)
	pushq	$0
	.endif
	pushq	$vector
	.if vector < 32
	jmp	__dune_trap_common
	.else
	jmp	__dune_irq_common
	.endif
	.endif
	vector = vector + 1
	.endr

__dune_trap_common:
	outb	%al, $DUNE_PORT_TRAP
	ud2

/* A local-APIC interrupt: acknowledge it (x2APIC EOI) before leaving, so the next one can
 * arrive while the handler runs. */
__dune_irq_common:
	pushq	%rax
	pushq	%rcx
	pushq	%rdx
	movl	$0x80b, %ecx
	xorl	%eax, %eax
	xorl	%edx, %edx
	wrmsr
	popq	%rdx
	popq	%rcx
	popq	%rax
	outb	%al, $DUNE_PORT_TRAP
	ud2

/* #BP: either a privileged-service call from CPL-3 Dune code (rax = DUNE_PRIV_MAGIC,
 * rdx = operation) or a real breakpoint. Services return with iretq: no host exit. */
__dune_bp_entry:
	cmpq	$DUNE_PRIV_MAGIC32, %rax
	jne	9f
	cmpl	$DUNE_PRIV_INVLPG, %edx
	je	1f
	cmpl	$DUNE_PRIV_FLUSH, %edx
	je	2f
	cmpl	$DUNE_PRIV_LOAD_CR3, %edx
	je	3f
	cmpl	$DUNE_PRIV_WRMSR, %edx
	je	4f
	cmpl	$DUNE_PRIV_RDMSR, %edx
	je	5f
	cmpl	$DUNE_PRIV_INVLPG_N, %edx
	je	6f
9:	pushq	$0
	pushq	$3
	jmp	__dune_trap_common
1:	invlpg	(%rdi)
	xorl	%eax, %eax
	iretq
2:	movq	%cr3, %rax
	movq	%rax, %cr3
	xorl	%eax, %eax
	iretq
3:	movq	%rdi, %cr3
	xorl	%eax, %eax
	iretq
4:	movl	%edi, %ecx
	movq	%rsi, %rax
	movq	%rsi, %rdx
	shrq	$32, %rdx
	wrmsr
	xorl	%eax, %eax
	iretq
5:	movl	%edi, %ecx
	rdmsr
	shlq	$32, %rdx
	orq	%rdx, %rax
	iretq
6:	testq	%rsi, %rsi
	jz	8f
7:	movq	(%rdi), %rax
	invlpg	(%rax)
	addq	$8, %rdi
	decq	%rsi
	jnz	7b
8:	xorl	%eax, %eax
	iretq
__dune_cpl0_end: /* everything from __dune_idt_stubs to here runs at CPL 0 */

/* Where the host starts Dune ring-0 C code (an upcall): rdi = upcall frame, rsi = area for
 * the interrupted FPU/AVX state (0: none), r13 = its XSAVE component mask (0: the CPU has
 * no XSAVE; FXSAVE then). The handler may use any vector register; the state goes back
 * before the host resumes the frame. */
	.globl __dune_upcall_entry
	.hidden __dune_upcall_entry
	.type __dune_upcall_entry, @function
__dune_upcall_entry:
	movq	%rdi, %rbx
	movq	%rsi, %r12
	testq	%r12, %r12
	jz	1f
	testq	%r13, %r13
	jz	3f
	movl	%r13d, %eax
	movq	%r13, %rdx
	shrq	$32, %rdx
	xsave	(%r12)
	jmp	1f
3:	fxsave64 (%r12)
1:	movq	%rbx, %rdi
	call	__dune_upcall
	testq	%r12, %r12
	jz	2f
	testq	%r13, %r13
	jz	4f
	movl	%r13d, %eax
	movq	%r13, %rdx
	shrq	$32, %rdx
	xrstor	(%r12)
	jmp	2f
4:	fxrstor64 (%r12)
2:	movq	%rbx, %rdi
	movl	$DUNE_HC_TRET, %eax
	outb	%al, $DUNE_PORT_HCALL
	ud2
	.size __dune_upcall_entry, . - __dune_upcall_entry

/* int dune_jump_to_user(struct dune_tf *tf): the host runs tf in Dune ring 3 and, when a
 * handler calls dune_ret_from_user(ret), resumes the kernel context saved here (label 1)
 * with rax = ret. Callee-saved registers, MXCSR and the x87 control word survive. */
	.globl dune_jump_to_user
	.type dune_jump_to_user, @function
dune_jump_to_user:
	subq	$(168 + 24), %rsp        /* a struct dune_tf + MXCSR/FCW + alignment */
	movq	%rbx, 64(%rsp)
	movq	%rbp, 72(%rsp)
	movq	%r12, 80(%rsp)
	movq	%r13, 88(%rsp)
	movq	%r14, 96(%rsp)
	movq	%r15, 104(%rsp)
	stmxcsr	168(%rsp)
	fnstcw	172(%rsp)
	leaq	1f(%rip), %rax
	movq	%rax, 128(%rsp)          /* rip */
	movq	%rsp, 152(%rsp)          /* rsp */
	pushfq
	popq	144(%rsp)                /* rflags */
	movq	%rsp, %rsi
	movl	$DUNE_HC_JUMP_USER, %eax
	outb	%al, $DUNE_PORT_HCALL
	/* Only an error (no user context started) returns here, in rax. */
	addq	$(168 + 24), %rsp
	ret
1:	/* resumed by dune_ret_from_user: rsp is the saved one, rax the value */
	ldmxcsr	168(%rsp)
	fldcw	172(%rsp)
	movq	64(%rsp), %rbx
	movq	72(%rsp), %rbp
	movq	80(%rsp), %r12
	movq	88(%rsp), %r13
	movq	96(%rsp), %r14
	movq	104(%rsp), %r15
	addq	$(168 + 24), %rsp
	ret
	.size dune_jump_to_user, . - dune_jump_to_user

	.globl dune_ret_from_user
	.type dune_ret_from_user, @function
dune_ret_from_user:
	movslq	%edi, %rdi
	movl	$DUNE_HC_RET_USER, %eax
	outb	%al, $DUNE_PORT_HCALL
	ud2
	.size dune_ret_from_user, . - dune_ret_from_user
