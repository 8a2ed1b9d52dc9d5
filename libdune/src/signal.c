/* signal.c -- host signals as Dune interrupts.
 *
 * dune_register_signal_handler(sig, cb) installs libdune's host handler for sig. When the
 * signal hits a Dune thread (in KVM_RUN or in a forwarded syscall), the handler only
 * marks it pending; the thread's host loop then starts the callback as an interrupt on
 * vector DUNE_SIGNAL_INTR_BASE + sig before the guest runs another instruction. No
 * SA_RESTART: a blocking syscall interrupted this way returns EINTR, so the interrupt is
 * not delayed until the call completes. On a thread outside Dune mode the callback runs
 * right away in normal mode, with a frame built from the signal context.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>

#include "dune_internal.h"

static void host_handler(int sig, siginfo_t *si, void *ucv)
{
	struct dune_vcpu *v = dune_self;

	(void)si;
	if (v) {
		atomic_fetch_or(&v->pending_sigs, 1ull << sig);
		if (dune_g.bk->kick)
			dune_g.bk->kick(v->h); /* it may be about to enter the guest */
		return;
	}
	dune_intr_cb cb = dune_intr_handler(DUNE_SIGNAL_INTR_BASE + sig);
	if (!cb)
		return;
	ucontext_t *uc = ucv;
	const greg_t *g = uc->uc_mcontext.gregs;
	struct dune_tf tf;
	memset(&tf, 0, sizeof(tf));
	tf.rdi = (uint64_t)g[REG_RDI];
	tf.rsi = (uint64_t)g[REG_RSI];
	tf.rdx = (uint64_t)g[REG_RDX];
	tf.rcx = (uint64_t)g[REG_RCX];
	tf.r8 = (uint64_t)g[REG_R8];
	tf.r9 = (uint64_t)g[REG_R9];
	tf.r10 = (uint64_t)g[REG_R10];
	tf.r11 = (uint64_t)g[REG_R11];
	tf.rbx = (uint64_t)g[REG_RBX];
	tf.rbp = (uint64_t)g[REG_RBP];
	tf.r12 = (uint64_t)g[REG_R12];
	tf.r13 = (uint64_t)g[REG_R13];
	tf.r14 = (uint64_t)g[REG_R14];
	tf.r15 = (uint64_t)g[REG_R15];
	tf.rax = (uint64_t)g[REG_RAX];
	tf.rip = (uint64_t)g[REG_RIP];
	tf.rflags = (uint64_t)g[REG_EFL];
	tf.rsp = (uint64_t)g[REG_RSP];
	tf.cs = GD_UT | 3;
	tf.ss = GD_UD | 3;
	dune_current_vector = DUNE_SIGNAL_INTR_BASE + sig;
	cb(&tf);
}

int dune_register_signal_handler(int signum, dune_intr_cb cb)
{
	struct sigaction sa;

	if (signum <= 0 || signum >= 64 || DUNE_SIGNAL_INTR_BASE + signum >= IDT_ENTRIES ||
	    signum == SIGKILL || signum == SIGSTOP)
		return -EINVAL;
	int r = dune_register_intr_handler(DUNE_SIGNAL_INTR_BASE + signum, cb);
	if (r)
		return r;
	memset(&sa, 0, sizeof(sa));
	if (cb) {
		sa.sa_sigaction = host_handler;
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
		sigfillset(&sa.sa_mask);
	} else {
		sa.sa_handler = SIG_DFL;
	}
	if (sigaction(signum, &sa, NULL) < 0)
		return -errno;
	return 0;
}
