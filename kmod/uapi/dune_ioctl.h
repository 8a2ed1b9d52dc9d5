/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * dune_ioctl.h - the /dev/dune ioctl ABI.
 *
 * Numbers, structure layouts and constants are those of the original Dune module
 * (github.com/project-dune/dune, kern/dune.h), so programs written for it keep working;
 * DUNE_SET_SIGNALS is the one addition. Shared by the kernel module and user space.
 * Semantics of each call: docs/kmod.md, "The /dev/dune ABI".
 */
#ifndef DUNE_IOCTL_H
#define DUNE_IOCTL_H

#ifndef __ASSEMBLY__
#include <linux/ioctl.h>
#include <linux/types.h>
#endif

#define DUNE_MINOR 233 /* the ioctl "type" byte of the original ABI */

/*
 * DUNE_ENTER: run the calling thread in guest mode from the state in struct dune_config;
 * returns when Dune mode ends for the thread, with the reason in ->ret.
 * DUNE_GET_SYSCALL: returns the guest's LSTAR (where the guest's `syscall` lands).
 * DUNE_GET_LAYOUT: fills struct dune_layout (the guest-physical layout of this process).
 * (The original's 0x04/0x05, DUNE_TRAP_ENABLE/DISABLE, are not provided: -ENOTTY.)
 */
#define DUNE_ENTER _IOR(DUNE_MINOR, 0x01, struct dune_config)
#define DUNE_GET_SYSCALL _IO(DUNE_MINOR, 0x02)
#define DUNE_GET_LAYOUT _IOW(DUNE_MINOR, 0x03, struct dune_layout)
/*
 * DUNE_SET_SIGNALS (new): the __u64 pointed to is a mask, bit (signo - 1), of the signals
 * this process wants delivered to Dune-mode threads as interrupt DUNE_SIGNAL_INTR_BASE +
 * signo. Signals 1..55 (vector <= 255), never SIGKILL or SIGSTOP. Per process (mm).
 */
#define DUNE_SET_SIGNALS _IOW(DUNE_MINOR, 0x10, __u64)

#define DUNE_SIGNAL_INTR_BASE 200
#define DUNE_SIGNAL_MAX 55

#ifndef __ASSEMBLY__
struct dune_config {
	__s64 ret;
	__u64 rax;
	__u64 rbx;
	__u64 rcx;
	__u64 rdx;
	__u64 rsi;
	__u64 rdi;
	__u64 rsp;
	__u64 rbp;
	__u64 r8;
	__u64 r9;
	__u64 r10;
	__u64 r11;
	__u64 r12;
	__u64 r13;
	__u64 r14;
	__u64 r15;
	__u64 rip;
	__u64 rflags;
	__u64 cr3;
	__s64 status;
	__u64 vcpu;
} __attribute__((packed));

struct dune_layout {
	__u64 phys_limit;
	__u64 base_map;
	__u64 base_stack;
} __attribute__((packed));
#endif /* __ASSEMBLY__ */

/*
 * Guest-physical layout: below phys_limit - GPA_STACK_SIZE - GPA_MAP_SIZE, guest-physical
 * equals host-virtual; the next GPA_MAP_SIZE bytes map [base_map, base_map + GPA_MAP_SIZE)
 * (the mmap area); the top GPA_STACK_SIZE bytes map [base_stack, base_stack + GPA_STACK_SIZE).
 */
#define GPA_STACK_SIZE ((unsigned long)1 << 30) /* 1 gigabyte */
#define GPA_MAP_SIZE (((unsigned long)1 << 36) - GPA_STACK_SIZE) /* 63 gigabytes */
#define LG_ALIGN(addr) ((addr + (1 << 30) - 1) & ~((1 << 30) - 1))

/* struct dune_config.ret */
#define DUNE_RET_EXIT 1 /* exit/exit_group: status = code, rax = syscall number */
#define DUNE_RET_EPT_VIOLATION 2 /* guest-physical address not memory of the process */
#define DUNE_RET_INTERRUPT 3 /* not produced by this module */
#define DUNE_RET_SIGNAL 4 /* return to Linux (signal or pending work); re-enter */
#define DUNE_RET_UNHANDLED_VMEXIT 5 /* triple fault, invalid state: status = exit code */
#define DUNE_RET_NOENTER 6 /* could not (re-)enter guest mode: status = -errno */

/* Offsets for assembly, as in the original header. */
#define IOCTL_DUNE_ENTER 0x80b0e901
#define DUNE_CFG_RET 0x00
#define DUNE_CFG_RAX 0x08
#define DUNE_CFG_RBX 0x10
#define DUNE_CFG_RCX 0x18
#define DUNE_CFG_RDX 0x20
#define DUNE_CFG_RSI 0x28
#define DUNE_CFG_RDI 0x30
#define DUNE_CFG_RSP 0x38
#define DUNE_CFG_RBP 0x40
#define DUNE_CFG_R8 0x48
#define DUNE_CFG_R9 0x50
#define DUNE_CFG_R10 0x58
#define DUNE_CFG_R11 0x60
#define DUNE_CFG_R12 0x68
#define DUNE_CFG_R13 0x70
#define DUNE_CFG_R14 0x78
#define DUNE_CFG_R15 0x80
#define DUNE_CFG_RIP 0x88
#define DUNE_CFG_RFLAGS 0x90
#define DUNE_CFG_CR3 0x98
#define DUNE_CFG_STATUS 0xa0
#define DUNE_CFG_VCPU 0xa8

#endif /* DUNE_IOCTL_H */
