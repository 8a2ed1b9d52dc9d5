// SPDX-License-Identifier: GPL-2.0
/*
 * svm.c - AMD SVM: the hardware half of /dev/dune.
 *
 * One VMCB per Dune thread. The guest starts as the calling thread (its FS/GS bases, its
 * FPU state, the host's STAR/SFMASK and PAT) in 64-bit ring 0 with paging on, and runs with
 * nested paging (mmu.c), interrupt virtualization (V_INTR_MASKING: physical interrupts and
 * NMIs always end guest mode) and ASID 1.
 *
 * What the guest can touch, and why that is safe:
 *  - VMRUN/#VMEXIT and VMLOAD/VMSAVE switch every MSR the guest may write (FS/GS/
 *    KERNEL_GS bases, STAR/LSTAR/CSTAR/SFMASK, SYSENTER_*); all other MSRs, all I/O ports,
 *    CR0 (beyond TS/MP), CR4, debug registers, RDPMC, INVD/WBINVD and XSETBV are
 *    intercepted and answered with #GP, the SVM instructions with #UD. So EFER, PAT, TSC,
 *    XCR0, SPEC_CTRL and the host's breakpoints stay the host's.
 *  - The guest's FPU/SSE/AVX state is the thread's own user state: it is loaded before
 *    entry (switch_fpu_return) and is simply live in the registers after exit, where Linux
 *    saves it like any user state.
 *  - #DB and #AC are intercepted and reflected: a guest IDT that makes them recur could
 *    otherwise hang the CPU in microcode (CVE-2015-5307/8104). #MC goes to the host.
 *
 * Co-existence with kvm-amd: EFER.SVME and MSR_VM_HSAVE_PA are set on this CPU only around
 * each VMRUN, with interrupts off, and restored after. If EFER.SVME is already set when a
 * Dune thread is about to enter, another hypervisor (kvm-amd, while any KVM VM exists)
 * owns SVM here, and the entry is refused (DUNE_EXIT_BUSY -> -EBUSY): the two never run at
 * once, and each flushes the TLB when it takes over (KVM on its first run after enabling
 * SVM, Dune on the first entry of a DUNE_ENTER and after any context switch).
 */
#include <linux/hw_breakpoint.h>
#include <linux/mm.h>
#include <linux/percpu.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <asm/cpufeature.h>
#include <asm/debugreg.h>
#include <asm/fpu/api.h>
#include <asm/mce.h>
#include <asm/msr.h>
#include <asm/segment.h>
#include <asm/svm.h>
#include <asm/tlbflush.h>
#include <asm/trap_pf.h>
#include <asm/trapnr.h>

#include "core.h"

asmlinkage void __dune_svm_run(u64 vmcb_pa, unsigned long *regs, u64 host_save_pa);

#define GUEST_ASID 1
#define VMMCALL_LEN 3 /* 0f 01 d9 */
/* The guest's LSTAR: a fixed address in the upper half, not the host's (a KASLR leak). */
#define GUEST_LSTAR 0xffffffffffe00000UL
#define DR7_INIT 0x400UL
#define MSRPM_SIZE (2 * 4096) /* APM vol. 2, 15.11: MSR and I/O permission maps */
#define IOPM_SIZE (3 * 4096)

/* VMCB segment attributes: type | S << 4 | DPL << 5 | P << 7 | L << 9 | DB << 10 | G << 11 */
#define SEG_CODE64 0xa9b
#define SEG_DATA 0xc93
#define SEG_TSS64_BUSY 0x08b
#define SEG_LDT 0x082

struct svm_vcpu {
	struct dune_vcpu v;
	struct vmcb *vmcb;
	u32 event; /* an exception to inject at the next entry (EVENTINJ format), or 0 */
	u32 event_err;
	int last_cpu;
	unsigned long last_switches;
};

static inline struct svm_vcpu *to_svm(struct dune_vcpu *v)
{
	return container_of(v, struct svm_vcpu, v);
}

struct svm_cpu {
	void *hsave;     /* MSR_VM_HSAVE_PA: where VMRUN saves the host's state */
	void *host_save; /* VMSAVE/VMLOAD area for the host's FS/GS/TR/syscall MSRs */
	u64 last_serial; /* the vcpu whose translations this CPU's TLB may hold */
};
static DEFINE_PER_CPU(struct svm_cpu, svm_cpu);

static unsigned long msrpm; /* MSR permission map, 8 KiB: 1 = intercept */
static unsigned long iopm;  /* I/O permission map, 12 KiB: all intercepted */
static bool flush_by_asid;

/* --- setup ------------------------------------------------------------------------------- */

static void msrpm_allow(u32 msr)
{
	unsigned long bit;

	if (msr <= 0x1fff)
		bit = msr * 2;
	else if (msr >= 0xc0000000 && msr <= 0xc0001fff)
		bit = 0x800 * 8 + (msr - 0xc0000000) * 2;
	else
		bit = 0x1000 * 8 + (msr - 0xc0010000) * 2;
	__clear_bit(bit, (unsigned long *)msrpm);     /* read */
	__clear_bit(bit + 1, (unsigned long *)msrpm); /* write */
}

static void svm_free_pages(void)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		struct svm_cpu *sc = per_cpu_ptr(&svm_cpu, cpu);

		free_page((unsigned long)sc->hsave);
		free_page((unsigned long)sc->host_save);
		sc->hsave = sc->host_save = NULL;
	}
	free_pages(msrpm, get_order(MSRPM_SIZE));
	free_pages(iopm, get_order(IOPM_SIZE));
	msrpm = iopm = 0;
}

static int svm_alloc_pages(void)
{
	/* Each MSR the guest may use is switched by VMRUN or VMLOAD/VMSAVE. */
	static const u32 guest_msrs[] = {
		MSR_FS_BASE,	     MSR_GS_BASE,	   MSR_KERNEL_GS_BASE,
		MSR_STAR,	     MSR_LSTAR,		   MSR_CSTAR,
		MSR_SYSCALL_MASK,    MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP,
		MSR_IA32_SYSENTER_EIP,
	};
	int cpu, i;

	msrpm = __get_free_pages(GFP_KERNEL, get_order(MSRPM_SIZE));
	iopm = __get_free_pages(GFP_KERNEL, get_order(IOPM_SIZE));
	if (!msrpm || !iopm)
		goto nomem;
	memset((void *)msrpm, 0xff, PAGE_SIZE << get_order(MSRPM_SIZE));
	memset((void *)iopm, 0xff, PAGE_SIZE << get_order(IOPM_SIZE));
	for (i = 0; i < ARRAY_SIZE(guest_msrs); i++)
		msrpm_allow(guest_msrs[i]);

	for_each_possible_cpu(cpu) {
		struct svm_cpu *sc = per_cpu_ptr(&svm_cpu, cpu);

		sc->hsave = (void *)get_zeroed_page(GFP_KERNEL);
		sc->host_save = (void *)get_zeroed_page(GFP_KERNEL);
		if (!sc->hsave || !sc->host_save)
			goto nomem;
	}
	return 0;
nomem:
	svm_free_pages();
	return -ENOMEM;
}

static void seg(struct vmcb_seg *s, u16 selector, u16 attrib, u32 limit, u64 base)
{
	s->selector = selector;
	s->attrib = attrib;
	s->limit = limit;
	s->base = base;
}

static void intercept(struct vmcb_control_area *c, int bit, bool on)
{
	if (on)
		c->intercepts[bit / 32] |= 1U << (bit % 32);
	else
		c->intercepts[bit / 32] &= ~(1U << (bit % 32));
}

static void setup_intercepts(struct vmcb_control_area *c)
{
	static const int bits[] = {
		INTERCEPT_CR4_WRITE, INTERCEPT_INTR, INTERCEPT_NMI, INTERCEPT_INIT,
		INTERCEPT_SELECTIVE_CR0, INTERCEPT_RDPMC, INTERCEPT_INVD, INTERCEPT_INVLPGA,
		INTERCEPT_IOIO_PROT, INTERCEPT_MSR_PROT, INTERCEPT_TASK_SWITCH,
		INTERCEPT_SHUTDOWN, INTERCEPT_VMRUN, INTERCEPT_VMMCALL, INTERCEPT_VMLOAD,
		INTERCEPT_VMSAVE, INTERCEPT_STGI, INTERCEPT_CLGI, INTERCEPT_SKINIT,
		INTERCEPT_WBINVD, INTERCEPT_MONITOR, INTERCEPT_MWAIT, INTERCEPT_MWAIT_COND,
		INTERCEPT_XSETBV, INTERCEPT_RDPRU,
	};
	int i;

	for (i = 0; i < ARRAY_SIZE(bits); i++)
		intercept(c, bits[i], true);
	/* Debug registers: DR0-3 hold the host's breakpoints; DR6 and reading DR7 are the
	 * guest's own (VMCB), so a #DB handler can read its status. */
	for (i = INTERCEPT_DR0_READ; i <= INTERCEPT_DR7_WRITE; i++)
		if (i != INTERCEPT_DR6_READ && i != INTERCEPT_DR6_WRITE && i != INTERCEPT_DR7_READ)
			intercept(c, i, true);
	intercept(c, INTERCEPT_EXCEPTION_OFFSET + X86_TRAP_DB, true);
	intercept(c, INTERCEPT_EXCEPTION_OFFSET + X86_TRAP_AC, true);
	intercept(c, INTERCEPT_EXCEPTION_OFFSET + X86_TRAP_MC, true);
}

static void svm_vcpu_init(struct dune_vcpu *v, const struct dune_config *conf)
{
	struct vmcb *vmcb = to_svm(v)->vmcb;
	struct vmcb_control_area *c = &vmcb->control;
	struct vmcb_save_area *s = &vmcb->save;
	u64 efer, fs_base, user_gs_base;

	setup_intercepts(c);
	c->iopm_base_pa = __pa(iopm);
	c->msrpm_base_pa = __pa(msrpm);
	c->tsc_offset = 0; /* the guest is this thread: it reads the TSC the thread reads */
	c->asid = GUEST_ASID;
	c->int_ctl = V_INTR_MASKING_MASK;
	c->nested_ctl = SVM_NESTED_CTL_NP_ENABLE;
	c->nested_cr3 = dune_vm_root_pa(v->vm);

	rdmsrl(MSR_FS_BASE, fs_base);
	rdmsrl(MSR_KERNEL_GS_BASE, user_gs_base); /* in the kernel, the user's GS is here */
	seg(&s->cs, __KERNEL_CS, SEG_CODE64, 0xffffffff, 0);
	seg(&s->ss, __KERNEL_DS, SEG_DATA, 0xffffffff, 0);
	seg(&s->ds, __KERNEL_DS, SEG_DATA, 0xffffffff, 0);
	seg(&s->es, __KERNEL_DS, SEG_DATA, 0xffffffff, 0);
	seg(&s->fs, 0, SEG_DATA, 0xffffffff, fs_base);
	seg(&s->gs, 0, SEG_DATA, 0xffffffff, user_gs_base);
	seg(&s->tr, 0, SEG_TSS64_BUSY, 0x67, 0);
	seg(&s->ldtr, 0, SEG_LDT, 0, 0);
	seg(&s->gdtr, 0, 0, 0, 0); /* no GDT or IDT until the guest loads its own */
	seg(&s->idtr, 0, 0, 0, 0);
	s->cpl = 0;

	rdmsrl(MSR_EFER, efer);
	s->efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_SVME | (efer & EFER_NX);
	s->cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE | X86_CR0_WP | X86_CR0_PG;
	s->cr3 = conf->cr3;
	s->cr4 = X86_CR4_PAE | X86_CR4_PGE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT |
		 (__read_cr4() & (X86_CR4_OSXSAVE | X86_CR4_FSGSBASE | X86_CR4_PCIDE));
	s->dr6 = DR6_RESERVED;
	s->dr7 = DR7_INIT;

	rdmsrl(MSR_STAR, s->star);
	rdmsrl(MSR_SYSCALL_MASK, s->sfmask);
	s->lstar = GUEST_LSTAR;
	s->cstar = 0;
	s->kernel_gs_base = 0;
	s->sysenter_cs = s->sysenter_esp = s->sysenter_eip = 0;
	rdmsrl(MSR_IA32_CR_PAT, s->g_pat);
}

static struct dune_vcpu *svm_vcpu_alloc(void)
{
	struct svm_vcpu *s = kzalloc(sizeof(*s), GFP_KERNEL_ACCOUNT);

	if (!s)
		return NULL;
	s->vmcb = (struct vmcb *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	if (!s->vmcb) {
		kfree(s);
		return NULL;
	}
	s->last_cpu = -1;
	return &s->v;
}

static void svm_vcpu_free(struct dune_vcpu *v)
{
	struct svm_vcpu *s = to_svm(v);

	free_page((unsigned long)s->vmcb);
	kfree(s);
}

/* --- events ------------------------------------------------------------------------------ */

/*
 * Exceptions the module raises (#GP, #UD, a reflected #DB/#AC) go in through EVENTINJ.
 * Interrupts (signals registered with DUNE_SET_SIGNALS) go in through the virtual
 * interrupt line instead: V_IRQ with the vector in int_vector, ignoring the TPR. The CPU
 * takes it when the guest's RFLAGS.IF is set and no interrupt shadow is active, clears
 * V_IRQ, and delivers it like an external interrupt -- so the module never has to judge
 * whether the guest can take one, and VINTR is not intercepted.
 *
 * Why not EVENTINJ for interrupts (as this module first did): QEMU 7.2's SVM emulation
 * delivers an injected INTR inside VMRUN but leaves the vector in its
 * pending-exception slot, and the next exit request of the vCPU thread (a TCG kick)
 * delivers it a second time, as an exception that ignores IF. A Dune guest's interrupt
 * gates use an IST stack, so the second delivery can land before the stub has copied the
 * first frame off IST1 and overwrite it: libdune's ManyThreadsMapAndUnmapAtOnce saw the
 * IPI vector twice, then clobbered registers or a hang. QEMU's V_IRQ path has no such
 * slot left behind. On hardware both ways are architectural.
 *
 * One vector is offered at a time (offered_vector()). The rest wait for the next exit:
 * every host interrupt, the tick at the latest, and every system call end guest mode.
 */
static void queue_exception(struct svm_vcpu *s, int vector, bool has_error)
{
	if (s->event) /* already delivering one: that one wins, as it came first */
		return;
	s->event = vector | SVM_EVTINJ_TYPE_EXEPT | SVM_EVTINJ_VALID |
		   (has_error ? SVM_EVTINJ_VALID_ERR : 0);
	s->event_err = 0;
}

/* The vector offered on V_IRQ and not yet taken, or -1: the CPU clears V_IRQ in the VMCB
 * when it takes the interrupt. */
static int offered_vector(const struct svm_vcpu *s)
{
	const struct vmcb_control_area *c = &s->vmcb->control;

	return (c->int_ctl & V_IRQ_MASK) ? (int)c->int_vector : -1;
}

static void offer_interrupt(struct svm_vcpu *s, int vector)
{
	struct vmcb_control_area *c = &s->vmcb->control;

	c->int_vector = vector;
	c->int_ctl |= V_IRQ_MASK | V_INTR_PRIO_MASK | V_IGN_TPR_MASK;
}

static void inject_pending(struct svm_vcpu *s)
{
	struct vmcb_control_area *c = &s->vmcb->control;
	struct dune_vcpu *v = &s->v;
	unsigned long vector;

	c->event_inj = 0;
	if (s->event) {
		c->event_inj = s->event;
		c->event_inj_err = s->event_err;
		s->event = 0;
	}
	if (offered_vector(s) >= 0)
		return;
	vector = find_first_bit(v->irq_pending, 256);
	if (vector < 256) {
		clear_bit(vector, v->irq_pending);
		offer_interrupt(s, vector);
	}
}

/*
 * After an exit: the event whose delivery the exit interrupted (e.g. the guest's IST page
 * was not yet in the nested page table) is delivered again. An interrupt goes back to the offer (or to the pending set when
 * another is offered); an exception is re-injected; INTn, INT3 and INTO are not: the guest
 * re-executes the instruction.
 */
static void complete_events(struct svm_vcpu *s)
{
	struct vmcb_control_area *c = &s->vmcb->control;
	u32 info = c->exit_int_info;
	u32 vector = info & SVM_EXITINTINFO_VEC_MASK;
	u32 type = info & SVM_EXITINTINFO_TYPE_MASK;
	int offered = offered_vector(s);

	c->event_inj = 0;
	if (!(info & SVM_EXITINTINFO_VALID))
		return;
	/* QEMU reports an interrupted V_IRQ delivery as an exception: no exception has a
	 * vector above 31, so such an event is the interrupt. */
	if (type == SVM_EXITINTINFO_TYPE_EXEPT && vector >= 32)
		type = SVM_EXITINTINFO_TYPE_INTR;
	switch (type) {
	case SVM_EXITINTINFO_TYPE_INTR:
		if (offered == (int)vector)
			break; /* still offered (QEMU leaves V_IRQ set when delivery faults) */
		if (offered < 0) {
			offer_interrupt(s, vector);
			break;
		}
		set_bit(vector, s->v.irq_pending);
		break;
	case SVM_EXITINTINFO_TYPE_EXEPT:
		if (vector == X86_TRAP_BP || vector == X86_TRAP_OF)
			break;
		s->event = info & (SVM_EVTINJ_VEC_MASK | SVM_EVTINJ_TYPE_MASK | SVM_EVTINJ_VALID |
				   SVM_EVTINJ_VALID_ERR);
		s->event_err = c->exit_int_info_err;
		break;
	default:
		break;
	}
}

/* --- running ----------------------------------------------------------------------------- */

static void decode_exit(struct svm_vcpu *s, struct dune_exit *exit)
{
	struct vmcb_control_area *c = &s->vmcb->control;
	u32 code = c->exit_code;

	exit->kind = DUNE_EXIT_CONTINUE;
	complete_events(s);
	switch (code) {
	case SVM_EXIT_INTR:
	case SVM_EXIT_NMI: /* taken by the host at STGI */
	case SVM_EXIT_INIT:
		break;
	case SVM_EXIT_VMMCALL:
		c->int_state &= ~SVM_INTERRUPT_SHADOW_MASK; /* see below */
		/*
		 * An interrupt is waiting (a registered signal came while the guest had IF
		 * off, e.g. between `syscall` and the STI before this VMMCALL, whose shadow
		 * then covered the VMMCALL). Making the call now could block it -- a futex --
		 * with the signal already consumed and its interrupt never taken. So the call
		 * is not made: the guest re-enters at the VMMCALL, takes the interrupt there
		 * (IF on, no shadow), and its handler returns to make the call.
		 */
		if ((s->v.rflags & X86_EFLAGS_IF) &&
		    (offered_vector(s) >= 0 || !bitmap_empty(s->v.irq_pending, 256)))
			break;
		s->v.rip += VMMCALL_LEN; /* no NRIP_SAVE needed: the length is fixed */
		/*
		 * libdune makes a call as `sti; vmmcall`, so the exit reports the STI's
		 * interrupt shadow. That shadow covered this VMMCALL, which has now run. Kept,
		 * it would also cover the VMMCALL again when a signal rewinds a blocking call
		 * to be restarted (syscall.c): the interrupt for that signal could never be
		 * taken before the call blocks again -- a thread waiting in a futex would
		 * never see the shootdown IPI its lock holder waits for.
		 */
		exit->kind = DUNE_EXIT_SYSCALL;
		break;
	case SVM_EXIT_NPF:
		if (c->exit_info_1 & X86_PF_RSVD) { /* our own table is malformed */
			exit->kind = DUNE_EXIT_FATAL;
			exit->code = code;
			break;
		}
		exit->kind = DUNE_EXIT_NPF;
		exit->gpa = c->exit_info_2;
		exit->write = c->exit_info_1 & X86_PF_WRITE;
		break;
	case SVM_EXIT_EXCP_BASE + X86_TRAP_DB:
		queue_exception(s, X86_TRAP_DB, false);
		break;
	case SVM_EXIT_EXCP_BASE + X86_TRAP_AC:
		queue_exception(s, X86_TRAP_AC, true);
		break;
	case SVM_EXIT_EXCP_BASE + X86_TRAP_MC: {
		struct pt_regs regs = { .cs = 3, .flags = X86_EFLAGS_IF };

		do_machine_check(&regs); /* as KVM: the host's handler sees a user-mode #MC */
		break;
	}
	case SVM_EXIT_READ_DR0 ... SVM_EXIT_WRITE_DR7:
	case SVM_EXIT_CR0_SEL_WRITE:
	case SVM_EXIT_WRITE_CR4:
	case SVM_EXIT_RDPMC:
	case SVM_EXIT_INVD:
	case SVM_EXIT_IOIO:
	case SVM_EXIT_MSR:
	case SVM_EXIT_TASK_SWITCH:
	case SVM_EXIT_WBINVD:
	case SVM_EXIT_XSETBV:
		queue_exception(s, X86_TRAP_GP, true);
		break;
	case SVM_EXIT_VMRUN:
	case SVM_EXIT_VMLOAD:
	case SVM_EXIT_VMSAVE:
	case SVM_EXIT_STGI:
	case SVM_EXIT_CLGI:
	case SVM_EXIT_SKINIT:
	case SVM_EXIT_INVLPGA:
	case SVM_EXIT_MONITOR:
	case SVM_EXIT_MWAIT:
	case SVM_EXIT_MWAIT_COND:
	case SVM_EXIT_RDPRU:
		queue_exception(s, X86_TRAP_UD, false);
		break;
	default: /* SVM_EXIT_SHUTDOWN (triple fault), SVM_EXIT_ERR (invalid state), others */
		exit->kind = DUNE_EXIT_FATAL;
		exit->code = code;
		break;
	}
}

static unsigned long context_switches(void)
{
	return current->nvcsw + current->nivcsw;
}

/* Decides, with interrupts off and this CPU fixed, whether the guest TLB must be flushed. */
static u8 tlb_control(struct svm_vcpu *s, int cpu)
{
	struct svm_cpu *sc = per_cpu_ptr(&svm_cpu, cpu);
	struct dune_vcpu *v = &s->v;
	u64 gen;

	cpumask_set_cpu(cpu, v->vm->running);
	smp_mb__after_atomic(); /* pairs with vm_flush(): see mmu.c */
	gen = atomic64_read(&v->vm->tlb_gen);
	if (gen == v->tlb_gen_seen && !v->flush_tlb && sc->last_serial == v->serial &&
	    s->last_cpu == cpu && s->last_switches == context_switches())
		return TLB_CONTROL_DO_NOTHING;
	v->tlb_gen_seen = gen;
	v->flush_tlb = false;
	sc->last_serial = v->serial;
	s->last_cpu = cpu;
	s->last_switches = context_switches();
	return flush_by_asid ? TLB_CONTROL_FLUSH_ASID : TLB_CONTROL_FLUSH_ALL_ASID;
}

static void svm_run(struct dune_vcpu *v, struct dune_exit *exit)
{
	struct svm_vcpu *s = to_svm(v);
	struct vmcb *vmcb = s->vmcb;
	struct svm_cpu *sc;
	u64 efer, hsave;
	int cpu;

	inject_pending(s);
	vmcb->save.rax = v->regs[DUNE_REG_RAX];
	vmcb->save.rsp = v->regs[DUNE_REG_RSP];
	vmcb->save.rip = v->rip;
	vmcb->save.rflags = v->rflags;

	local_irq_disable();
	if (dune_host_work_pending()) {
		local_irq_enable();
		exit->kind = DUNE_EXIT_REQUEST;
		return;
	}
	rdmsrl(MSR_EFER, efer);
	if (efer & EFER_SVME) {
		local_irq_enable();
		exit->kind = DUNE_EXIT_BUSY;
		return;
	}
	if (test_thread_flag(TIF_NEED_FPU_LOAD))
		switch_fpu_return();
	cpu = smp_processor_id();
	sc = per_cpu_ptr(&svm_cpu, cpu);
	vmcb->control.tlb_ctl = tlb_control(s, cpu);

	wrmsrl(MSR_EFER, efer | EFER_SVME);
	rdmsrl(MSR_VM_HSAVE_PA, hsave);
	wrmsrl(MSR_VM_HSAVE_PA, __pa(sc->hsave));
	current->flags |= PF_VCPU; /* a tick that ended guest mode counts as guest (user) time */
	__dune_svm_run(__pa(vmcb), v->regs, __pa(sc->host_save));
	wrmsrl(MSR_VM_HSAVE_PA, hsave);
	wrmsrl(MSR_EFER, efer);
	cpumask_clear_cpu(cpu, v->vm->running);
	if (hw_breakpoint_active())
		hw_breakpoint_restore();
	local_irq_enable(); /* the interrupt that ended guest mode is taken here */
	local_irq_disable();
	current->flags &= ~PF_VCPU;
	local_irq_enable();

	v->regs[DUNE_REG_RAX] = vmcb->save.rax;
	v->regs[DUNE_REG_RSP] = vmcb->save.rsp;
	v->rip = vmcb->save.rip;
	v->rflags = vmcb->save.rflags;
	v->stats.exits++;
	decode_exit(s, exit);
}

static void svm_dump(struct dune_vcpu *v)
{
	struct vmcb *vmcb = to_svm(v)->vmcb;
	struct vmcb_control_area *c = &vmcb->control;
	struct vmcb_save_area *s = &vmcb->save;
	unsigned long *r = v->regs;

	pr_info("dune: pid %d exit %#x info %#llx %#llx intinfo %#x/%#x int_ctl %#x vector %#x shadow %llu\n",
		v->tid, c->exit_code, c->exit_info_1, c->exit_info_2, c->exit_int_info,
		c->exit_int_info_err, c->int_ctl, c->int_vector,
		c->int_state & SVM_INTERRUPT_SHADOW_MASK);
	pr_info("dune:  offered vector %d, exception to inject %#x\n", offered_vector(to_svm(v)),
		to_svm(v)->event);
	pr_info("dune:  rip %#lx rsp %#lx rflags %#lx cr0 %#llx cr3 %#llx cr4 %#llx efer %#llx\n",
		v->rip, r[DUNE_REG_RSP], v->rflags, s->cr0, s->cr3, s->cr4, s->efer);
	pr_info("dune:  rax %#lx rbx %#lx rcx %#lx rdx %#lx rsi %#lx rdi %#lx rbp %#lx\n",
		r[DUNE_REG_RAX], r[DUNE_REG_RBX], r[DUNE_REG_RCX], r[DUNE_REG_RDX],
		r[DUNE_REG_RSI], r[DUNE_REG_RDI], r[DUNE_REG_RBP]);
	pr_info("dune:  r8 %#lx r9 %#lx r10 %#lx r11 %#lx r12 %#lx r13 %#lx r14 %#lx r15 %#lx\n",
		r[DUNE_REG_R8], r[DUNE_REG_R9], r[DUNE_REG_R10], r[DUNE_REG_R11], r[DUNE_REG_R12],
		r[DUNE_REG_R13], r[DUNE_REG_R14], r[DUNE_REG_R15]);
	pr_info("dune:  cs %#x ss %#x fs.base %#llx gs.base %#llx gdtr %#llx/%#x idtr %#llx/%#x\n",
		s->cs.selector, s->ss.selector, s->fs.base, s->gs.base, s->gdtr.base, s->gdtr.limit,
		s->idtr.base, s->idtr.limit);
	pr_info("dune:  exits %llu syscalls %llu nested page faults %llu\n", v->stats.exits,
		v->stats.syscalls, v->stats.npt_faults);
}

/* --- the vendor -------------------------------------------------------------------------- */

static const struct dune_pt_format npt_format = {
	.present = _PAGE_PRESENT,
	/* Nested walks are user accesses: every level needs U/S. */
	.table = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER,
	.leaf = _PAGE_PRESENT | _PAGE_USER,
	.writable = _PAGE_RW,
	.accessed = _PAGE_ACCESSED,
	.sw_nopage = _PAGE_SOFTW1,
	.memtype = _PAGE_PWT | _PAGE_PCD | _PAGE_PAT,
};

static void svm_exit(void)
{
	svm_free_pages();
}

static const struct dune_vendor svm_vendor = {
	.name = "AMD SVM",
	.pt = &npt_format,
	.guest_lstar = GUEST_LSTAR,
	.vcpu_alloc = svm_vcpu_alloc,
	.vcpu_free = svm_vcpu_free,
	.vcpu_init = svm_vcpu_init,
	.run = svm_run,
	.syscall_insn_len = VMMCALL_LEN,
	.dump = svm_dump,
	.exit = svm_exit,
};

const struct dune_vendor *dune_svm_init(void)
{
	u64 vm_cr;
	int r;

	if (!boot_cpu_has(X86_FEATURE_SVM)) {
		pr_err("dune: this CPU has no AMD SVM (Intel VT-x is not implemented)\n");
		return ERR_PTR(-ENODEV);
	}
	if (!boot_cpu_has(X86_FEATURE_NPT)) {
		pr_err("dune: SVM without nested paging is not supported\n");
		return ERR_PTR(-ENODEV);
	}
	rdmsrl(MSR_VM_CR, vm_cr);
	if (vm_cr & SVM_VM_CR_SVM_DIS_MASK) {
		pr_err("dune: SVM is disabled by the firmware (VM_CR.SVMDIS)\n");
		return ERR_PTR(-ENODEV);
	}
	r = svm_alloc_pages();
	if (r)
		return ERR_PTR(r);
	flush_by_asid = boot_cpu_has(X86_FEATURE_FLUSHBYASID);
	return &svm_vendor;
}
