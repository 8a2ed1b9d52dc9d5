/*
 * drt.h - a tiny Dune runtime over the raw /dev/dune ABI, for the module's tests.
 *
 * It does what libdune does, minimally: opens /dev/dune, builds a guest page table that
 * maps the three windows of struct dune_layout with 2 MiB pages (guest-virtual = host-
 * virtual), maps a syscall stub (VMMCALL; jmp *%rcx) at the guest's LSTAR, and gives each
 * thread a GDT, a TSS with interrupt stacks, and a shared IDT whose handlers save all
 * registers and the FPU state. drt_enter() turns the calling thread into a Dune thread and
 * returns 0 there (CPL 0, same stack, same registers), like libdune's dune_enter().
 *
 * The vDSO gets no special mapping: it is reachable only when it lies in the stack window,
 * so tests call time functions through syscall().
 *
 * When Dune mode ends, the thread runs drt's exit path in normal mode: DUNE_RET_EXIT calls
 * the real exit or exit_group with the status, DUNE_RET_SIGNAL re-enters, anything else
 * prints one line and calls exit_group(DRT_STATUS(ret)).
 */
#ifndef DRT_H
#define DRT_H

#include <stdbool.h>
#include <stdint.h>

#include "dune_ioctl.h"

#define PTE_P 0x1ULL
#define PTE_W 0x2ULL
#define PTE_U 0x4ULL
#define PTE_A 0x20ULL
#define PTE_D 0x40ULL
#define PTE_PS 0x80ULL
#define PTE_ADDR 0x000ffffffffff000ULL

/* Exit status of a process whose guest stopped for `ret` (struct dune_config.ret). */
#define DRT_STATUS(ret) (64 + (ret))
/* Exit status after an exception no handler took: 128 + vector. */
#define DRT_TRAP_STATUS(vector) (128 + (vector))

struct drt_tf {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error, rip, cs, rflags, rsp, ss;
};

typedef void (*drt_handler)(struct drt_tf *tf);

int drt_init(void);  /* once per process; -errno */
int drt_enter(void); /* per thread; 0 in guest mode (also when already there), or -errno */
bool drt_in_guest(void);
int drt_fd(void);
const struct dune_layout *drt_layout(void);
uint64_t drt_lstar(void);
uint64_t drt_pml4_pa(void);

void drt_set_handler(int vector, drt_handler fn);
/* Delivers sig to Dune threads as interrupt DUNE_SIGNAL_INTR_BASE + sig, calling fn. */
int drt_on_signal(int sig, drt_handler fn);

uint64_t drt_va_to_pa(const void *va);
/* The 4 KiB guest PTE of va (a 2 MiB mapping is split first); flush after changing it. */
uint64_t *drt_pte(const void *va);
void drt_invlpg(const void *va);
void drt_flush_tlb(void);

/* Guest-mode privileged helpers. */
uint64_t drt_rdmsr(uint32_t msr);
void drt_wrmsr(uint32_t msr, uint64_t value);
uint64_t drt_read_cr2(void);
uint64_t drt_read_cr3(void);
uint16_t drt_read_cs(void);

#endif /* DRT_H */
