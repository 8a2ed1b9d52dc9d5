/* SPDX-License-Identifier: GPL-2.0 */
/*
 * regs.h - where each guest general-purpose register lives in struct dune_vcpu.regs[].
 * Included by C and by the world-switch assembly, which loads and saves all but RAX and
 * RSP (those two live in the vendor's guest-state area during a run).
 */
#ifndef DUNE_REGS_H
#define DUNE_REGS_H

#define DUNE_REG_RAX 0
#define DUNE_REG_RCX 1
#define DUNE_REG_RDX 2
#define DUNE_REG_RBX 3
#define DUNE_REG_RSP 4
#define DUNE_REG_RBP 5
#define DUNE_REG_RSI 6
#define DUNE_REG_RDI 7
#define DUNE_REG_R8 8
#define DUNE_REG_R9 9
#define DUNE_REG_R10 10
#define DUNE_REG_R11 11
#define DUNE_REG_R12 12
#define DUNE_REG_R13 13
#define DUNE_REG_R14 14
#define DUNE_REG_R15 15
#define DUNE_NR_REGS 16

#endif /* DUNE_REGS_H */
