/*
 * dtest.h - the smallest test harness that works inside and outside Dune mode: a program
 * is a table of named cases; `prog <case>` runs one and exits 0 (PASS) or 1 (FAIL, with
 * the failing check). Failures print with dprintf (a system call: from guest mode too).
 */
#ifndef DTEST_H
#define DTEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct dtest_case {
	const char *name;
	void (*fn)(void);
	const char *what;
};

static inline void __attribute__((noreturn))
dtest_fail(const char *file, int line, const char *expr, long a, long b)
{
	int e = errno;

	dprintf(2, "FAIL %s:%d: %s (values %ld, %ld; errno %d %s)\n", file, line, expr, a, b, e,
		strerror(e));
	syscall(SYS_exit_group, 1);
	__builtin_unreachable();
}

#define CHECK(cond)                                                                         \
	do {                                                                                \
		if (!(cond))                                                                \
			dtest_fail(__FILE__, __LINE__, #cond, 0, 0);                        \
	} while (0)
#define CHECK_EQ(a, b)                                                                      \
	do {                                                                                \
		long _a = (long)(a), _b = (long)(b);                                        \
		if (_a != _b)                                                               \
			dtest_fail(__FILE__, __LINE__, #a " == " #b, _a, _b);               \
	} while (0)

/* waitpid() for one child, through interruptions; returns its status. */
static inline int dtest_wait(pid_t pid, int options)
{
	int status, r;

	while ((r = waitpid(pid, &status, options)) < 0 && errno == EINTR)
		;
	CHECK_EQ(r, pid);
	return status;
}

/* Runs fn in a forked child (normal mode at the start) and returns its wait status. */
static inline int dtest_child(void (*fn)(void *), void *arg)
{
	pid_t pid = fork();

	if (pid == 0) {
		fn(arg);
		exit(0);
	}
	CHECK(pid > 0);
	return dtest_wait(pid, 0);
}

static inline int EXITED_WITH(int status, int code)
{
	return WIFEXITED(status) && WEXITSTATUS(status) == code;
}

static inline int KILLED_BY(int status, int sig)
{
	return WIFSIGNALED(status) && WTERMSIG(status) == sig;
}

static inline int dtest_main(int argc, char **argv, const struct dtest_case *cases, int n)
{
	if (argc == 2) {
		for (int i = 0; i < n; i++) {
			if (strcmp(argv[1], cases[i].name) == 0) {
				cases[i].fn();
				printf("PASS %s: %s\n", cases[i].name, cases[i].what);
				fflush(stdout);
				return 0;
			}
		}
	}
	fprintf(stderr, "usage: %s <case>; cases:\n", argv[0]);
	for (int i = 0; i < n; i++)
		fprintf(stderr, "  %-20s %s\n", cases[i].name, cases[i].what);
	return 2;
}

#define DTEST_MAIN(cases)                                                                   \
	int main(int argc, char **argv)                                                     \
	{                                                                                   \
		return dtest_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));     \
	}

#endif /* DTEST_H */
