// SPDX-License-Identifier: GPL-2.0
/*
 * syscall.c - the guest's system calls, run inside the kernel through the syscall table.
 *
 * The guest's `syscall` lands at the guest's LSTAR, where libdune's stub issues VMMCALL
 * with the number in RAX and the arguments in RDI, RSI, RDX, R10, R8, R9. The module calls
 * the kernel's own sys_call_table entry for it, in the thread's context, and puts the
 * result in RAX -- without returning to user space.
 *
 * For the duration of the call the thread's user register frame (current_pt_regs(), which
 * holds the DUNE_ENTER ioctl's caller) is replaced by the guest's registers, so that every
 * call that looks at the caller's registers sees the guest: fork/clone/clone3/vfork copy
 * it into the child (which starts in normal mode at the guest's return address with RAX 0,
 * as in the original Dune), execve replaces it with the new image's, sigaltstack checks
 * the guest's stack pointer. The frame is put back afterwards, except after a successful
 * execve: then the thread leaves Dune mode and returns straight into the new image.
 *
 * exit and exit_group end Dune mode for the thread (DUNE_RET_EXIT with the status; RAX
 * still holds the number, so libdune knows which to call). They are not run in here: a
 * task that dies inside the ioctl would never drop the file reference the ioctl holds.
 *
 * sys_call_table is not exported in 6.1. It is found through kallsyms_lookup_name (itself
 * found with a kprobe, the usual way since 5.7) and accepted only if four of its entries
 * are exactly the __x64_sys_* functions kallsyms names for them.
 */
#include <linux/errno.h>
#include <linux/kprobes.h>
#include <linux/nospec.h>
#include <linux/ptrace.h>
#include <linux/sched.h>
#include <linux/sched/task_stack.h>
#include <linux/seccomp.h>
#include <asm/syscall.h>
#include <asm/unistd.h>

#include "core.h"

typedef long (*dune_sys_fn)(const struct pt_regs *regs);
static const dune_sys_fn *sys_table;

static unsigned long (*find_kallsyms_lookup_name(void))(const char *name)
{
	struct kprobe kp = { .symbol_name = "kallsyms_lookup_name" };
	unsigned long addr;

	if (register_kprobe(&kp) < 0)
		return NULL;
	addr = (unsigned long)kp.addr;
	unregister_kprobe(&kp);
	return (unsigned long (*)(const char *))addr;
}

int dune_syscall_init(void)
{
	static const struct {
		unsigned int nr;
		const char *name;
	} checks[] = {
		{ __NR_read, "__x64_sys_read" },
		{ __NR_getpid, "__x64_sys_getpid" },
		{ __NR_clone3, "__x64_sys_clone3" },
		{ __NR_exit_group, "__x64_sys_exit_group" },
	};
	unsigned long (*lookup)(const char *name) = find_kallsyms_lookup_name();
	int i;

	if (!lookup) {
		pr_err("dune: kallsyms_lookup_name not found (needs CONFIG_KPROBES, CONFIG_KALLSYMS)\n");
		return -ENOENT;
	}
	sys_table = (const dune_sys_fn *)lookup("sys_call_table");
	if (!sys_table) {
		pr_err("dune: sys_call_table not found in kallsyms\n");
		return -ENOENT;
	}
	for (i = 0; i < ARRAY_SIZE(checks); i++) {
		if ((unsigned long)sys_table[checks[i].nr] != lookup(checks[i].name)) {
			pr_err("dune: sys_call_table entry %u is not %s: not the x86-64 table\n",
			       checks[i].nr, checks[i].name);
			sys_table = NULL;
			return -ENOENT;
		}
	}
	return 0;
}

/*
 * An in-kernel call is not filtered by seccomp: a thread under a seccomp filter gets
 * -EPERM for every call instead (exit still works), so Dune can never widen a filter.
 */
bool dune_syscalls_blocked(void)
{
	return READ_ONCE(current->seccomp.mode) != SECCOMP_MODE_DISABLED;
}

#define CHILD_FLAGS                                                                        \
	(X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | X86_EFLAGS_ZF | X86_EFLAGS_SF |     \
	 X86_EFLAGS_DF | X86_EFLAGS_OF)

static void guest_to_frame(const struct dune_vcpu *v, struct pt_regs *f, unsigned long nr)
{
	const unsigned long *r = v->regs;

	f->di = r[DUNE_REG_RDI];
	f->si = r[DUNE_REG_RSI];
	f->dx = r[DUNE_REG_RDX];
	f->r10 = r[DUNE_REG_R10];
	f->r8 = r[DUNE_REG_R8];
	f->r9 = r[DUNE_REG_R9];
	f->cx = r[DUNE_REG_RCX];
	f->r11 = r[DUNE_REG_R11];
	f->bx = r[DUNE_REG_RBX];
	f->bp = r[DUNE_REG_RBP];
	f->r12 = r[DUNE_REG_R12];
	f->r13 = r[DUNE_REG_R13];
	f->r14 = r[DUNE_REG_R14];
	f->r15 = r[DUNE_REG_R15];
	f->ax = -ENOSYS;
	f->orig_ax = nr;
	/*
	 * A child of fork/clone returns to user mode here. The VMMCALL sits at the guest's
	 * LSTAR, no user address; then, as in the original Dune, the guest's `syscall` left
	 * the return address in RCX. Only arithmetic flags pass: never IOPL, NT, TF or AC.
	 */
	f->ip = v->rip < TASK_SIZE_MAX ? v->rip : r[DUNE_REG_RCX];
	f->sp = r[DUNE_REG_RSP];
	f->flags = (v->rflags & CHILD_FLAGS) | X86_EFLAGS_IF | X86_EFLAGS_FIXED;
	/* cs and ss keep the frame's user selectors. */
}

/* Runs system call nr for the guest; sets *exec when the thread now runs a new image. */
static long call_host(struct dune_vcpu *v, unsigned long nr, bool *exec)
{
	struct pt_regs *frame = current_pt_regs();
	struct pt_regs saved;
	long ret;

	if (nr >= NR_syscalls)
		return -ENOSYS;
	nr = array_index_nospec(nr, NR_syscalls);
	saved = *frame;
	guest_to_frame(v, frame, nr);
	ret = sys_table[nr](frame);
	if (current->mm != v->vm->mm) { /* a successful execve: keep the new image's frame */
		*exec = true;
		return ret;
	}
	*frame = saved;
	return ret;
}

/* Puts a result in RAX; a call interrupted for a signal is rewound to be made again. */
static void set_result(struct dune_vcpu *v, unsigned long nr, long ret)
{
	switch (ret) {
	case -ERESTART_RESTARTBLOCK:
		nr = __NR_restart_syscall;
		fallthrough;
	case -ERESTARTSYS:
	case -ERESTARTNOINTR:
	case -ERESTARTNOHAND:
		v->regs[DUNE_REG_RAX] = nr;
		v->rip -= dune_vendor->syscall_insn_len;
		v->restart.pending = true;
		v->restart.err = ret;
		break;
	default:
		v->regs[DUNE_REG_RAX] = ret;
	}
}

/*
 * Handles DUNE_EXIT_SYSCALL. Returns with *cont true when the guest goes on; otherwise the
 * returned outcome ends Dune mode for the thread.
 */
enum dune_outcome dune_handle_syscall(struct dune_vcpu *v, bool *cont)
{
	unsigned long nr = v->regs[DUNE_REG_RAX];
	bool exec = false;
	long ret;

	*cont = true;
	v->stats.syscalls++;
	switch (nr) {
	case __NR_exit:
	case __NR_exit_group:
		v->exit_status = v->regs[DUNE_REG_RDI];
		*cont = false;
		return DUNE_OUT_EXIT;
	case __NR_rt_sigreturn: /* there is no host signal frame in guest mode */
		ret = -ENOSYS;
		break;
	case __NR_iopl: /* refused as in the original: port I/O is the guest's #GP anyway */
		ret = -EINVAL;
		break;
	default:
		if (dune_syscalls_blocked()) {
			ret = -EPERM;
			break;
		}
		ret = call_host(v, nr, &exec);
		if (exec) {
			*cont = false;
			return DUNE_OUT_EXEC;
		}
	}
	set_result(v, nr, ret);
	return DUNE_OUT_EXIT; /* ignored: *cont */
}
