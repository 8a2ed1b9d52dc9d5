/* dune_internal.h -- libdune's core state, shared by its source files (not installed). */
#ifndef DUNE_INTERNAL_H
#define DUNE_INTERNAL_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "backend.h"
#include "dune.h"
#include "guest_abi.h"

#define HIDDEN __attribute__((visibility("hidden")))
/* Thread-locals read by the host loop must not go through __tls_get_addr (which may
 * allocate): libdune is loaded with the program, so initial-exec is always available. */
#define DUNE_TLS __thread __attribute__((tls_model("initial-exec")))

/* ---- process-wide state ------------------------------------------------------------ */

struct dune_state {
	int initialized;
	pid_t pid;                        /* the process the VM belongs to (fork detection) */
	const struct dune_backend_ops *bk;
	enum dune_backend_kind kind;
	enum dune_virt virt;
	struct dune_vm_info info;
	int cpl;                          /* 0 or 3: where Dune ring-0 code runs */
	uint64_t xcr0;                    /* host XCR0 */
	uint64_t xsave_mask;              /* components saved around handlers */
	size_t xsave_size;                /* bytes for an XSAVE image of xsave_mask */
	int has_fsgsbase;                 /* wrfsbase usable in user space */
	uint64_t idt_base;                /* guest IDT (shared by every vCPU) */
	int eager_max_mb;                 /* mirror eagerly up to this size */
};

extern struct dune_state dune_g HIDDEN;

/* ---- per-vCPU state ---------------------------------------------------------------- */

enum { VCPU_FREE = 0, VCPU_OUT, VCPU_IN_GUEST };

struct dune_vcpu {
	int index;
	void *h;                          /* backend handle */
	struct dune_percpu *pc;           /* guest-visible per-vCPU block */
	char *hstack;                     /* host-loop stack */
	size_t hstack_size;
	char *tstack;                     /* guest handler (upcall) stack */
	size_t tstack_size;
	void *xsave_buf;                  /* scratch XSAVE image (host side) */
	_Atomic int state;
	_Atomic uint64_t pending_sigs;    /* host signals to deliver as interrupts */
	uint64_t sigs_in_handler;         /* signals whose handler runs (host loop only) */
	pid_t tid;
	struct dune_regs entry;           /* where dune_enter() resumes in the guest */
	/* Dune ring 3 (dune_jump_to_user): the kernel context to return to, if any. */
	struct dune_tf *kctx;
	int async_exit;                   /* the last exit came between two instructions */
	int in_user;
	uint64_t kfs_base;                /* FS base of Dune ring-0 code */
	struct dune_vcpu_stats stats;
	struct dune_vcpu *next_free;
};

/* The calling thread's vCPU while it is in Dune mode (NULL otherwise). */
extern DUNE_TLS struct dune_vcpu *dune_self HIDDEN;

/* Every vCPU ever created (index -> vcpu), for IPIs, shootdown and statistics. */
#define DUNE_MAX_VCPUS 256
extern struct dune_vcpu *dune_vcpus[DUNE_MAX_VCPUS] HIDDEN;
extern _Atomic int dune_nvcpus HIDDEN;

/* ---- layout.c: guest-physical windows and memslots -------------------------------- */

#define DUNE_WINDOW_SHIFT 30
#define DUNE_WINDOW_SIZE (1ull << DUNE_WINDOW_SHIFT)
#define DUNE_USER_TOP 0x7ffffffff000ull /* TASK_SIZE of 4-level x86-64 Linux */

int dune_layout_init(int phys_bits) HIDDEN;
/* The original Dune layout (/dev/dune, struct dune_layout): identity below
 * phys_limit - 64 GiB, then 63 GiB for [base_map, ...) and 1 GiB for [base_stack, ...);
 * nothing else is reachable. */
int dune_layout_init_fixed(uint64_t phys_limit, uint64_t base_map, uint64_t base_stack) HIDDEN;
/* Makes [va, va+len) guest-physically backed (creating memslots). Host context only. */
int dune_layout_back(uintptr_t va, size_t len) HIDDEN;
/* The same from anywhere: calls the host when running in the guest. */
int dune_layout_ensure(uintptr_t va, size_t len) HIDDEN;
int dune_layout_is_backed(uintptr_t va) HIDDEN;
int dune_layout_tables(int (*fn)(const void *p, size_t len)) HIDDEN;
/* Re-creates every memslot in a fresh VM (fork child). */
int dune_layout_replay(void) HIDDEN;
uintptr_t dune_layout_pa_to_va(physaddr_t pa) HIDDEN;

/* ---- util.c ---------------------------------------------------------------------- */

/* One line to stderr, formatted on the stack and written with one write(2): usable from
 * the host loop and from handlers (no stdio locks, no malloc). */
void dune_warn(const char *fmt, ...) HIDDEN __attribute__((format(printf, 1, 2)));

/* ---- pool.c ---------------------------------------------------------------------- */

int dune_pool_init(size_t bytes) HIDDEN;
void *dune_pool_page_va(struct page *pg) HIDDEN;

/* ---- vm.c ------------------------------------------------------------------------ */

/* Maps [va, va+len) to the host's own memory (guest-physical = dune_va_to_pa(va)) with
 * hardware flags `flags` (PTE_P/W/U/NX...), using 2 MiB entries where aligned. */
int dune_vm_map_host(ptent_t *root, uintptr_t va, size_t len, ptent_t flags) HIDDEN;
/* Clears every entry in [va, va+len). */
void dune_vm_clear(ptent_t *root, uintptr_t va, size_t len) HIDDEN;
/* Changes the permission flags of the mirrored (PTE_MIRROR) entries in the range;
 * returns how many entries changed. */
long dune_vm_reprotect_mirror(ptent_t *root, uintptr_t va, size_t len, ptent_t flags) HIDDEN;
ptent_t *dune_vm_walk(ptent_t *root, uintptr_t va, int *level) HIDDEN;
void dune_vm_lock(void) HIDDEN;
void dune_vm_unlock(void) HIDDEN;

/* ---- mirror.c: the guest page table follows the host's mappings ------------------ */

ptent_t dune_prot_to_pte(int prot) HIDDEN;
int dune_mirror_init(void) HIDDEN;
/* After a mapping-changing syscall `nr` with arguments `a` returned `ret` (guest side). */
void dune_mirror_after_syscall(long nr, const uint64_t a[6], long ret, uint64_t aux) HIDDEN;
/* A #PF the page table explains by a stale or missing host mapping? Resolves it and
 * returns 1, else 0 (guest side). */
int dune_mirror_fault(uintptr_t addr, uint64_t fec) HIDDEN;
/* The page table already allows the access that faulted (a stale translation): flushes it
 * and returns 1, a few times in a row at most (trap.c). */
int dune_fault_is_spurious(uintptr_t addr, uint64_t fec) HIDDEN;
/* Host side: the host VMA containing addr (prot as PROT_*), or -ENOENT. */
int dune_host_vma(uintptr_t addr, uintptr_t *start, uintptr_t *end, int *prot) HIDDEN;
int dune_mirror_range_host(uintptr_t start, uintptr_t end) HIDDEN;
/* The mapping lock: a change to the host's mappings made by libdune or by Dune code, and
 * the matching page-table update, happen under it, so that one thread's late update never
 * undoes another's newer one (a late clear of a range the host has meanwhile reused for a
 * vCPU's stacks, say). Recursive per thread; usable on the host side and in the guest
 * (contention waits in futex(2), forwarded from the guest); taken on the host side before
 * a forwarded mapping syscall and released in the guest by the mirror upcall. */
void dune_map_lock(void) HIDDEN;
void dune_map_unlock(void) HIDDEN;
void dune_map_lock_reset(void) HIDDEN; /* in a forked child */

/* ---- backend_kmod.c: /dev/dune (the module runs the vCPU; Dune ring 0 does the rest) */

/* The signal that carries emulated IPIs under /dev/dune (no x2APIC there). */
#define DUNE_KMOD_IPI_SIGNAL 55
extern int __dune_kernel_loop HIDDEN; /* the backend runs vCPUs in the kernel */
extern uint64_t dune_signal_mask HIDDEN; /* bit signo - 1: registered with libdune */
int dune_kmod_enter(struct dune_vcpu *v) HIDDEN;
int dune_kmod_set_signals(uint64_t mask) HIDDEN;
int dune_kmod_send_ipi(uint32_t apic_id, uint8_t vector) HIDDEN;
long dune_kmod_hcall(long nr, uint64_t a0, uint64_t a1, uint64_t a2) HIDDEN;

/* ---- entry.c / run.c ------------------------------------------------------------- */

void dune_vcpu_boot(struct dune_vcpu *v) HIDDEN __attribute__((noreturn));
void dune_after_fork_child(void) HIDDEN;
long dune_host_syscall(struct dune_vcpu *v, struct dune_regs *r) HIDDEN;
/* For a mapping call `nr` about to be made: what its page-table update needs to know
 * besides the result (the old break for brk, the segment size for shmat and shmdt).
 * `sys` makes the queries: a plain syscall on the host side, but in Dune ring 0 on
 * /dev/dune one that bypasses the LSTAR stub, whose brk path would call this again. */
typedef long (*dune_sys6_fn)(long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
			     uint64_t a4, uint64_t a5);
uint64_t dune_mapping_aux(long nr, const uint64_t a[6], dune_sys6_fn sys) HIDDEN;
/* Arranges for the guest to run upcall `kind` (DUNE_UPC_*) in Dune ring 0 before it
 * resumes its current context (run.c). */
int dune_upcall(struct dune_vcpu *v, int kind, uint64_t vec, uint64_t arg0) HIDDEN;
void dune_fatal_exit(struct dune_vcpu *v, int sig, const char *why) HIDDEN
	__attribute__((noreturn));
void dune_exit_process(int status) HIDDEN __attribute__((noreturn));

/* A test-and-set lock held for a few instructions that cannot fault. */
static inline void dune_spin_lock(atomic_flag *f)
{
	while (atomic_flag_test_and_set_explicit(f, memory_order_acquire))
		__builtin_ia32_pause();
}

static inline void dune_spin_unlock(atomic_flag *f)
{
	atomic_flag_clear_explicit(f, memory_order_release);
}

/* ---- guest-side helpers ---------------------------------------------------------- */

/* libdune's hypercall: out to DUNE_PORT_HCALL, nr in rax, args in rdi/rsi/rdx. */
static inline long dune_hcall(long nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
	long ret;

	if (__dune_kernel_loop) /* /dev/dune: Dune ring 0 does it itself */
		return dune_kmod_hcall(nr, a0, a1, a2);
	__asm__ volatile("outb %%al, %[port]"
			 : "=a"(ret)
			 : "a"(nr), "D"(a0), "S"(a1), "d"(a2), [port] "i"(DUNE_PORT_HCALL)
			 : "memory");
	return ret;
}

/* A raw system call (forwarded to the host in Dune mode), returning -errno. */
static inline long dune_raw_syscall6(long nr, long a0, long a1, long a2, long a3, long a4,
				     long a5)
{
	long ret;
	register long r10 __asm__("r10") = a3;
	register long r8 __asm__("r8") = a4;
	register long r9 __asm__("r9") = a5;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

/* A privileged operation from CPL-3 Dune code through the #BP service stub. */
static inline uint64_t dune_priv_call(uint32_t op, uint64_t a0, uint64_t a1)
{
	uint64_t rax = DUNE_PRIV_MAGIC, rdx = op;
	__asm__ volatile("int3"
			 : "+a"(rax), "+D"(a0), "+S"(a1), "+d"(rdx)
			 :
			 : "rcx", "memory");
	return rax;
}

/* Trap dispatch in Dune ring 0 (trap.c). */
void dune_trap_dispatch(struct dune_tf *tf, int vec, uint64_t cr2) HIDDEN;
void dune_syscall_dispatch(struct dune_tf *tf) HIDDEN;
void dune_die_signal(int sig) HIDDEN __attribute__((noreturn));
void dune_tlb_handle_ipi(void) HIDDEN;
void dune_tlb_catch_up(void) HIDDEN;
uint64_t dune_tlb_generation(void) HIDDEN;
void dune_tlb_flush_local_all(void) HIDDEN;
void dune_stats_at_exit(void) HIDDEN;
int dune_stats_enabled_at_exit(void) HIDDEN;
extern DUNE_TLS int dune_current_vector HIDDEN;
dune_intr_cb dune_intr_handler(int vec) HIDDEN;
void dune_signal_deliver_host(int sig, siginfo_t *si, void *uc) HIDDEN;

#endif /* DUNE_INTERNAL_H */
