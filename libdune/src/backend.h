/* backend.h -- the seam between libdune's core and what provides Dune mode.
 *
 * The core (page tables, pool, trap dispatch, syscall forwarding policy, signals,
 * shootdown, stats) never touches a device. A backend creates the virtual machine, backs
 * guest-physical memory, creates and runs vCPUs, and reports why a vCPU stopped. The kvm
 * backend (backend_kvm.c) runs vCPUs from a host loop in the calling thread (run.c); a
 * /dev/dune backend (the original Dune ABI, DUNE_ENTER) would run the thread inside the
 * kernel module instead and set `kernel_loop` (see docs/libdune.md, "Backends").
 */
#ifndef DUNE_BACKEND_H
#define DUNE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

struct dune_regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip, rflags;
};

/* The part of the special registers the core reads and changes between runs. */
struct dune_sregs {
	uint16_t cs, ss;      /* selectors; the backend derives the hidden parts */
	uint64_t fs_base, gs_base;
	uint64_t cr2, cr3;
};

/* Everything a new vCPU starts with. */
struct dune_vcpu_boot {
	uint64_t cr0, cr3, cr4, efer;
	uint64_t gdt_base, idt_base, tss_base;
	uint16_t gdt_limit, idt_limit, tss_limit;
	uint16_t cs, ss;
	uint64_t fs_base, gs_base;
	uint64_t lstar, star, fmask;
	uint64_t tsc_aux;
	const void *xsave; /* host thread's XSAVE image (standard format) */
	size_t xsave_size;
	uint64_t xcr0;
};

enum dune_exit_kind {
	DUNE_EXIT_IO,       /* port I/O: libdune's guest entry points */
	DUNE_EXIT_MMIO,     /* guest-physical access without backing memory */
	DUNE_EXIT_SIGNAL,   /* interrupted by a host signal */
	DUNE_EXIT_FAULT,    /* host memory behind guest memory is gone (EFAULT) */
	DUNE_EXIT_SHUTDOWN, /* triple fault */
	DUNE_EXIT_EMULATION, /* the hypervisor could not emulate an instruction */
	DUNE_EXIT_HLT,
	DUNE_EXIT_IRQ_WINDOW, /* the guest can take an interrupt now (asked for with irq_window) */
	DUNE_EXIT_OTHER,
};

struct dune_exit {
	enum dune_exit_kind kind;
	uint16_t port;
	uint64_t gpa;          /* MMIO */
	uint8_t *mmio_data;    /* MMIO: 8 bytes the backend completes the access with */
	uint32_t mmio_len;
	int mmio_write;
	uint32_t raw_reason;   /* backend-specific, for messages */
	int err;               /* errno for DUNE_EXIT_FAULT / OTHER */
};

struct dune_vm_info {
	int max_vcpus;
	int phys_bits;      /* guest MAXPHYADDR */
	int max_slots;
	size_t xsave_size;  /* bytes of a vCPU's XSAVE image */
	int big_1g_pages;   /* whether 1 GiB guest pages translate here */
};

struct dune_backend_ops {
	const char *name;
	int kernel_loop; /* vCPUs run inside the kernel (no host loop, no guest exits) */
	/* Opens the device and creates the VM; prints one line naming the cause on failure. */
	int (*open)(struct dune_vm_info *info);
	/* In a fork child: forget the parent's VM (its fds) so open() can make a new one. */
	void (*forget)(void);
	/* Backs guest-physical [gpa, gpa+size) with host memory at hva (slot: a small id). */
	int (*map_window)(int slot, uint64_t gpa, uint64_t size, void *hva);
	int (*vcpu_create)(int index, void **handle);
	/* Releases a vCPU handle without running it again (fork children, thread exit). */
	void (*vcpu_forget)(void *h);
	int (*vcpu_setup)(void *h, const struct dune_vcpu_boot *boot);
	/* Runs until an exit; register views stay valid until the next run. */
	int (*vcpu_run)(void *h, struct dune_exit *exit);
	struct dune_regs *(*regs)(void *h);
	struct dune_sregs *(*sregs)(void *h);
	/* Tell the backend the views were changed (1 = regs, 2 = sregs). */
	void (*dirty)(void *h, int what);
	int (*get_xsave)(void *h, void *buf, size_t size);
	int (*set_xsave)(void *h, const void *buf, size_t size);
	/* An interrupt `vector` to the vCPU with x2APIC ID `apic_id`. */
	int (*send_ipi)(uint32_t apic_id, uint8_t vector);
	/* Asks for (on = 1) an exit as soon as the guest can take an interrupt: the host loop
	 * then places the upcalls it held back while the guest ran libdune's CPL-0 stubs. */
	void (*irq_window)(void *h, int on);
	/* From a signal handler on the vCPU's thread: make the current or next run return
	 * at once (a signal that lands just before the run starts must not wait for the next
	 * exit). */
	void (*kick)(void *h);
};

extern const struct dune_backend_ops dune_kvm_backend;
extern const struct dune_backend_ops dune_kmod_backend;

#endif /* DUNE_BACKEND_H */
