/* entry.c -- dune_init() and dune_enter(): the VM, the descriptor tables, the vCPUs. */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dune_internal.h"

struct dune_state dune_g;
struct dune_vcpu *dune_vcpus[DUNE_MAX_VCPUS];
_Atomic int dune_nvcpus;
DUNE_TLS struct dune_vcpu *dune_self;
ptent_t *pgroot;
int __dune_cpl0;

extern char __dune_idt_stubs[] HIDDEN;
extern char __dune_syscall_entry[] HIDDEN;
int __dune_enter_trampoline(struct dune_regs *save, void *stack_top, struct dune_vcpu *v) HIDDEN;

static struct dune_vcpu *free_vcpus;
static pthread_mutex_t vcpu_lock = PTHREAD_MUTEX_INITIALIZER;

#define HOST_STACK_SIZE (512 * 1024)
#define HANDLER_STACK_SIZE (1024 * 1024)

/* ---- configuration --------------------------------------------------------------- */

static int select_backend(void)
{
	const char *want = getenv("DUNE_BACKEND");

	if (!want || !*want || !strcmp(want, "auto")) {
		if (access("/dev/kvm", F_OK) == 0 || access("/dev/dune", F_OK) != 0) {
			dune_g.bk = &dune_kvm_backend;
			dune_g.kind = DUNE_BACKEND_KVM;
		} else {
			dune_g.bk = &dune_kmod_backend;
			dune_g.kind = DUNE_BACKEND_KMOD;
		}
		return 0;
	}
	if (!strcmp(want, "kvm")) {
		dune_g.bk = &dune_kvm_backend;
		dune_g.kind = DUNE_BACKEND_KVM;
		return 0;
	}
	if (!strcmp(want, "kmod")) {
		dune_g.bk = &dune_kmod_backend;
		dune_g.kind = DUNE_BACKEND_KMOD;
		return 0;
	}
	fprintf(stderr, "dune: DUNE_BACKEND=%s: expected auto, kvm or kmod\n", want);
	return -EINVAL;
}

static uint64_t read_xcr0(void)
{
	unsigned a, b, c, d;

	__cpuid(1, a, b, c, d);
	if (!(c & (1u << 27))) /* OSXSAVE */
		return 3;
	__asm__ volatile("xgetbv" : "=a"(a), "=d"(d) : "c"(0));
	return ((uint64_t)d << 32) | a;
}

/* Bytes of a standard-format XSAVE image holding the components in `mask`. */
static size_t xsave_size_for(uint64_t mask)
{
	size_t size = 576; /* legacy area + header */
	unsigned a, b, c, d;

	for (int i = 2; i < 63; i++) {
		if (!(mask & (1ull << i)))
			continue;
		__cpuid_count(0xd, i, a, b, c, d);
		if (a && b + a > size)
			size = b + a;
	}
	return (size + 63) & ~(size_t)63;
}

static void setup_fpu_policy(void)
{
	unsigned a, b, c, d;

	__cpuid(1, a, b, c, d);
	if (!(c & (1u << 27))) { /* no OSXSAVE (QEMU's qemu64 CPU): FXSAVE images */
		dune_g.xcr0 = 3;
		dune_g.xsave_mask = 0;
		dune_g.xsave_size = 512;
		dune_g.has_fsgsbase = 0;
		return;
	}
	dune_g.xcr0 = read_xcr0();
	/* Tile data is not part of a KVM guest's state on hosts that lack AMX guest support
	 * (KVM-PVM here); never save or restore it around handlers. */
	dune_g.xsave_mask = dune_g.xcr0 & ~(uint64_t)((1u << 17) | (1u << 18));
	dune_g.xsave_size = xsave_size_for(dune_g.xsave_mask);
	__cpuid_count(7, 0, a, b, c, d);
	dune_g.has_fsgsbase = (b & 1) != 0;
}

/* ---- the IDT (one, shared by all vCPUs) ----------------------------------------- */

struct idt_gate {
	uint16_t off0, sel;
	uint8_t ist, type;
	uint16_t off1;
	uint32_t off2, reserved;
} __attribute__((packed));

static int setup_idt(void)
{
	struct idt_gate *idt = mmap(NULL, PGSIZE, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (idt == MAP_FAILED)
		return -errno;
	for (int i = 0; i < IDT_ENTRIES; i++) {
		uint64_t a = (uint64_t)(uintptr_t)(__dune_idt_stubs + 16 * i);
		int dpl = (i == T_BRKPT || i == T_OFLOW) ? 3 : 0; /* int3/into from ring 3 */
		int ist = i == T_DBLFLT ? 2 : (i == T_NMI || i == T_MCHK) ? 3 : 1;

		idt[i].off0 = a & 0xffff;
		idt[i].sel = GD_KT;
		idt[i].ist = (uint8_t)ist;
		idt[i].type = (uint8_t)(0x8e | (dpl << 5)); /* present interrupt gate */
		idt[i].off1 = (a >> 16) & 0xffff;
		idt[i].off2 = (uint32_t)(a >> 32);
		idt[i].reserved = 0;
	}
	mprotect(idt, PGSIZE, PROT_READ);
	dune_g.idt_base = (uint64_t)(uintptr_t)idt;
	return 0;
}

/* ---- dune_init ------------------------------------------------------------------- */

static int env_int(const char *name, int dflt)
{
	const char *s = getenv(name);
	return s && *s ? atoi(s) : dflt;
}

int dune_init(bool map_full)
{
	char why[160];
	int r;

	(void)map_full; /* host mappings are always mirrored; see dune.h */
	if (dune_g.initialized)
		return 0;
	if ((r = select_backend()) < 0)
		return r;
	dune_g.virt = dune_detect_virt(why, sizeof(why));
	if ((r = dune_g.bk->open(&dune_g.info)) < 0) {
		dune_g.kind = DUNE_BACKEND_NONE;
		return r;
	}
	/* Where Dune ring-0 code runs: CPL 0, unless guest CPL 0 is emulated (KVM-PVM). */
	dune_g.cpl = dune_g.virt == DUNE_VIRT_PVM ? 3 : 0;
	const char *cpl = getenv("DUNE_GUEST_CPL");
	if (cpl && (!strcmp(cpl, "0") || !strcmp(cpl, "3")))
		dune_g.cpl = atoi(cpl);
	if (dune_g.virt == DUNE_VIRT_PVM)
		dune_g.info.big_1g_pages = 0; /* KVM-PVM does not translate 1 GiB guest pages */
	__dune_cpl0 = dune_g.cpl == 0;
	dune_g.eager_max_mb = env_int("DUNE_EAGER_MAX_MB", 256);
	setup_fpu_policy();

	if ((r = dune_layout_init(dune_g.info.phys_bits)) < 0 ||
	    (r = dune_pool_init((size_t)env_int("DUNE_POOL_MB", 1024) << 20)) < 0) {
		fprintf(stderr, "dune: cannot set up guest memory: %s\n", strerror(-r));
		goto fail;
	}
	struct page *root = dune_page_alloc();
	if (!root) {
		r = -ENOMEM;
		fprintf(stderr, "dune: page pool exhausted creating the page-table root\n");
		goto fail;
	}
	pgroot = dune_pool_page_va(root);
	memset(pgroot, 0, PGSIZE);
	if ((r = setup_idt()) < 0) {
		fprintf(stderr, "dune: cannot allocate the IDT: %s\n", strerror(-r));
		goto fail;
	}
	if ((r = dune_mirror_init()) < 0)
		goto fail; /* mirror.c printed the cause */
	dune_g.pid = getpid();
	dune_g.initialized = 1;
	return 0;
fail:
	dune_g.bk->forget();
	dune_g.kind = DUNE_BACKEND_NONE;
	return r;
}

/* ---- vCPUs ----------------------------------------------------------------------- */

static void *map_anon(size_t len, int guard)
{
	char *p = mmap(NULL, len + (guard ? PGSIZE : 0), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (guard) {
		mprotect(p, PGSIZE, PROT_NONE);
		p += PGSIZE;
	}
	return p;
}

static void setup_percpu(struct dune_vcpu *v)
{
	struct dune_percpu *pc = v->pc;
	uint64_t tss = (uint64_t)(uintptr_t)&pc->tss;
	uint64_t lim = sizeof(pc->tss) + sizeof(pc->iobm) - 1;

	pc->self = (uint64_t)(uintptr_t)pc;
	pc->vcpu = (uint64_t)v->index;
	pc->apic_id = (uint64_t)v->index;
	pc->gdt[GD_KT >> 3] = 0x00af9b000000ffffull;       /* 64-bit code, DPL 0 */
	pc->gdt[GD_KD >> 3] = 0x00cf93000000ffffull;       /* data, DPL 0 */
	pc->gdt[4] = 0x00cffb000000ffffull;                /* 32-bit code, DPL 3 (STAR base) */
	pc->gdt[GD_UD >> 3] = 0x00cff3000000ffffull;       /* data, DPL 3 */
	pc->gdt[GD_UT >> 3] = 0x00affb000000ffffull;       /* 64-bit code, DPL 3 */
	pc->gdt[GD_TSS >> 3] = (lim & 0xffff) | ((tss & 0xffffff) << 16) | (0x8bull << 40) |
			       (((lim >> 16) & 0xf) << 48) | (((tss >> 24) & 0xff) << 56);
	pc->gdt[(GD_TSS >> 3) + 1] = tss >> 32;
	pc->tss.rsp[0] = (uint64_t)(uintptr_t)(pc->ist1 + sizeof(pc->ist1));
	pc->tss.ist[0] = (uint64_t)(uintptr_t)(pc->ist1 + sizeof(pc->ist1));
	pc->tss.ist[1] = (uint64_t)(uintptr_t)(pc->ist2 + sizeof(pc->ist2));
	pc->tss.ist[2] = (uint64_t)(uintptr_t)(pc->ist3 + sizeof(pc->ist3));
	pc->tss.iomap_base = (uint16_t)sizeof(pc->tss);
	memset(pc->iobm, 0xff, sizeof(pc->iobm));
	if (dune_g.cpl == 3) { /* Dune code at CPL 3 leaves to the host with `out` */
		for (int port = DUNE_PORT_SYSCALL; port <= DUNE_PORT_HCALL; port++)
			pc->iobm[port / 8] &= (uint8_t)~(1u << (port % 8));
	}
}

static int vcpu_create(struct dune_vcpu **out)
{
	struct dune_vcpu *v;
	int idx = atomic_load(&dune_nvcpus), r, locked = 1;

	if (idx >= DUNE_MAX_VCPUS || idx >= dune_g.info.max_vcpus) {
		fprintf(stderr, "dune: too many Dune threads (%d vCPUs)\n", idx);
		return -EAGAIN;
	}
	/* Not malloc: a thread's arena may be unknown to the guest page table, and libdune's
	 * handlers use this struct while they fill such gaps in (and malloc could wait for an
	 * arena whose owner waits for the mapping lock). Nothing between the lock and its
	 * release takes a lock that Dune code may hold. The host thread's boot XSAVE image
	 * follows the struct. */
	size_t vlen = (sizeof(*v) + 63 + dune_g.info.xsave_size + PGSIZE - 1) & ~(size_t)PGMASK;
	dune_map_lock(); /* new host mappings and their page-table entries, together */
	v = map_anon(vlen, 0);
	if (!v) {
		dune_map_unlock();
		return -ENOMEM;
	}
	v->index = idx;
	v->xsave_buf = (void *)(((uintptr_t)(v + 1) + 63) & ~(uintptr_t)63);
	v->pc = map_anon(sizeof(struct dune_percpu), 0);
	v->tstack_size = HANDLER_STACK_SIZE;
	v->tstack = map_anon(v->tstack_size, 1);
	if (!v->pc || !v->tstack) {
		r = -ENOMEM;
		goto fail;
	}
	setup_percpu(v);
	/* A new vCPU's TLB holds nothing to catch up on; a reused one (from the pool) catches
	 * up on the rounds it missed while parked, before it runs guest code. */
	atomic_store(&v->pc->tlb_ack, dune_tlb_generation());
	/* Additions to the page table are safe from the host at any time. */
	ptent_t fl = PTE_P | PTE_W | PTE_NX | (dune_g.cpl == 3 ? PTE_U : 0);
	if ((r = dune_layout_back((uintptr_t)v, vlen)) < 0 ||
	    (r = dune_vm_map_host(pgroot, (uintptr_t)v, vlen, fl)) < 0 ||
	    (r = dune_layout_back((uintptr_t)v->pc, sizeof(struct dune_percpu))) < 0 ||
	    (r = dune_layout_back((uintptr_t)v->tstack, v->tstack_size)) < 0 ||
	    (r = dune_vm_map_host(pgroot, (uintptr_t)v->pc, sizeof(struct dune_percpu), fl)) <
		    0 ||
	    (r = dune_vm_map_host(pgroot, (uintptr_t)v->tstack, v->tstack_size, fl)) < 0) {
		dune_map_unlock();
		locked = 0;
		fprintf(stderr, "dune: cannot map a vCPU's stacks: %s\n", strerror(-r));
		goto fail;
	}
	dune_map_unlock();
	locked = 0;
	if ((r = dune_g.bk->vcpu_create(idx, &v->h)) < 0) {
		fprintf(stderr, "dune: cannot create vCPU %d: %s\n", idx, strerror(-r));
		goto fail;
	}
	struct dune_vcpu_boot b = {
		.cr0 = 0x80050033,       /* PE MP ET NE WP AM PG */
		.cr3 = dune_va_to_pa(pgroot),
		.cr4 = 0x20 | 0x200 | 0x400 | (dune_g.xsave_mask ? 0x40000 : 0) |
		       (dune_g.has_fsgsbase ? 0x10000 : 0),
		.efer = 0xd01,           /* SCE LME LMA NXE */
		.gdt_base = (uint64_t)(uintptr_t)v->pc->gdt,
		.gdt_limit = sizeof(v->pc->gdt) - 1,
		.idt_base = dune_g.idt_base,
		.idt_limit = IDT_ENTRIES * 16 - 1,
		.tss_base = (uint64_t)(uintptr_t)&v->pc->tss,
		.tss_limit = sizeof(v->pc->tss) + sizeof(v->pc->iobm) - 1,
		.cs = dune_g.cpl == 0 ? GD_KT : (GD_UT | 3),
		.ss = dune_g.cpl == 0 ? GD_KD : (GD_UD | 3),
		.lstar = (uint64_t)(uintptr_t)__dune_syscall_entry,
		.star = (0x23ull << 48) | ((uint64_t)GD_KT << 32),
		.fmask = 0x47700,        /* TF DF IF IOPL NT AC, as Linux */
		.tsc_aux = (uint64_t)idx,
		.xcr0 = dune_g.xcr0,
	};
	if ((r = dune_g.bk->vcpu_setup(v->h, &b)) < 0)
		goto fail;
	dune_vcpus[idx] = v;
	atomic_store(&dune_nvcpus, idx + 1);
	*out = v;
	return 0;
fail:
	if (locked)
		dune_map_unlock();
	if (v->pc)
		munmap(v->pc, sizeof(struct dune_percpu));
	munmap(v, vlen);
	return r;
}

static int vcpu_get(struct dune_vcpu **out)
{
	int r = 0;

	pthread_mutex_lock(&vcpu_lock);
	if (free_vcpus) {
		*out = free_vcpus;
		free_vcpus = free_vcpus->next_free;
	} else {
		r = vcpu_create(out);
	}
	pthread_mutex_unlock(&vcpu_lock);
	return r;
}

/* A thread left Dune mode for good: its vCPU goes back to the pool (KVM cannot destroy a
 * vCPU before its VM). Called with signals blocked, from the exiting thread. */
void dune_vcpu_release(struct dune_vcpu *v) HIDDEN;
void dune_vcpu_release(struct dune_vcpu *v)
{
	atomic_store(&v->state, VCPU_FREE);
	pthread_mutex_lock(&vcpu_lock);
	v->next_free = free_vcpus;
	free_vcpus = v;
	pthread_mutex_unlock(&vcpu_lock);
}

/* In the child of fork(): the parent's VM and vCPUs are not ours. Forget them (closing the
 * descriptors) so the next dune_enter() builds a new VM over the same page tables. */
void dune_after_fork_child(void)
{
	int n = atomic_load(&dune_nvcpus);

	for (int i = 0; i < n; i++) {
		if (dune_vcpus[i]) {
			dune_g.bk->vcpu_forget(dune_vcpus[i]->h);
			dune_vcpus[i] = NULL;
		}
	}
	atomic_store(&dune_nvcpus, 0);
	free_vcpus = NULL;
	pthread_mutex_init(&vcpu_lock, NULL);
	dune_g.bk->forget();
	dune_g.pid = 0; /* reopen on the next dune_enter() */
	dune_self = NULL;
	dune_map_lock_reset();
}

static int reopen_after_fork(void)
{
	int r = dune_g.bk->open(&dune_g.info);

	if (r < 0)
		return r;
	if ((r = dune_layout_replay()) < 0) {
		fprintf(stderr, "dune: cannot recreate guest memory after fork: %s\n",
			strerror(-r));
		return r;
	}
	dune_g.pid = getpid();
	return 0;
}

/* ---- dune_enter ------------------------------------------------------------------ */

static uint64_t get_fs_base(void)
{
	unsigned long v = 0;
	syscall(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, &v);
	return v;
}

static uint64_t get_gs_base(void)
{
	unsigned long v = 0;
	syscall(SYS_arch_prctl, 0x1004 /* ARCH_GET_GS */, &v);
	return v;
}

int dune_enter(void)
{
	struct dune_vcpu *v;
	int r;

	if (dune_self)
		return 0;
	if (!dune_g.initialized) {
		fprintf(stderr, "dune: dune_enter() called before a successful dune_init()\n");
		return -EINVAL;
	}
	if (dune_g.pid != getpid()) {
		pthread_mutex_lock(&vcpu_lock);
		r = dune_g.pid != getpid() ? reopen_after_fork() : 0;
		pthread_mutex_unlock(&vcpu_lock);
		if (r < 0)
			return r;
	}
	if ((r = vcpu_get(&v)) < 0)
		return r;
	v->hstack_size = HOST_STACK_SIZE;
	v->hstack = map_anon(v->hstack_size, 1);
	if (!v->hstack) {
		dune_vcpu_release(v);
		return -ENOMEM;
	}
	v->tid = (pid_t)syscall(SYS_gettid);
	v->kfs_base = get_fs_base();
	/* This thread's stack and TLS block may have been mapped outside Dune mode (by
	 * pthread_create in a normal thread): mirror them now, as libdune's own handlers need
	 * both before they could fill anything in on demand. */
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
	if ((r = dune_mirror_range_host(PGADDR(sp), DUNE_USER_TOP)) < 0 ||
	    (r = dune_mirror_range_host(PGADDR(v->kfs_base), DUNE_USER_TOP)) < 0) {
		dune_warn("dune: cannot map this thread's stack or TLS: %s", strerror(-r));
		munmap(v->hstack - PGSIZE, v->hstack_size + PGSIZE);
		dune_vcpu_release(v);
		return r;
	}
	v->pc->ufs_base = v->kfs_base;
	v->in_user = 0;
	v->kctx = NULL;
	atomic_store(&v->pending_sigs, 0);
	v->sigs_in_handler = 0;

	/* The guest continues with this thread's FPU/AVX state and thread pointers. */
	memset(v->xsave_buf, 0, dune_g.info.xsave_size);
	if (dune_g.xsave_mask) {
		__asm__ volatile("xsave (%0)" ::"r"(v->xsave_buf), "a"((uint32_t)dune_g.xsave_mask),
				 "d"((uint32_t)(dune_g.xsave_mask >> 32))
				 : "memory");
	} else {
		__asm__ volatile("fxsave64 (%0)" ::"r"(v->xsave_buf) : "memory");
		((uint64_t *)v->xsave_buf)[512 / 8] = 3; /* XSTATE_BV: x87 and SSE */
	}
	if ((r = dune_g.bk->set_xsave(v->h, v->xsave_buf, dune_g.info.xsave_size)) < 0) {
		fprintf(stderr, "dune: cannot load the FPU state into the vCPU: %s\n",
			strerror(-r));
		munmap(v->hstack - PGSIZE, v->hstack_size + PGSIZE);
		dune_vcpu_release(v);
		return r;
	}
	struct dune_sregs *s = dune_g.bk->sregs(v->h);
	s->fs_base = v->kfs_base;
	s->gs_base = get_gs_base();
	s->cs = dune_g.cpl == 0 ? GD_KT : (GD_UT | 3);
	s->ss = dune_g.cpl == 0 ? GD_KD : (GD_UD | 3);
	s->cr3 = dune_va_to_pa(pgroot);
	dune_g.bk->dirty(v->h, 2);
	atomic_store(&v->state, VCPU_OUT);
	dune_self = v;
	return __dune_enter_trampoline(&v->entry, v->hstack + v->hstack_size, v);
}

/* ---- queries --------------------------------------------------------------------- */

enum dune_backend_kind dune_backend(void)
{
	return dune_g.initialized ? dune_g.kind : DUNE_BACKEND_NONE;
}

const char *dune_backend_name(enum dune_backend_kind b)
{
	switch (b) {
	case DUNE_BACKEND_KVM: return "kvm";
	case DUNE_BACKEND_KMOD: return "kmod";
	case DUNE_BACKEND_NONE: break;
	}
	return "none";
}

enum dune_virt dune_virt(void)
{
	return dune_g.initialized ? dune_g.virt : dune_detect_virt(NULL, 0);
}

int dune_guest_cpl(void)
{
	return dune_g.initialized ? dune_g.cpl : -1;
}

bool dune_in_dune_mode(void)
{
	return dune_self != NULL;
}

int dune_vcpu_index(void)
{
	return dune_self ? dune_self->index : -1;
}
