/*
 * dune_signal_test - signals and Dune threads, run inside QEMU: registered signals arrive
 * as guest interrupts (DUNE_SIGNAL_INTR_BASE + signo), others are handled by Linux (host
 * handlers through DUNE_RET_SIGNAL and re-entry, default actions, stop/continue), system
 * calls restart as Linux restarts them, and SIGKILL ends a Dune process in any state.
 */
#define _GNU_SOURCE
#include "drt.h"
#include "dtest.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <time.h>

struct shared {
	volatile int ready, acked, go, host_ran;
	volatile long counter;
};
static struct shared *sh;
static volatile int got;
static volatile uint64_t last_vector;

static void init_enter(void)
{
	CHECK_EQ(drt_init(), 0);
	CHECK_EQ(drt_enter(), 0);
}

static void setup_shared(void)
{
	sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(sh != MAP_FAILED);
}

static void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&t, &t) && errno == EINTR)
		;
}

static void on_signal(struct drt_tf *tf)
{
	got++;
	last_vector = tf->vector;
}

static void case_registered(void)
{
	const int n = 200;
	pid_t parent = getpid(), sender;
	int status;

	setup_shared();
	init_enter();
	CHECK_EQ(drt_on_signal(SIGUSR1, on_signal), 0);
	sender = fork();
	if (sender == 0) { /* normal mode: one signal at a time, each acknowledged */
		for (int i = 0; i < n; i++) {
			kill(parent, SIGUSR1);
			while (sh->acked < i + 1)
				sched_yield();
		}
		_exit(0);
	}
	while (got < n) /* in guest mode, interrupts on */
		sh->acked = got;
	sh->acked = got;
	status = dtest_wait(sender, 0);
	CHECK(EXITED_WITH(status, 0));
	CHECK_EQ(got, n);
	CHECK_EQ(last_vector, DUNE_SIGNAL_INTR_BASE + SIGUSR1);
}

static void case_self(void)
{
	sigset_t pending;

	init_enter();
	CHECK_EQ(drt_on_signal(SIGUSR1, on_signal), 0);
	CHECK_EQ(drt_on_signal(SIGUSR2, on_signal), 0);
	for (int i = 1; i <= 100; i++) {
		CHECK_EQ(kill(getpid(), i % 2 ? SIGUSR1 : SIGUSR2), 0);
		CHECK_EQ(got, i); /* handled before kill() returned */
	}
	CHECK_EQ(raise(SIGUSR1), 0);
	CHECK_EQ(got, 101);
	CHECK_EQ(sigpending(&pending), 0);
	CHECK(!sigismember(&pending, SIGUSR1));
}

static void host_handler(int sig)
{
	(void)sig;
	sh->host_ran++;
}

static void __attribute__((noinline)) spin_until_host_ran(void)
{
	volatile uint64_t canary[64];

	for (int i = 0; i < 64; i++)
		canary[i] = 0xca11ab1e00000000ULL + i;
	while (sh->host_ran < 10)
		;
	for (int i = 0; i < 64; i++) /* the host's signal frames went elsewhere */
		CHECK_EQ(canary[i], 0xca11ab1e00000000ULL + i);
}

static void case_host_handler(void)
{
	struct sigaction sa = { .sa_handler = host_handler, .sa_flags = SA_RESTART };
	pid_t parent = getpid(), sender;
	int status;

	setup_shared();
	CHECK_EQ(sigaction(SIGUSR2, &sa, NULL), 0); /* a host handler, not registered with Dune */
	init_enter();
	sender = fork();
	if (sender == 0) {
		for (int i = 0; i < 10; i++) {
			kill(parent, SIGUSR2);
			while (sh->host_ran < i + 1)
				sched_yield();
		}
		_exit(0);
	}
	spin_until_host_ran(); /* DUNE_RET_SIGNAL, the handler in normal mode, re-entry */
	CHECK(drt_in_guest());
	status = dtest_wait(sender, 0);
	CHECK(EXITED_WITH(status, 0));
}

static void spin_in_guest(void *arg)
{
	(void)arg;
	init_enter();
	sh->ready = 1;
	for (;;)
		sh->counter++;
}

static void block_in_read(void *arg)
{
	int p[2];
	char c;

	(void)arg;
	CHECK_EQ(pipe(p), 0);
	init_enter();
	sh->ready = 1;
	read(p[0], &c, 1); /* never returns */
}

static void sleep_in_host_handler(int sig)
{
	(void)sig;
	sh->ready = 1;
	for (;;)
		pause();
}

static void parked_in_host_handler(void *arg)
{
	struct sigaction sa = { .sa_handler = sleep_in_host_handler };

	(void)arg;
	CHECK_EQ(sigaction(SIGUSR2, &sa, NULL), 0);
	init_enter();
	raise(SIGUSR2); /* returns to Linux, which runs the handler: it never comes back */
	for (;;)
		;
}

static void *spinning_thread(void *arg)
{
	(void)arg;
	CHECK_EQ(drt_enter(), 0);
	__atomic_add_fetch(&sh->ready, 1, __ATOMIC_SEQ_CST);
	for (;;)
		sh->counter++;
	return NULL;
}

static void threads_in_guest(void *arg)
{
	pthread_t t[3];

	(void)arg;
	init_enter();
	for (int i = 0; i < 3; i++) /* created from guest mode; each enters Dune itself */
		CHECK_EQ(pthread_create(&t[i], NULL, spinning_thread, NULL), 0);
	while (sh->ready < 3)
		;
	for (;;)
		sh->counter++;
}

/* Starts fn in a child, waits until it says it is in place, sends sig, returns the status. */
static int signal_child(void (*fn)(void *), int sig)
{
	int status;
	pid_t pid;

	sh->ready = 0;
	pid = fork();
	if (pid == 0) {
		fn(NULL);
		_exit(99);
	}
	CHECK(pid > 0);
	while (!sh->ready)
		sched_yield();
	sleep_ms(50); /* let it block */
	CHECK_EQ(kill(pid, sig), 0);
	status = dtest_wait(pid, 0);
	return status;
}

static void case_default_action(void)
{
	setup_shared();
	CHECK(KILLED_BY(signal_child(spin_in_guest, SIGTERM), SIGTERM));
	CHECK(KILLED_BY(signal_child(block_in_read, SIGINT), SIGINT));
}

static void case_sigkill(void)
{
	setup_shared();
	CHECK(KILLED_BY(signal_child(spin_in_guest, SIGKILL), SIGKILL));
	CHECK(KILLED_BY(signal_child(block_in_read, SIGKILL), SIGKILL));
	CHECK(KILLED_BY(signal_child(parked_in_host_handler, SIGKILL), SIGKILL));
	CHECK(KILLED_BY(signal_child(threads_in_guest, SIGKILL), SIGKILL));
}

static void case_restart(void)
{
	struct sigaction no_restart;
	pid_t parent = getpid(), sender;
	int p[2], status;
	char c;

	setup_shared();
	CHECK_EQ(pipe(p), 0);
	init_enter();
	CHECK_EQ(drt_on_signal(SIGUSR1, on_signal), 0); /* SA_RESTART */
	sender = fork();
	if (sender == 0) { /* phase 1: a signal, then data; 2 and 3: signals until answered */
		while (sh->go != 1)
			sched_yield();
		sleep_ms(100);
		kill(parent, SIGUSR1);
		sleep_ms(200);
		CHECK_EQ(write(p[1], "r", 1), 1);
		for (int phase = 2; phase <= 3; phase++) {
			while (sh->go < phase) /* the parent may already be past it */
				sched_yield();
			while (sh->go == phase) {
				sleep_ms(200);
				kill(parent, SIGUSR1);
			}
		}
		_exit(0);
	}
	sh->go = 1;
	/* The handler runs, then read() goes on waiting and returns the byte written later. */
	CHECK_EQ(read(p[0], &c, 1), 1);
	CHECK_EQ(c, 'r');
	CHECK(got >= 1);
	CHECK_EQ(sigaction(SIGUSR1, NULL, &no_restart), 0);
	no_restart.sa_flags &= ~SA_RESTART;
	CHECK_EQ(sigaction(SIGUSR1, &no_restart, NULL), 0);
	sh->go = 2;
	CHECK_EQ(read(p[0], &c, 1), -1); /* without SA_RESTART: EINTR after the handler */
	CHECK_EQ(errno, EINTR);
	CHECK(got >= 2);
	sh->go = 3;
	CHECK_EQ(pause(), -1); /* pause() always returns EINTR after a handler */
	CHECK_EQ(errno, EINTR);
	CHECK(got >= 3);
	sh->go = 4;
	status = dtest_wait(sender, 0);
	CHECK(EXITED_WITH(status, 0));
}

static char proc_state(pid_t pid)
{
	char path[64], buf[256], *p;
	int fd, n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	CHECK(n > 0);
	buf[n] = 0;
	p = strrchr(buf, ')');
	CHECK(p != NULL);
	return p[2];
}

static void case_stop_continue(void)
{
	long before;
	int status;
	pid_t pid;

	setup_shared();
	sh->ready = 0;
	pid = fork();
	if (pid == 0)
		spin_in_guest(NULL);
	while (!sh->ready)
		sched_yield();
	CHECK_EQ(kill(pid, SIGSTOP), 0);
	status = dtest_wait(pid, WUNTRACED);
	CHECK(WIFSTOPPED(status));
	CHECK_EQ(proc_state(pid), 'T');
	before = sh->counter;
	sleep_ms(200);
	CHECK_EQ(sh->counter, before); /* stopped means stopped, guest mode or not */
	CHECK_EQ(kill(pid, SIGCONT), 0);
	while (sh->counter == before)
		sched_yield();
	CHECK_EQ(kill(pid, SIGKILL), 0);
	status = dtest_wait(pid, 0);
	CHECK(KILLED_BY(status, SIGKILL));
}

static const struct dtest_case cases[] = {
	{ "registered", case_registered, "200 signals from another process: guest interrupts" },
	{ "self", case_self, "a signal to self is handled before kill() returns" },
	{ "host-handler", case_host_handler,
	  "unregistered signal: host handler via DUNE_RET_SIGNAL, guest stack intact" },
	{ "default-action", case_default_action, "SIGTERM/SIGINT default action ends the process" },
	{ "sigkill", case_sigkill,
	  "SIGKILL spinning, blocked in read, parked in a host handler, multi-threaded" },
	{ "restart", case_restart, "SA_RESTART restarts; without it EINTR; pause() EINTR" },
	{ "stop-continue", case_stop_continue, "SIGSTOP stops a Dune thread, SIGCONT resumes it" },
};
DTEST_MAIN(cases)
