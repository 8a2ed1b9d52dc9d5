/* dune.h -- the libdune API: a Linux process with its own page tables, IDT and rings.
 *
 * Source-compatible with the original libdune (Belay et al., OSDI'12; github.com/project-dune):
 * same names, types and semantics, so programs written for it build unchanged. This
 * implementation runs over /dev/kvm (any KVM host, Intel or AMD, hardware or software
 * virtualization); a /dev/dune backend can be added behind the same API (docs/libdune.md).
 *
 * New in this version, documented below: backend and virtualization-kind queries, batched
 * cross-vCPU TLB shootdown, per-vCPU statistics (DUNE_STATS=1), dune_pa_to_va().
 *
 * The privilege level Dune code runs at is a property of the host (dune_guest_cpl()):
 *   0  the paper's setting (hardware VT-x/SVM, or QEMU TCG): Dune code is guest ring 0;
 *   3  KVM-PVM "native" mode, where guest ring 0 is interpreted instruction by instruction
 *      by KVM's emulator (no SSE4/AVX/XSAVE): Dune code runs at guest CPL 3 at full speed,
 *      and libdune performs privileged operations for it (invlpg, CR3, x2APIC) through
 *      short CPL-0 stubs. Page tables, A/D bits, traps, syscall forwarding and signals
 *      keep their semantics; the U bit cannot separate Dune ring 0 from ring 3 there.
 */
#ifndef DUNE_H
#define DUNE_H

#include <elf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "dune_platform.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- types and MMU constants (x86-64, 4-level paging) ---------------------------- */

typedef uint64_t ptent_t;
typedef uint64_t physaddr_t;
typedef uint64_t virtaddr_t;

#define NPTBITS 9
#define NPTLVLS 3 /* levels are 0 (PT) .. 3 (PML4) */
#define NPTENTRIES (1 << NPTBITS)
#define PDXMASK ((1 << NPTBITS) - 1)
#define PDSHIFT(n) (12 + NPTBITS * (n))
#define PDX(n, la) ((((uintptr_t)(la)) >> PDSHIFT(n)) & PDXMASK)

#define PGSHIFT 12
#define PGSIZE (1 << PGSHIFT)
#define PGMASK (PGSIZE - 1)
#define PGOFF(la) (((uintptr_t)(la)) & PGMASK)
#define PGADDR(la) (((uintptr_t)(la)) & ~(uintptr_t)PGMASK)
#define PPN(la) (((uintptr_t)(la)) >> PGSHIFT)

#define BIG_PGSHIFT 21
#define BIG_PGSIZE (1 << BIG_PGSHIFT)
#define BIG_PGMASK (BIG_PGSIZE - 1)
#define BIG_PGOFF(la) (((uintptr_t)(la)) & BIG_PGMASK)
#define BIG_PGADDR(la) (((uintptr_t)(la)) & ~(uintptr_t)BIG_PGMASK)

#define PTE_P 0x0001ull    /* present */
#define PTE_W 0x0002ull    /* writable */
#define PTE_U 0x0004ull    /* user */
#define PTE_PWT 0x0008ull  /* write-through */
#define PTE_PCD 0x0010ull  /* cache disable */
#define PTE_A 0x0020ull    /* accessed (set by hardware) */
#define PTE_D 0x0040ull    /* dirty (set by hardware) */
#define PTE_PS 0x0080ull   /* page size (PD/PDPT) */
#define PTE_PAT 0x0080ull  /* PAT (4 KiB PTE) */
#define PTE_G 0x0100ull    /* global */
#define PTE_AVAIL 0x0E00ull
#define PTE_PAT_PS 0x1000ull
#define PTE_AVAIL2 0x7FF0000000000000ull
#define PTE_NX 0x8000000000000000ull
/* Software bits, as in the original: */
#define PTE_COW 0x0200ull                 /* copy-on-write (read-only) */
#define PTE_USR1 0x4000000000000000ull
#define PTE_USR2 0x2000000000000000ull
#define PTE_USR3 0x1000000000000000ull
/* libdune's own software bits (hardware ignores them):
 * PTE_MIRROR marks an entry libdune copied from the host's mapping (kept in sync with
 * mmap/munmap/mprotect); entries the program writes through dune_vm_* lose it.
 * PTE_TOMB marks a range the program unmapped with dune_vm_unmap(): a fault there goes to
 * the program's handler and is never refilled from the host mapping. */
#define PTE_MIRROR 0x0400ull
#define PTE_TOMB 0x0800ull

#define PTE_ADDR(pte) ((physaddr_t)(pte) & 0x000ffffffffff000ull)
#define PTE_FLAGS(pte) ((physaddr_t)(pte) & 0xfff0000000000fffull)

/* Page-fault error code bits (tf->err of a #PF). */
#define FEC_P 0x1   /* protection violation (page was present) */
#define FEC_W 0x2   /* write */
#define FEC_U 0x4   /* from Dune ring 3 (never set for Dune ring-0 code, whatever the CPL) */
#define FEC_RSV 0x8 /* reserved bit */
#define FEC_I 0x10  /* instruction fetch */

/* Exception vectors. */
#define T_DIVIDE 0
#define T_DEBUG 1
#define T_NMI 2
#define T_BRKPT 3
#define T_OFLOW 4
#define T_BOUND 5
#define T_ILLOP 6
#define T_DEVICE 7
#define T_DBLFLT 8
#define T_TSS 10
#define T_SEGNP 11
#define T_STACK 12
#define T_GPFLT 13
#define T_PGFLT 14
#define T_FPERR 16
#define T_ALIGN 17
#define T_MCHK 18
#define T_SIMDERR 19
#define IDT_ENTRIES 256

/* Segment selectors of libdune's GDT (the same layout as Linux, so STAR matches). */
#define GD_KT 0x10
#define GD_KD 0x18
#define GD_UD 0x28
#define GD_UT 0x30
#define GD_TSS 0x40

/* ---- trap frames and handlers ----------------------------------------------------- */

/* Same layout as the original (and as the hardware exception frame from `rip` on). */
struct dune_tf {
	uint64_t rdi, rsi, rdx, rcx, r8, r9, r10, r11;
	uint64_t rbx, rbp, r12, r13, r14, r15;
	uint64_t rax;
	uint32_t err;
	uint32_t pad1;
	uint64_t rip;
	uint16_t cs;
	uint16_t pad2[3];
	uint64_t rflags;
	uint64_t rsp;
	uint16_t ss;
	uint16_t pad3[3];
} __attribute__((packed));

/* Syscall arguments of a trap frame from a ring-3 syscall (RCX holds the 4th argument, as
 * the original's entry code arranged). */
#define ARG0(tf) ((tf)->rdi)
#define ARG1(tf) ((tf)->rsi)
#define ARG2(tf) ((tf)->rdx)
#define ARG3(tf) ((tf)->rcx)
#define ARG4(tf) ((tf)->r8)
#define ARG5(tf) ((tf)->r9)

typedef void (*dune_intr_cb)(struct dune_tf *tf);
typedef void (*dune_pgflt_cb)(uintptr_t addr, uint64_t fec, struct dune_tf *tf);
typedef void (*dune_syscall_cb)(struct dune_tf *tf);

/* A host signal `signo` reaches a Dune thread as an interrupt on this vector + signo, when a
 * handler was registered with dune_register_signal_handler() (signo <= 55). */
#define DUNE_SIGNAL_INTR_BASE 200

/* All return 0 or a negative errno. Handlers run in Dune mode on a per-vCPU handler stack
 * (the interrupted stack and its red zone are untouched), with the interrupted FPU/AVX
 * state saved and restored around them. A handler may change *tf to resume elsewhere. */
int dune_register_intr_handler(int vec, dune_intr_cb cb);
int dune_register_signal_handler(int signum, dune_intr_cb cb);
void dune_register_pgflt_handler(dune_pgflt_cb cb);
void dune_register_syscall_handler(dune_syscall_cb cb);

/* Runs `tf` in Dune ring 3 (tf->cs/ss are set to the user selectors). Its syscalls go to
 * the registered syscall handler; the call returns when a handler calls
 * dune_ret_from_user(ret), with that value (or a negative errno if it cannot start). */
int dune_jump_to_user(struct dune_tf *tf);
void dune_ret_from_user(int ret) __attribute__((noreturn));
/* Performs the system call described by a ring-3 trap frame; the result goes to tf->rax. */
void dune_passthrough_syscall(struct dune_tf *tf);
void dune_dump_trap_frame(struct dune_tf *tf);

/* ---- utilities ------------------------------------------------------------------- */

typedef void (*sighandler_t)(int);

static inline unsigned long dune_get_ticks(void)
{
	unsigned int a, d;
	__asm__ volatile("rdtsc" : "=a"(a), "=d"(d));
	return ((unsigned long)a) | (((unsigned long)d) << 32);
}

/* printf to stderr with one write(2); safe in handlers. */
int dune_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Ends the process at once with SIGKILL-free exit status 1 ("dune_die" of the original). */
void dune_die(void) __attribute__((noreturn));
/* mmap(2) whose result is guaranteed mapped in the Dune page table on return. */
void *dune_mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset);
/* Installs `cb` as the Dune interrupt handler of `sig` (a sighandler-style wrapper). */
sighandler_t dune_signal(int sig, sighandler_t cb);
/* FS base used while running Dune ring-3 code (defaults to the thread's own). */
unsigned long dune_get_user_fs(void);
void dune_set_user_fs(unsigned long fs_base);

/* ---- page allocation (pages backed by libdune's pool, guest-physically contiguous) -- */

SLIST_HEAD(page_head, page);
typedef SLIST_ENTRY(page) page_entry_t;

struct page {
	page_entry_t link;
	uint64_t ref;
};

extern struct page *pages;
extern int num_pages;
extern physaddr_t dune_pool_pa; /* guest-physical address of pages[0] */

struct page *dune_page_alloc(void);
void dune_page_free(struct page *pg);
void dune_page_stats(void);
bool dune_page_isfrompool(physaddr_t pa);

static inline struct page *dune_pa2page(physaddr_t pa)
{
	return &pages[PPN(pa - dune_pool_pa)];
}

static inline physaddr_t dune_page2pa(struct page *pg)
{
	return dune_pool_pa + ((physaddr_t)(pg - pages) << PGSHIFT);
}

static inline struct page *dune_page_get(struct page *pg)
{
	__atomic_add_fetch(&pg->ref, 1, __ATOMIC_RELAXED);
	return pg;
}

static inline void dune_page_put(struct page *pg)
{
	if (__atomic_sub_fetch(&pg->ref, 1, __ATOMIC_ACQ_REL) == 0)
		dune_page_free(pg);
}

/* ---- virtual memory ------------------------------------------------------------- */

/* The page-table root every Dune thread of the process runs on. */
extern ptent_t *pgroot;

/* Guest-physical address of a process virtual address, and back. Guest-physical equals
 * virtual when the CPU's MAXPHYADDR covers the user address space (>= 48 bits); otherwise
 * libdune assigns guest-physical windows on demand (a compressed layout). */
physaddr_t __dune_va_to_pa_slow(const void *va);
void *__dune_pa_to_va_slow(physaddr_t pa);
extern int dune_layout_identity;

static inline physaddr_t dune_va_to_pa(const void *ptr)
{
	if (dune_layout_identity)
		return (physaddr_t)(uintptr_t)ptr;
	return __dune_va_to_pa_slow(ptr);
}

static inline void *dune_pa_to_va(physaddr_t pa)
{
	if (dune_layout_identity)
		return (void *)(uintptr_t)pa;
	return __dune_pa_to_va_slow(pa);
}

#define PERM_NONE 0
#define PERM_R 0x0001
#define PERM_W 0x0002
#define PERM_X 0x0004
#define PERM_U 0x0008
#define PERM_UC 0x0010
#define PERM_COW 0x0020
#define PERM_USR1 0x1000
#define PERM_USR2 0x2000
#define PERM_USR3 0x3000
#define PERM_BIG 0x0100     /* 2 MiB pages */
#define PERM_BIG_1GB 0x0200 /* 1 GiB pages (2 MiB where the host cannot translate them) */

#define PERM_SCODE (PERM_R | PERM_X)
#define PERM_STEXT (PERM_R | PERM_W)
#define PERM_SSTACK PERM_STEXT
#define PERM_UCODE (PERM_R | PERM_U | PERM_X)
#define PERM_UTEXT (PERM_R | PERM_U | PERM_W)
#define PERM_USTACK PERM_UTEXT

#define VA_START ((void *)0)
#define VA_END ((void *)-1)

enum {
	CREATE_NONE = 0,
	CREATE_NORMAL = 1,
	CREATE_BIG = 2,
	CREATE_BIG_1GB = 3,
};

/* Nonzero while Dune code runs at CPL 0 (privileged instructions are executed directly). */
extern int __dune_cpl0;
void __dune_priv_invlpg(unsigned long addr);
void __dune_priv_flush_tlb(void);
void __dune_priv_load_cr3(unsigned long cr3);

/* TLB maintenance of the calling vCPU only (see dune_tlb_shootdown() for all vCPUs). */
static inline void dune_flush_tlb_one(unsigned long addr)
{
	if (__dune_cpl0)
		__asm__ volatile("invlpg (%0)" ::"r"(addr) : "memory");
	else
		__dune_priv_invlpg(addr);
}

static inline void dune_flush_tlb(void)
{
	if (__dune_cpl0)
		__asm__ volatile("mov %%cr3, %%rax\n\tmov %%rax, %%cr3" ::: "rax", "memory");
	else
		__dune_priv_flush_tlb();
}

#define CR3_NOFLUSH (1UL << 63)

/* Switches the calling vCPU to another page-table root (a guest-physical address, e.g.
 * dune_va_to_pa(dune_vm_clone(pgroot))). */
static inline void load_cr3(unsigned long cr3)
{
	if (__dune_cpl0)
		__asm__ volatile("mov %0, %%cr3" ::"r"(cr3) : "memory");
	else
		__dune_priv_load_cr3(cr3);
}

/* The page-table API of the original. `root` is a virtual address (e.g. pgroot). The
 * mapping functions do not flush the TLB; dune_vm_mprotect() and dune_vm_unmap() flush the
 * calling vCPU's TLB as the original did (use dune_tlb_shootdown() for the others). */
int dune_vm_mprotect(ptent_t *root, void *va, size_t len, int perm);
int dune_vm_map_phys(ptent_t *root, void *va, size_t len, void *pa, int perm);
int dune_vm_map_pages(ptent_t *root, void *va, size_t len, int perm);
void dune_vm_unmap(ptent_t *root, void *va, size_t len);
/* Finds the leaf entry (4 KiB PTE, or the 2 MiB/1 GiB entry mapping `va`); with `create`,
 * allocates missing tables. Returns 0, or -ENOENT. */
int dune_vm_lookup(ptent_t *root, void *va, int create, ptent_t **pte_out);
int dune_vm_insert_page(ptent_t *root, void *va, struct page *pg, int perm);
struct page *dune_vm_lookup_page(ptent_t *root, void *va);
ptent_t *dune_vm_clone(ptent_t *root);
void dune_vm_free(ptent_t *root);
void dune_vm_default_pgflt_handler(uintptr_t addr, uint64_t fec);

typedef int (*page_walk_cb)(const void *arg, ptent_t *ptep, void *va);
int dune_vm_page_walk(ptent_t *root, void *start_va, void *end_va, page_walk_cb cb,
		      const void *arg);

/* ---- batched cross-vCPU TLB shootdown (new) -------------------------------------- */

/* Queue invalidations on the calling thread (a bounded queue; beyond it, the next
 * shootdown flushes everything), then dune_tlb_shootdown() invalidates them on this vCPU
 * and sends one IPI round that every other running vCPU of the process acknowledges before
 * it returns. vCPUs outside the guest at that moment (in a host syscall) invalidate their
 * whole TLB before they next run guest code. Returns 0 or a negative errno. */
void dune_tlb_queue_page(void *va);
void dune_tlb_queue_range(void *va, size_t len);
int dune_tlb_shootdown(void);
int dune_tlb_shootdown_all(void); /* full flush everywhere */

/* ---- process memory map ---------------------------------------------------------- */

#define PROCMAP_TYPE_UNKNOWN 0x00
#define PROCMAP_TYPE_FILE 0x01
#define PROCMAP_TYPE_ANONYMOUS 0x02
#define PROCMAP_TYPE_HEAP 0x03
#define PROCMAP_TYPE_STACK 0x04
#define PROCMAP_TYPE_VSYSCALL 0x05
#define PROCMAP_TYPE_VDSO 0x06
#define PROCMAP_TYPE_VVAR 0x07

struct dune_procmap_entry {
	uintptr_t begin;
	uintptr_t end;
	uint64_t offset;
	bool r, w, x, p;
	char *path;
	int type;
};

typedef void (*dune_procmap_cb)(const struct dune_procmap_entry *);
void dune_procmap_iterate(dune_procmap_cb cb);
void dune_procmap_dump(void);

/* ---- ELF helpers ----------------------------------------------------------------- */

struct dune_elf {
	int fd;
	unsigned char *mem;
	int len;
	Elf64_Ehdr hdr;
	Elf64_Phdr *phdr;
	Elf64_Shdr *shdr;
	char *shdrstr;
	void *priv;
};

typedef int (*dune_elf_phcb)(struct dune_elf *elf, Elf64_Phdr *phdr);
typedef int (*dune_elf_shcb)(struct dune_elf *elf, const char *sname, int snum,
			     Elf64_Shdr *shdr);

int dune_elf_open(struct dune_elf *elf, const char *path);
int dune_elf_open_mem(struct dune_elf *elf, void *mem, int len);
int dune_elf_close(struct dune_elf *elf);
int dune_elf_dump(struct dune_elf *elf);
int dune_elf_iter_sh(struct dune_elf *elf, dune_elf_shcb cb);
int dune_elf_iter_ph(struct dune_elf *elf, dune_elf_phcb cb);
/* Loads a PT_LOAD segment at p_vaddr + off (file contents, zero-filled tail). */
int dune_elf_load_ph(struct dune_elf *elf, Elf64_Phdr *phdr, off_t off);

/* ---- x2APIC ---------------------------------------------------------------------- */

/* The calling vCPU's APIC ID, the APIC ID of vCPU `vcpu`, an IPI to `dest` (an APIC ID),
 * and an end-of-interrupt. libdune acknowledges (EOIs) LAPIC interrupts itself before a
 * handler runs, so dune_apic_eoi() is harmless and only kept for compatibility. */
uint32_t dune_apic_id(void);
uint32_t dune_apic_id_for_vcpu(int vcpu);
void dune_apic_send_ipi(uint8_t vector, uint32_t dest_apic_id);
void dune_apic_eoi(void);

/* ---- entry ----------------------------------------------------------------------- */

/* Prepares the process (VM, page tables, pool). Returns 0 or a negative errno, printing one
 * line naming the cause. `map_full` is accepted for compatibility: host mappings are always
 * mirrored (eagerly for regions up to 256 MiB, on first touch for larger ones). */
int dune_init(bool map_full);
/* Enters Dune mode in the calling thread; idempotent. Threads created afterwards and the
 * children of fork() start in normal mode and may call dune_enter() themselves. */
int dune_enter(void);

static inline int dune_init_and_enter(void)
{
	int ret = dune_init(1);
	if (ret)
		return ret;
	return dune_enter();
}

/* ---- backend, platform and state queries (new) ----------------------------------- */

/* DUNE_BACKEND=auto|kvm|kmod selects how Dune mode is provided (default auto: /dev/kvm if
 * usable, else /dev/dune). */
enum dune_backend_kind {
	DUNE_BACKEND_NONE = 0, /* before a successful dune_init() */
	DUNE_BACKEND_KVM,
	DUNE_BACKEND_KMOD,
};

enum dune_backend_kind dune_backend(void);
const char *dune_backend_name(enum dune_backend_kind b); /* "none", "kvm", "kmod" */
enum dune_virt dune_virt(void);                          /* hw, pvm, tcg (or none) */
int dune_guest_cpl(void); /* 0 or 3: the CPU privilege level of Dune ring-0 code */
bool dune_in_dune_mode(void); /* whether the calling thread is in Dune mode */
int dune_vcpu_index(void);    /* the calling thread's vCPU, or -1 */

/* ---- per-vCPU statistics (new) ---------------------------------------------------- */

struct dune_vcpu_stats {
	uint64_t exits;          /* every return from the guest */
	uint64_t exit_syscall;   /* forwarded system calls */
	uint64_t exit_trap;      /* exceptions and interrupts delivered through the host */
	uint64_t exit_hypercall; /* libdune's own requests (trap return, memslots, ...) */
	uint64_t exit_signal;    /* KVM_RUN interrupted by a host signal */
	uint64_t exit_mmio;      /* accesses to guest-physical memory without a memslot */
	uint64_t exit_other;
	uint64_t page_faults;    /* #PF delivered to libdune */
	uint64_t lazy_maps;      /* faults resolved by mirroring a host mapping */
	uint64_t signals;        /* host signals delivered as interrupts */
	uint64_t shootdowns_sent;
	uint64_t shootdowns_recv;
};

int dune_stats_vcpus(void); /* how many vCPUs this process created */
int dune_stats_get(int vcpu, struct dune_vcpu_stats *out);
void dune_stats_print(int fd); /* also printed at exit when DUNE_STATS=1 */

#ifdef __cplusplus
}
#endif

#endif /* DUNE_H */
