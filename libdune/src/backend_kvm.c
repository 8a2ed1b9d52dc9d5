/* backend_kvm.c -- Dune mode over /dev/kvm.
 *
 * One VM per process, one vCPU per Dune thread, run by that thread (run.c). Register
 * state travels through kvm_run's sync-regs area, so a syscall exit costs one KVM_RUN
 * and no extra ioctls. Guest memory is the process's own memory: memslots map windows of
 * the address space (layout.c) and KVM follows the host page tables through its MMU
 * notifier, so host mmap/munmap stay coherent without copying anything.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backend.h"
#include "dune_internal.h"

#ifndef KVM_CAP_XSAVE2
#define KVM_CAP_XSAVE2 208
#define KVM_GET_XSAVE2 _IOR(KVMIO, 0xcf, struct kvm_xsave)
#endif
#define ARCH_REQ_XCOMP_GUEST_PERM 0x1025
#define XFEATURE_XTILEDATA 18

#define MSR_EFER 0xc0000080
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_SFMASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MSR_TSC_AUX 0xc0000103
#define MSR_APIC_BASE 0x1b
#define MSR_X2APIC_SVR 0x80f

_Static_assert(sizeof(struct kvm_regs) == sizeof(struct dune_regs), "dune_regs mirrors kvm_regs");

struct kvm_vcpu_h {
	int fd;
	struct kvm_run *run;
	struct kvm_sregs full; /* the last sregs KVM reported, patched from `lite` */
	struct dune_sregs lite;
};

static int kvm_fd = -1, vm_fd = -1;
static int run_size;
static struct {
	struct kvm_cpuid2 c;
	struct kvm_cpuid_entry2 e[256];
} cpuid;
static int have_xsave2;

static const struct kvm_cpuid_entry2 *cpuid_find(uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < cpuid.c.nent; i++)
		if (cpuid.e[i].function == fn && cpuid.e[i].index == idx)
			return &cpuid.e[i];
	return NULL;
}

static int need_cap(int fd, int cap, const char *name)
{
	int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);

	if (r <= 0) {
		fprintf(stderr, "dune: missing KVM capability %s on /dev/kvm\n", name);
		return -ENOSYS;
	}
	return r;
}

/* Called in fork children, where malloc's locks may still be held: no free(). */
static void kvm_vcpu_forget(void *hv)
{
	struct kvm_vcpu_h *h = hv;

	munmap(h->run, (size_t)run_size);
	close(h->fd);
	h->fd = -1;
}

static void kvm_forget(void)
{
	if (vm_fd >= 0)
		close(vm_fd);
	if (kvm_fd >= 0)
		close(kvm_fd);
	vm_fd = kvm_fd = -1;
}

static int kvm_open(struct dune_vm_info *info)
{
	int r;

	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0) {
		r = -errno;
		if (r == -ENOENT)
			fprintf(stderr, "dune: /dev/kvm does not exist (no KVM in this kernel or "
					"container)\n");
		else if (r == -EACCES || r == -EPERM)
			fprintf(stderr, "dune: /dev/kvm: permission denied (the user needs read/write "
					"access, usually group kvm)\n");
		else
			fprintf(stderr, "dune: cannot open /dev/kvm: %s\n", strerror(-r));
		return r;
	}
	r = ioctl(kvm_fd, KVM_GET_API_VERSION, 0);
	if (r != KVM_API_VERSION) {
		fprintf(stderr, "dune: /dev/kvm speaks API version %d, need %d\n", r,
			KVM_API_VERSION);
		kvm_forget();
		return -EPROTO;
	}
	/* KVM gives a guest AMX tile state only to a process that asked for it; harmless when
	 * the host refuses (the XSAVE size below tells what we got). */
	syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_GUEST_PERM, XFEATURE_XTILEDATA);

	vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm_fd < 0) {
		r = -errno;
		fprintf(stderr, "dune: KVM_CREATE_VM failed: %s\n", strerror(-r));
		kvm_forget();
		return r;
	}
	if ((r = need_cap(vm_fd, KVM_CAP_USER_MEMORY, "USER_MEMORY")) < 0 ||
	    (r = need_cap(vm_fd, KVM_CAP_SYNC_REGS, "SYNC_REGS")) < 0 ||
	    (r = need_cap(vm_fd, KVM_CAP_SPLIT_IRQCHIP, "SPLIT_IRQCHIP")) < 0 ||
	    (r = need_cap(vm_fd, KVM_CAP_SIGNAL_MSI, "SIGNAL_MSI")) < 0 ||
	    (r = need_cap(vm_fd, KVM_CAP_XSAVE, "XSAVE")) < 0 ||
	    (r = need_cap(vm_fd, KVM_CAP_EXT_CPUID, "EXT_CPUID")) < 0) {
		kvm_forget();
		return r;
	}
	if ((ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS) &
	     (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS)) != (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS)) {
		fprintf(stderr, "dune: missing KVM capability SYNC_REGS for regs+sregs\n");
		kvm_forget();
		return -ENOSYS;
	}
	info->max_slots = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
	info->max_vcpus = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (info->max_slots <= 0)
		info->max_slots = 32;
	if (info->max_vcpus <= 0)
		info->max_vcpus = 1;

	/* The local APIC in the kernel (for x2APIC IPIs), nothing else. */
	struct kvm_enable_cap cap = {.cap = KVM_CAP_SPLIT_IRQCHIP, .args = {24}};
	if (ioctl(vm_fd, KVM_ENABLE_CAP, &cap) < 0) {
		r = -errno;
		fprintf(stderr, "dune: enabling KVM_CAP_SPLIT_IRQCHIP failed: %s\n", strerror(-r));
		kvm_forget();
		return r;
	}
	run_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	cpuid.c.nent = 256;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, &cpuid) < 0) {
		r = -errno;
		fprintf(stderr, "dune: KVM_GET_SUPPORTED_CPUID failed: %s\n", strerror(-r));
		kvm_forget();
		return r;
	}
	const struct kvm_cpuid_entry2 *e = cpuid_find(0x80000008, 0);
	info->phys_bits = e ? (int)(e->eax & 0xff) : 36;
	e = cpuid_find(0x80000001, 0);
	info->big_1g_pages = e && (e->edx & (1u << 26));

	r = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	have_xsave2 = r > 0;
	info->xsave_size = r > (int)sizeof(struct kvm_xsave) ? (size_t)r : sizeof(struct kvm_xsave);
	return 0;
}

static int kvm_map_window(int slot, uint64_t gpa, uint64_t size, void *hva)
{
	struct kvm_userspace_memory_region m = {
		.slot = (uint32_t)slot,
		.flags = 0,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)hva,
	};

	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &m) < 0)
		return -errno;
	return 0;
}

static struct kvm_vcpu_h *vcpu_handles[DUNE_MAX_VCPUS];

static int kvm_vcpu_create(int index, void **handle)
{
	struct kvm_vcpu_h *h = calloc(1, sizeof(*h));
	int r;

	if (!h)
		return -ENOMEM;
	h->fd = ioctl(vm_fd, KVM_CREATE_VCPU, index);
	if (h->fd < 0) {
		r = -errno;
		free(h);
		return r;
	}
	h->run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, h->fd, 0);
	if (h->run == MAP_FAILED) {
		r = -errno;
		close(h->fd);
		free(h);
		return r;
	}
	if (ioctl(h->fd, KVM_SET_CPUID2, &cpuid) < 0) {
		r = -errno;
		munmap(h->run, (size_t)run_size);
		close(h->fd);
		free(h);
		return r;
	}
	h->run->kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
	if (index >= 0 && index < DUNE_MAX_VCPUS)
		vcpu_handles[index] = h; /* reachable (the vCPU struct holding it is mmap'ed) */
	*handle = h;
	return 0;
}

/* The hidden parts of the four selectors libdune uses. */
static void seg_from_selector(struct kvm_segment *s, uint16_t sel)
{
	int user = (sel & 3) == 3;
	int code = sel == GD_KT || sel == (GD_UT | 3);

	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;
	s->present = 1;
	s->s = 1;
	s->g = 1;
	s->dpl = user ? 3 : 0;
	if (code) {
		s->type = 0xb;
		s->l = 1;
	} else {
		s->type = 0x3;
		s->db = 1;
	}
}

static void lite_to_full(struct kvm_vcpu_h *h)
{
	if (h->full.cs.selector != h->lite.cs)
		seg_from_selector(&h->full.cs, h->lite.cs);
	if (h->full.ss.selector != h->lite.ss)
		seg_from_selector(&h->full.ss, h->lite.ss);
	h->full.fs.base = h->lite.fs_base;
	h->full.gs.base = h->lite.gs_base;
	h->full.cr2 = h->lite.cr2;
	h->full.cr3 = h->lite.cr3;
	memset(h->full.interrupt_bitmap, 0, sizeof(h->full.interrupt_bitmap));
}

static void full_to_lite(struct kvm_vcpu_h *h)
{
	h->lite.cs = h->full.cs.selector;
	h->lite.ss = h->full.ss.selector;
	h->lite.fs_base = h->full.fs.base;
	h->lite.gs_base = h->full.gs.base;
	h->lite.cr2 = h->full.cr2;
	h->lite.cr3 = h->full.cr3;
}

static int set_msrs(int fd, const uint32_t *idx, const uint64_t *val, int n)
{
	struct {
		struct kvm_msrs m;
		struct kvm_msr_entry e[16];
	} x;

	memset(&x, 0, sizeof(x));
	x.m.nmsrs = (uint32_t)n;
	for (int i = 0; i < n; i++) {
		x.e[i].index = idx[i];
		x.e[i].data = val[i];
	}
	int r = ioctl(fd, KVM_SET_MSRS, &x);
	if (r < 0)
		return -errno;
	if (r != n) {
		fprintf(stderr, "dune: KVM refused MSR %#x\n", idx[r]);
		return -EINVAL;
	}
	return 0;
}

static int kvm_set_xsave(void *hv, const void *buf, size_t size);

static int kvm_vcpu_setup(void *hv, const struct dune_vcpu_boot *b)
{
	struct kvm_vcpu_h *h = hv;
	struct kvm_sregs s;
	int r;

	if (ioctl(h->fd, KVM_GET_SREGS, &s) < 0)
		return -errno;
	s.cr0 = b->cr0;
	s.cr3 = b->cr3;
	s.cr4 = b->cr4;
	s.efer = b->efer;
	seg_from_selector(&s.cs, b->cs);
	seg_from_selector(&s.ss, b->ss);
	seg_from_selector(&s.ds, GD_KD);
	s.ds.selector = 0;
	s.es = s.ds;
	s.fs = s.ds;
	s.gs = s.ds;
	s.fs.base = b->fs_base;
	s.gs.base = b->gs_base;
	s.gdt.base = b->gdt_base;
	s.gdt.limit = b->gdt_limit;
	s.idt.base = b->idt_base;
	s.idt.limit = b->idt_limit;
	memset(&s.tr, 0, sizeof(s.tr));
	s.tr.base = b->tss_base;
	s.tr.limit = b->tss_limit;
	s.tr.selector = GD_TSS;
	s.tr.type = 0xb; /* busy 64-bit TSS */
	s.tr.present = 1;
	memset(&s.ldt, 0, sizeof(s.ldt));
	s.ldt.unusable = 1;
	memset(s.interrupt_bitmap, 0, sizeof(s.interrupt_bitmap));
	if (ioctl(h->fd, KVM_SET_SREGS, &s) < 0) {
		/* Some hosts reject CR4 bits their CPUID does not advertise; retry without the
		 * optional ones (the kernel still runs the guest with the host's features). */
		s.cr4 &= ~(uint64_t)(0x40000 | 0x10000); /* OSXSAVE, FSGSBASE */
		if (ioctl(h->fd, KVM_SET_SREGS, &s) < 0) {
			r = -errno;
			fprintf(stderr, "dune: KVM_SET_SREGS failed: %s\n", strerror(-r));
			return r;
		}
	}
	h->full = s;
	full_to_lite(h);

	/* APIC base first: the x2APIC MSRs exist only once EXTD is set. */
	static const uint32_t idx[] = {MSR_APIC_BASE, MSR_X2APIC_SVR, MSR_LSTAR,     MSR_STAR,
				       MSR_SFMASK,    MSR_KERNEL_GS_BASE, MSR_TSC_AUX};
	uint64_t val[] = {0xfee00000ull | (1u << 11) | (1u << 10) | (b->tsc_aux == 0 ? 1u << 8 : 0),
			  0x1ff, b->lstar, b->star, b->fmask, 0, b->tsc_aux};
	if ((r = set_msrs(h->fd, idx, val, 7)) < 0) {
		fprintf(stderr, "dune: KVM_SET_MSRS failed: %s\n", strerror(-r));
		return r;
	}
	/* XCR0 = the host's features the guest CPUID allows; KVM refuses what it does not
	 * support, and on KVM-PVM the hardware runs with the host's XCR0 regardless. */
	struct kvm_xcrs xc;
	memset(&xc, 0, sizeof(xc));
	xc.nr_xcrs = 1;
	xc.xcrs[0].xcr = 0;
	xc.xcrs[0].value = b->xcr0;
	if (ioctl(h->fd, KVM_SET_XCRS, &xc) < 0) {
		const struct kvm_cpuid_entry2 *e = cpuid_find(0xd, 0);
		xc.xcrs[0].value = b->xcr0 & (e ? ((uint64_t)e->edx << 32 | e->eax) : 3);
		(void)ioctl(h->fd, KVM_SET_XCRS, &xc);
	}
	/* With an in-kernel local APIC, every vCPU but the first would wait for INIT/SIPI. */
	struct kvm_mp_state mp = {.mp_state = KVM_MP_STATE_RUNNABLE};
	if (ioctl(h->fd, KVM_SET_MP_STATE, &mp) < 0) {
		r = -errno;
		fprintf(stderr, "dune: KVM_SET_MP_STATE failed: %s\n", strerror(-r));
		return r;
	}
	/* kvm_sregs carries the APIC base too: refresh our copy now that x2APIC is on, or the
	 * first sregs update would switch the local APIC back to xAPIC mode. */
	if (ioctl(h->fd, KVM_GET_SREGS, &h->full) < 0)
		return -errno;
	full_to_lite(h);
	if (b->xsave && (r = kvm_set_xsave(h, b->xsave, b->xsave_size)) < 0) {
		fprintf(stderr, "dune: KVM_SET_XSAVE failed: %s\n", strerror(-r));
		return r;
	}
	return 0;
}

static int kvm_vcpu_run(void *hv, struct dune_exit *x)
{
	struct kvm_vcpu_h *h = hv;
	struct kvm_run *run = h->run;
	int r;

	if (run->kvm_dirty_regs & KVM_SYNC_X86_SREGS) {
		lite_to_full(h);
		run->s.regs.sregs = h->full;
	}
	r = ioctl(h->fd, KVM_RUN, 0);
	/* Cleared before the caller looks for pending signals: a later kick stops the next
	 * run. */
	__atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	run->kvm_dirty_regs = 0;
	h->full = run->s.regs.sregs;
	full_to_lite(h);
	memset(x, 0, sizeof(*x));
	if (r < 0) {
		x->err = errno;
		x->kind = errno == EINTR ? DUNE_EXIT_SIGNAL
			  : errno == EFAULT ? DUNE_EXIT_FAULT
					    : DUNE_EXIT_OTHER;
		return 0;
	}
	x->raw_reason = run->exit_reason;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		x->kind = DUNE_EXIT_IO;
		x->port = run->io.port;
		break;
	case KVM_EXIT_MMIO:
		x->kind = DUNE_EXIT_MMIO;
		x->gpa = run->mmio.phys_addr;
		x->mmio_data = run->mmio.data;
		x->mmio_len = run->mmio.len;
		x->mmio_write = run->mmio.is_write;
		break;
	case KVM_EXIT_INTR:
		x->kind = DUNE_EXIT_SIGNAL;
		break;
	case KVM_EXIT_SHUTDOWN:
		x->kind = DUNE_EXIT_SHUTDOWN;
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		x->kind = run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
				  ? DUNE_EXIT_EMULATION
				  : DUNE_EXIT_OTHER;
		break;
	case KVM_EXIT_HLT:
		x->kind = DUNE_EXIT_HLT;
		break;
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		x->kind = DUNE_EXIT_IRQ_WINDOW;
		break;
	default:
		x->kind = DUNE_EXIT_OTHER;
		break;
	}
	return 0;
}

static struct dune_regs *kvm_regs(void *hv)
{
	return (struct dune_regs *)&((struct kvm_vcpu_h *)hv)->run->s.regs.regs;
}

static struct dune_sregs *kvm_sregs(void *hv)
{
	return &((struct kvm_vcpu_h *)hv)->lite;
}

static void kvm_dirty(void *hv, int what)
{
	struct kvm_vcpu_h *h = hv;

	if (what & 1)
		h->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
	if (what & 2)
		h->run->kvm_dirty_regs |= KVM_SYNC_X86_SREGS;
}

static void kvm_irq_window(void *hv, int on)
{
	((struct kvm_vcpu_h *)hv)->run->request_interrupt_window = (uint8_t)on;
}

static void kvm_kick(void *hv)
{
	__atomic_store_n(&((struct kvm_vcpu_h *)hv)->run->immediate_exit, 1, __ATOMIC_RELAXED);
}

static int kvm_get_xsave(void *hv, void *buf, size_t size)
{
	struct kvm_vcpu_h *h = hv;

	if (size < sizeof(struct kvm_xsave))
		return -EINVAL;
	if (ioctl(h->fd, have_xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, buf) < 0)
		return -errno;
	return 0;
}

static int kvm_set_xsave(void *hv, const void *buf, size_t size)
{
	struct kvm_vcpu_h *h = hv;

	if (size < sizeof(struct kvm_xsave))
		return -EINVAL;
	if (ioctl(h->fd, KVM_SET_XSAVE, buf) < 0)
		return -errno;
	return 0;
}

static int kvm_send_ipi(uint32_t apic_id, uint8_t vector)
{
	/* xAPIC-format MSI: 8-bit destinations (libdune creates far fewer vCPUs). */
	struct kvm_msi m = {
		.address_lo = 0xfee00000u | ((apic_id & 0xff) << 12),
		.data = vector,
	};

	if (apic_id > 0xff)
		return -EINVAL;

	if (ioctl(vm_fd, KVM_SIGNAL_MSI, &m) < 0)
		return -errno;
	return 0;
}

const struct dune_backend_ops dune_kvm_backend = {
	.name = "kvm",
	.kernel_loop = 0,
	.open = kvm_open,
	.forget = kvm_forget,
	.map_window = kvm_map_window,
	.vcpu_create = kvm_vcpu_create,
	.vcpu_forget = kvm_vcpu_forget,
	.vcpu_setup = kvm_vcpu_setup,
	.vcpu_run = kvm_vcpu_run,
	.regs = kvm_regs,
	.sregs = kvm_sregs,
	.dirty = kvm_dirty,
	.get_xsave = kvm_get_xsave,
	.set_xsave = kvm_set_xsave,
	.send_ipi = kvm_send_ipi,
	.irq_window = kvm_irq_window,
	.kick = kvm_kick,
};
