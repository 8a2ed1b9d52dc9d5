/* guest_abi.h -- how libdune's guest-side code and its host side talk (C and assembly).
 *
 * The guest leaves to the host with `out` to one of three ports (allowed to CPL 3 by the
 * TSS I/O bitmap where Dune code runs at CPL 3), and reaches its CPL-0 service stub with
 * `int3` carrying DUNE_PRIV_MAGIC in rax. Frame layouts here are written by the host
 * directly into guest memory: the guest and the host share one address space.
 */
#ifndef DUNE_GUEST_ABI_H
#define DUNE_GUEST_ABI_H

#define DUNE_PORT_SYSCALL 0xd0 /* from the LSTAR stub: a system call to forward */
#define DUNE_PORT_TRAP 0xd1    /* from an IDT stub: [rsp] = vector, error code, hw frame */
#define DUNE_PORT_HCALL 0xd2   /* libdune hypercall: rax = DUNE_HC_*, args rdi, rsi, rdx */

#define DUNE_HC_TRET 1      /* rdi = upcall frame: resume the interrupted context */
#define DUNE_HC_BACK 2      /* rdi = va, rsi = len: make it guest-physically backed */
#define DUNE_HC_VMA 3       /* rdi = addr, rsi = struct dune_hc_vma *: host mapping at addr */
#define DUNE_HC_JUMP_USER 4 /* rdi = user tf, rsi = kernel tf to return to */
#define DUNE_HC_RET_USER 5  /* rdi = return value */
#define DUNE_HC_IPI 6       /* rdi = apic id, rsi = vector (CPL-3 Dune code) */
#define DUNE_HC_EXIT 7      /* rdi = status: exit_group after printing statistics */

/* #BP service calls: rax = DUNE_PRIV_MAGIC (a sign-extended imm32), rdx = op. */
#define DUNE_PRIV_MAGIC 0xffffffffd0e10000
#define DUNE_PRIV_MAGIC32 -0x2f1f0000
#define DUNE_PRIV_INVLPG 1   /* rdi = address */
#define DUNE_PRIV_FLUSH 2    /* reload CR3 */
#define DUNE_PRIV_LOAD_CR3 3 /* rdi = cr3 */
#define DUNE_PRIV_WRMSR 4    /* rdi = msr, rsi = value */
#define DUNE_PRIV_RDMSR 5    /* rdi = msr -> rax */
#define DUNE_PRIV_INVLPG_N 6 /* rdi = array of addresses, rsi = count */

/* Vectors libdune uses itself. */
#define DUNE_TLB_VECTOR 0xb0
#define DUNE_SPURIOUS_VECTOR 0xff

/* Upcall kinds: what the host asks Dune ring 0 to do before resuming. */
#define DUNE_UPC_TRAP 1         /* exception or interrupt: vec, cr2 */
#define DUNE_UPC_SIGNAL 2       /* host signal: vec = DUNE_SIGNAL_INTR_BASE + signo */
#define DUNE_UPC_USER_SYSCALL 3 /* syscall from Dune ring 3 */
#define DUNE_UPC_MIRROR 4       /* mapping syscall done: vec = nr, arg0 = aux */
#define DUNE_UPC_FLUSH 5        /* flush the TLB (missed a shootdown while outside) */

/* struct dune_upcall_frame, for the assembly. */
#define DUNE_UF_SIZE 320
#define DUNE_UF_MAGIC_VALUE 0x64756e6575706331 /* "dunecup1" */

#ifndef __ASSEMBLER__
#include <stdint.h>
#include "dune.h"

struct dune_upcall_frame {
	struct dune_tf tf;  /* the interrupted context; handlers may change it */
	uint64_t kind;
	uint64_t vec;
	uint64_t arg0, arg1;
	uint64_t cr2;
	uint64_t in_user;   /* the interrupted context was Dune ring 3 */
	uint64_t fs_base;   /* its FS base */
	uint64_t xsave;     /* where its FPU/AVX state is saved (0: not saved) */
	uint64_t magic;
	uint64_t sysret;    /* resume as a return from a ring-3 syscall */
	uint64_t pad[9];
};

_Static_assert(sizeof(struct dune_tf) == 168, "struct dune_tf has the original layout");
_Static_assert(sizeof(struct dune_upcall_frame) == DUNE_UF_SIZE, "upcall frame size");

struct dune_hc_vma {
	uint64_t start, end;
	int64_t prot; /* PROT_* */
};

/* The guest-visible per-vCPU block: descriptor tables and interrupt stacks. */
struct dune_tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));

#define DUNE_IST_SIZE 8192

struct dune_percpu {
	uint64_t self;
	uint64_t vcpu;
	uint64_t apic_id;
	uint64_t ufs_base;      /* FS base of Dune ring-3 code */
	_Atomic uint64_t tlb_ack; /* last shootdown generation this vCPU processed */
	uint64_t pad0[11];
	uint64_t gdt[16] __attribute__((aligned(16)));
	struct dune_tss tss __attribute__((aligned(16)));
	uint8_t iobm[8192 + 1]; /* I/O permission bitmap + terminator, right after the TSS */
	uint8_t ist1[DUNE_IST_SIZE] __attribute__((aligned(4096)));
	uint8_t ist2[4096] __attribute__((aligned(4096)));
	uint8_t ist3[4096] __attribute__((aligned(4096)));
};
#endif

#endif /* DUNE_GUEST_ABI_H */
