/* SPDX-License-Identifier: GPL-2.0 */
/*
 * core.h - what the vendor-neutral core (core.c, run.c, syscall.c), the nested MMU (mmu.c)
 * and a hardware vendor (svm.c; a vmx.c would sit beside it) share.
 *
 * Objects: one struct dune_vm per process (mm) that entered Dune mode, found through its MMU
 * notifier; it owns the nested page table mirroring the process's address space. One
 * struct dune_vcpu per thread in Dune mode, embedded in the vendor's own vcpu (VMCB etc.).
 * A vcpu lives while its thread is inside DUNE_ENTER, or parked on the file after a
 * DUNE_RET_SIGNAL return until the thread re-enters.
 */
#ifndef DUNE_CORE_H
#define DUNE_CORE_H

#include <linux/cpumask.h>
#include <linux/list.h>
#include <linux/mmu_notifier.h>
#include <linux/spinlock.h>
#include <linux/types.h>

#include "dune_ioctl.h"
#include "regs.h"

#define DUNE_PT_CACHE 4 /* page-table pages a fault may need: one per non-root level */

struct dune_vm {
	struct mmu_notifier mn;
	struct mm_struct *mm;
	/* The guest-physical layout; fixed for the life of the mm. */
	unsigned long phys_limit;
	unsigned long map_hva;   /* struct dune_layout.base_map */
	unsigned long stack_hva; /* struct dune_layout.base_stack */

	spinlock_t lock; /* the nested page table, inv_*, dead, vcpus */
	u64 *root;
	int levels;
	bool dead;              /* the mm was torn down: nothing is mapped any more */
	unsigned long inv_seq;  /* bumped as each invalidation ends */
	int inv_count;          /* invalidations in progress */
	struct list_head vcpus; /* every vcpu of this process, running or parked */

	atomic64_t tlb_gen;    /* bumped when a translation goes away */
	cpumask_var_t running; /* CPUs now in guest mode on this vm */
	atomic64_t sig_mask;   /* DUNE_SET_SIGNALS: bit signo - 1 */
};

struct dune_vcpu {
	struct dune_vm *vm;
	struct list_head vm_link;   /* vm->vcpus */
	struct list_head park_link; /* the file's parked vcpus */
	pid_t tid;
	bool running;   /* its thread is inside DUNE_ENTER */
	bool ran;       /* entered guest mode during this DUNE_ENTER */
	bool flush_tlb; /* the next entry flushes the guest TLB */
	u64 token;    /* struct dune_config.vcpu: names a parked vcpu */
	u64 serial;   /* never reused: tags whose translations a CPU's TLB may hold */

	unsigned long regs[DUNE_NR_REGS];
	unsigned long rip;
	unsigned long rflags;

	DECLARE_BITMAP(irq_pending, 256); /* vectors to inject (signals) */
	struct {                          /* a system call rewound to be restarted */
		bool pending;
		long err;
	} restart;
	u64 tlb_gen_seen;

	/* Why the guest stopped (see enum dune_outcome). */
	long exit_status;
	u64 fault_gpa;
	u64 exit_code;
	long error;

	void *pt_cache[DUNE_PT_CACHE];
	int pt_cached;
	struct {
		u64 exits, syscalls, npt_faults;
	} stats;
};

/* What one entry into guest mode ended with, as the vendor reports it to the core. */
enum dune_exit_kind {
	DUNE_EXIT_CONTINUE, /* handled (interrupt, NMI, reflected exception): enter again */
	DUNE_EXIT_REQUEST,  /* not entered: host work is pending (signal, resched) */
	DUNE_EXIT_BUSY,     /* not entered: another hypervisor owns this CPU's SVM */
	DUNE_EXIT_SYSCALL,  /* the guest's system call: number and arguments in regs */
	DUNE_EXIT_NPF,      /* nested page fault */
	DUNE_EXIT_FATAL,    /* the guest cannot continue (triple fault, invalid state) */
};

struct dune_exit {
	enum dune_exit_kind kind;
	u64 gpa;   /* DUNE_EXIT_NPF */
	bool write;
	u64 code;  /* DUNE_EXIT_FATAL: the vendor's exit code */
};

/* How a thread's stay in guest mode ended (core.c turns it into struct dune_config). */
enum dune_outcome {
	DUNE_OUT_EXIT,         /* exit/exit_group: exit_status */
	DUNE_OUT_SIGNAL,       /* Linux must act (signal, pending work): park, re-enter later */
	DUNE_OUT_FATAL_SIGNAL, /* the thread is being killed */
	DUNE_OUT_EXEC,         /* execve succeeded: the thread runs a new image */
	DUNE_OUT_VIOLATION,    /* guest-physical fault_gpa is not memory of the process */
	DUNE_OUT_UNHANDLED,    /* the guest cannot continue: exit_code */
	DUNE_OUT_NOENTER,      /* could not enter guest mode: error */
};

/* Bits of the nested page-table entry format, given by the vendor. */
struct dune_pt_format {
	u64 present;    /* set in every valid entry */
	u64 table;      /* a non-leaf entry */
	u64 leaf;       /* a readable, executable 4 KiB leaf */
	u64 writable;   /* added for a writable leaf */
	u64 accessed;   /* set by the hardware on use */
	u64 sw_nopage;  /* software bit: the frame has no struct page reference */
	u64 memtype;    /* host PTE caching bits carried into PFN-map leaves */
};

struct dune_vendor {
	const char *name;
	const struct dune_pt_format *pt;
	unsigned long guest_lstar;
	struct dune_vcpu *(*vcpu_alloc)(void);
	void (*vcpu_free)(struct dune_vcpu *v);
	/* Full guest state for a new vcpu: the calling thread's, plus conf's registers. */
	void (*vcpu_init)(struct dune_vcpu *v, const struct dune_config *conf);
	/* One entry into guest mode: injects what is pending, runs, decodes the exit. */
	void (*run)(struct dune_vcpu *v, struct dune_exit *exit);
	/* The length of the instruction behind DUNE_EXIT_SYSCALL (for restarts). */
	unsigned int syscall_insn_len;
	void (*dump)(struct dune_vcpu *v);
	void (*exit)(void);
};

extern const struct dune_vendor *dune_vendor;

/*
 * What the module holds, counted so that unloading can prove it all came back: any
 * non-zero count at module exit is a leak and WARNs (every QEMU suite ends with rmmod).
 */
struct dune_counts {
	atomic_long_t vms, vcpus, tables, pinned;
};
extern struct dune_counts dune_counts;

/* svm.c */
const struct dune_vendor *dune_svm_init(void);

/* mmu.c */
struct dune_vm *dune_vm_get(struct mm_struct *mm);
void dune_vm_put(struct dune_vm *vm);
void dune_layout_of(struct mm_struct *mm, struct dune_layout *layout);
int dune_mmu_fault(struct dune_vcpu *v, u64 gpa, bool write);
void dune_mmu_drop_cache(struct dune_vcpu *v);
u64 dune_vm_root_pa(struct dune_vm *vm);
void dune_mmu_synchronize(void);

/* run.c */
enum dune_outcome dune_vcpu_run(struct dune_vcpu *v);
bool dune_host_work_pending(void);

/* syscall.c */
int dune_syscall_init(void);
enum dune_outcome dune_handle_syscall(struct dune_vcpu *v, bool *cont);
bool dune_syscalls_blocked(void);

#endif /* DUNE_CORE_H */
