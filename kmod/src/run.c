// SPDX-License-Identifier: GPL-2.0
/*
 * run.c - the vendor-neutral run loop of a Dune thread.
 *
 * Each turn first does the host's work -- a fatal signal ends the thread, a signal the
 * process registered (DUNE_SET_SIGNALS) becomes a guest interrupt, any other signal or
 * pending task work (e.g. the last fput() of a file the guest closed) returns to user mode
 * for Linux to handle (DUNE_RET_SIGNAL, then libdune re-enters), a pending reschedule
 * schedules -- then enters guest mode once and handles the exit. Physical interrupts and
 * NMIs always end guest mode, so a signal, a reschedule IPI or the tick is noticed within
 * one interrupt.
 */
#include <linux/ratelimit.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/signal.h>
#include <linux/task_work.h>

#include "core.h"

bool dune_host_work_pending(void)
{
	return need_resched() || signal_pending(current) || task_work_pending(current);
}

/*
 * A system call that a signal interrupted was rewound to be made again. If that signal is
 * now delivered to a guest handler, decide as Linux does when it runs a handler:
 * -ERESTARTNOHAND and -ERESTART_RESTARTBLOCK fail with -EINTR, -ERESTARTSYS restarts only
 * with SA_RESTART, -ERESTARTNOINTR always restarts. Called with the siglock held.
 */
static void restart_for_handler(struct dune_vcpu *v, int sig)
{
	bool restart;

	if (!v->restart.pending)
		return;
	switch (v->restart.err) {
	case -ERESTARTNOHAND:
	case -ERESTART_RESTARTBLOCK:
		restart = false;
		break;
	case -ERESTARTSYS:
		restart = current->sighand->action[sig - 1].sa.sa_flags & SA_RESTART;
		break;
	default:
		restart = true;
	}
	if (!restart) {
		v->rip += dune_vendor->syscall_insn_len;
		v->regs[DUNE_REG_RAX] = -EINTR;
	}
	v->restart.pending = false;
}

/*
 * Turns pending, unblocked signals of the registered set into pending guest interrupts.
 * Returns true when a signal (or signal-like work) Linux must handle is still pending.
 */
static bool take_signals(struct dune_vcpu *v)
{
	u64 want = atomic64_read(&v->vm->sig_mask);
	kernel_siginfo_t info;
	enum pid_type type;
	sigset_t keep;
	int sig;

	if (want) {
		spin_lock_irq(&current->sighand->siglock);
		for (;;) {
			siginitsetinv(&keep, want);
			sigorsets(&keep, &keep, &current->blocked);
			sig = dequeue_signal(current, &keep, &info, &type);
			if (sig <= 0)
				break;
			set_bit(DUNE_SIGNAL_INTR_BASE + sig, v->irq_pending);
			restart_for_handler(v, sig);
		}
		spin_unlock_irq(&current->sighand->siglock);
	}
	return signal_pending(current);
}

static DEFINE_RATELIMIT_STATE(violation_rs, DEFAULT_RATELIMIT_INTERVAL, DEFAULT_RATELIMIT_BURST);

static enum dune_outcome npt_fault(struct dune_vcpu *v, const struct dune_exit *exit,
				   bool *cont)
{
	int r;

	v->stats.npt_faults++;
	r = dune_mmu_fault(v, exit->gpa, exit->write);
	*cont = true;
	switch (r) {
	case 0:
	case -EAGAIN: /* raced with an invalidation: the guest faults again */
	case -EINTR:  /* a fatal signal came: the next turn sees it */
	case -ERESTARTSYS:
		return DUNE_OUT_VIOLATION; /* ignored: *cont */
	case -ENOMEM:
		*cont = false;
		v->error = r;
		return DUNE_OUT_NOENTER;
	default:
		*cont = false;
		v->fault_gpa = exit->gpa;
		if (__ratelimit(&violation_rs)) { /* with the guest's state: what touched it */
			pr_info("dune: pid %d: guest-physical %#llx is not memory the process may %s (%d); guest stopped\n",
				v->tid, exit->gpa, exit->write ? "write" : "read", r);
			dune_vendor->dump(v);
		}
		return DUNE_OUT_VIOLATION;
	}
}

enum dune_outcome dune_vcpu_run(struct dune_vcpu *v)
{
	enum dune_outcome out;
	struct dune_exit exit;
	bool cont;

	for (;;) {
		if (fatal_signal_pending(current))
			return DUNE_OUT_FATAL_SIGNAL;
		if (signal_pending(current) && take_signals(v))
			return DUNE_OUT_SIGNAL;
		if (task_work_pending(current))
			return DUNE_OUT_SIGNAL;
		if (need_resched())
			schedule();

		dune_vendor->run(v, &exit);
		if (exit.kind == DUNE_EXIT_REQUEST)
			continue;
		if (exit.kind == DUNE_EXIT_BUSY) {
			v->error = -EBUSY;
			return DUNE_OUT_NOENTER;
		}
		v->ran = true;
		v->restart.pending = false; /* the guest ran past any rewound call */

		switch (exit.kind) {
		case DUNE_EXIT_SYSCALL:
			out = dune_handle_syscall(v, &cont);
			break;
		case DUNE_EXIT_NPF:
			out = npt_fault(v, &exit, &cont);
			break;
		case DUNE_EXIT_FATAL:
			v->exit_code = exit.code;
			pr_info_ratelimited("dune: pid %d: guest stopped by exit %#llx\n", v->tid,
					    exit.code);
			dune_vendor->dump(v);
			return DUNE_OUT_UNHANDLED;
		default:
			continue;
		}
		if (!cont)
			return out;
	}
}
