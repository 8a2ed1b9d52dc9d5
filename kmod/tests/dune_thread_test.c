/*
 * dune_thread_test - processes and threads in Dune mode, run inside QEMU: threads created
 * from guest mode join Dune themselves; fork, vfork and execve behave as in the original
 * Dune (children start in normal mode; the new image runs as a normal process); exit ends
 * one thread, exit_group the process, with its status.
 */
#define _GNU_SOURCE
#include "drt.h"
#include "dtest.h"

#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#define NTHREADS 8
#define EXEC_STATUS 5

static char self_path[256];

static void init_enter(void)
{
	CHECK_EQ(drt_init(), 0);
	CHECK_EQ(drt_enter(), 0);
}

static volatile long slots[NTHREADS][8]; /* one cache line each */

static void *worker(void *arg)
{
	long id = (long)arg;

	CHECK(!drt_in_guest()); /* a new thread starts in normal mode, as in the original */
	CHECK_EQ(drt_enter(), 0);
	for (int i = 0; i < 5000; i++) {
		CHECK_EQ(syscall(SYS_gettid), gettid());
		slots[id][0]++;
	}
	return (void *)id;
}

static void case_threads(void)
{
	pthread_t t[NTHREADS];
	void *ret;

	init_enter();
	for (long i = 0; i < NTHREADS; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, worker, (void *)i), 0);
	for (long i = 0; i < NTHREADS; i++) {
		CHECK_EQ(pthread_join(t[i], &ret), 0);
		CHECK_EQ((long)ret, i);
		CHECK_EQ(slots[i][0], 5000);
	}
	CHECK(drt_in_guest());
}

static void case_fork(void)
{
	volatile int *before = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int status;
	pid_t pid;

	init_enter();
	*before = 17;
	pid = fork();
	if (pid == 0) {
		if (drt_in_guest())
			_exit(1); /* the child must start in normal mode */
		if (drt_enter() || *before != 17)
			_exit(2);
		*before = 18; /* its own copy */
		exit(7);      /* through the guest's exit_group */
	}
	CHECK(pid > 0);
	status = dtest_wait(pid, 0); /* wait4 from guest mode */
	CHECK(EXITED_WITH(status, 7));
	CHECK_EQ(*before, 17);
}

static void exec_self(void *arg)
{
	char *argv[] = { self_path, "exec-target", NULL };

	(void)arg;
	init_enter();
	execv(self_path, argv); /* in guest mode */
	_exit(1);
}

static void case_exec(void)
{
	CHECK(EXITED_WITH(dtest_child(exec_self, NULL), EXEC_STATUS));
}

static void case_exec_target(void)
{
	CHECK(!drt_in_guest()); /* the new image runs as a normal process */
	exit(EXEC_STATUS);
}

static void case_vfork_exec(void)
{
	char *argv[] = { self_path, "exec-target", NULL };
	int status;
	pid_t pid;

	init_enter();
	pid = vfork();
	if (pid == 0) {
		execv(self_path, argv);
		_exit(1);
	}
	CHECK(pid > 0);
	CHECK(drt_in_guest()); /* the parent resumes in guest mode */
	status = dtest_wait(pid, 0);
	CHECK(EXITED_WITH(status, EXEC_STATUS));
}

static void *spin(void *arg)
{
	(void)arg;
	CHECK_EQ(drt_enter(), 0);
	__atomic_add_fetch(&slots[0][0], 1, __ATOMIC_SEQ_CST);
	for (;;)
		slots[1][0]++;
	return NULL;
}

static void exit_group_with_threads(void *arg)
{
	pthread_t t;

	(void)arg;
	init_enter();
	for (int i = 0; i < 3; i++)
		CHECK_EQ(pthread_create(&t, NULL, spin, NULL), 0);
	while (slots[0][0] < 3)
		;
	syscall(SYS_exit_group, 9); /* every thread goes, guest mode or not */
}

static void case_exit_group(void)
{
	CHECK(EXITED_WITH(dtest_child(exit_group_with_threads, NULL), 9));
}

static void *exits_itself(void *arg)
{
	(void)arg;
	CHECK_EQ(drt_enter(), 0);
	syscall(SYS_exit, 0); /* only this thread: DUNE_RET_EXIT, then the real exit */
	return (void *)1;
}

static void case_thread_exit(void)
{
	pthread_t t;
	void *ret;

	init_enter();
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(pthread_create(&t, NULL, exits_itself, NULL), 0);
		CHECK_EQ(pthread_join(t, &ret), 0); /* woken by the kernel's CLEARTID at exit */
	}
	CHECK(drt_in_guest());
}

static void case_nested_enter(void)
{
	struct dune_config conf = { 0 };

	init_enter();
	conf.cr3 = drt_pml4_pa();
	CHECK_EQ(ioctl(drt_fd(), DUNE_ENTER, &conf), -1); /* from guest mode: no nesting */
	CHECK_EQ(errno, EBUSY);
}

static const struct dtest_case cases[] = {
	{ "threads", case_threads, "8 threads created in guest mode, each enters Dune" },
	{ "fork", case_fork, "fork from guest mode: the child re-enters, exit status 7" },
	{ "exec", case_exec, "execve from guest mode: the new image runs normally" },
	{ "exec-target", case_exec_target, "(helper: exits 5 if in normal mode)" },
	{ "vfork-exec", case_vfork_exec, "vfork + execve from guest mode" },
	{ "exit-group", case_exit_group, "exit_group with Dune threads running: status 9" },
	{ "thread-exit", case_thread_exit, "exit ends one Dune thread; join works" },
	{ "nested-enter", case_nested_enter, "DUNE_ENTER from guest mode: EBUSY" },
};

int main(int argc, char **argv)
{
	ssize_t n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);

	CHECK(n > 0);
	self_path[n] = 0;
	return dtest_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
