/*
 * dune_basic_test - /dev/dune basics, run inside QEMU: the ABI, entering Dune mode,
 * system calls through VMMCALL, exit statuses, unloading.
 */
#define _GNU_SOURCE
#include "drt.h"
#include "dtest.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>

static void init_enter(void)
{
	CHECK_EQ(drt_init(), 0);
	CHECK_EQ(drt_enter(), 0);
	CHECK(drt_in_guest());
}

static void case_abi(void)
{
	struct dune_config conf;
	struct dune_layout l;
	uint64_t mask;
	int fd = open("/dev/dune", O_RDWR);
	char *heap = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int local;

	CHECK(fd >= 0);
	CHECK_EQ(sizeof(struct dune_config), 0xb0);
	CHECK_EQ(DUNE_ENTER, 0x80b0e901);
	CHECK_EQ(DUNE_GET_SYSCALL, 0xe902);
	CHECK_EQ(DUNE_GET_LAYOUT, 0x4018e903);

	CHECK_EQ(ioctl(fd, DUNE_GET_LAYOUT, &l), 0);
	CHECK(l.phys_limit >= 1ULL << 36 && (l.phys_limit & (l.phys_limit - 1)) == 0);
	CHECK(l.base_map % (1 << 30) == 0 && l.base_stack % (1 << 30) == 0);
	CHECK((uint64_t)heap - l.base_map < GPA_MAP_SIZE);       /* mmap area: map window */
	CHECK((uint64_t)&local - l.base_stack < GPA_STACK_SIZE); /* stack: stack window */
	/* The guest's LSTAR: an upper-half address, and not the host's (no KASLR leak). */
	CHECK((uint64_t)(long)ioctl(fd, DUNE_GET_SYSCALL) >= 0xffff800000000000ULL);

	CHECK_EQ(ioctl(fd, 0xe904, 0), -1); /* DUNE_TRAP_ENABLE: not provided */
	CHECK_EQ(errno, ENOTTY);
	mask = 1ULL << (SIGKILL - 1);
	CHECK_EQ(ioctl(fd, DUNE_SET_SIGNALS, &mask), -1);
	CHECK_EQ(errno, EINVAL);
	mask = 1ULL << 60; /* vector 261 does not exist */
	CHECK_EQ(ioctl(fd, DUNE_SET_SIGNALS, &mask), -1);
	CHECK_EQ(errno, EINVAL);

	memset(&conf, 0, sizeof(conf));
	conf.cr3 = l.phys_limit; /* beyond guest-physical memory */
	CHECK_EQ(ioctl(fd, DUNE_ENTER, &conf), -1);
	CHECK_EQ(errno, EINVAL);
	conf.cr3 = 0;
	conf.vcpu = 12345; /* no such parked vcpu */
	CHECK_EQ(ioctl(fd, DUNE_ENTER, &conf), -1);
	CHECK_EQ(errno, EINVAL);
	CHECK_EQ(ioctl(fd, DUNE_ENTER, (void *)1), -1);
	CHECK_EQ(errno, EFAULT);
	close(fd);
}

static void case_enter(void)
{
	pid_t pid = getpid();
	uint64_t pml4;

	CHECK_EQ(drt_init(), 0);
	CHECK(!drt_in_guest());
	pml4 = drt_pml4_pa();
	CHECK_EQ(drt_enter(), 0);
	CHECK(drt_in_guest());             /* CPL 0 */
	CHECK_EQ(drt_enter(), 0);          /* idempotent */
	CHECK_EQ(drt_read_cr3() & ~0xfffULL, pml4);
	CHECK_EQ(getpid(), pid);           /* a VMMCALL to the host's getpid */
	CHECK_EQ(syscall(SYS_gettid), pid);
}

static void case_syscalls(void)
{
	char path[] = "/tmp/dune-basic-XXXXXX", buf[64];
	const int n = 100000;
	int fd, p[2];
	struct stat st;

	init_enter();
	for (int i = 0; i < n; i++)
		CHECK_EQ(syscall(SYS_getpid), getpid());

	fd = mkstemp(path); /* file I/O */
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, "hello dune", 10), 10);
	CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(read(fd, buf, sizeof(buf)), 10);
	CHECK(strcmp(buf, "hello dune") == 0);
	CHECK_EQ(fstat(fd, &st), 0);
	CHECK_EQ(st.st_size, 10);
	CHECK_EQ(close(fd), 0);
	CHECK_EQ(unlink(path), 0);
	CHECK_EQ(read(fd, buf, 1), -1); /* a closed descriptor stays closed */
	CHECK_EQ(errno, EBADF);

	CHECK_EQ(pipe(p), 0);
	CHECK_EQ(write(p[1], "x", 1), 1);
	CHECK_EQ(read(p[0], buf, 1), 1);
	CHECK_EQ(buf[0], 'x');
	CHECK_EQ(syscall(SYS_ioctl, -1, 0, 0), -1);
	CHECK_EQ(errno, EBADF);
	CHECK_EQ(syscall(100000), -1); /* beyond the table */
	CHECK_EQ(errno, ENOSYS);
}

static void case_memory(void)
{
	size_t big = 64 << 20;
	char *m, *p;

	init_enter();
	/* Growth after entry: fresh mappings fault into the nested page table on first touch. */
	m = malloc(big);
	CHECK(m != NULL);
	for (size_t i = 0; i < big; i += 4096)
		m[i] = (char)i;
	for (size_t i = 0; i < big; i += 4096)
		CHECK_EQ(m[i], (char)i);
	free(m);
	p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED);
	p[4096] = 7;
	p = mremap(p, 1 << 20, 8 << 20, MREMAP_MAYMOVE);
	CHECK(p != MAP_FAILED);
	CHECK_EQ(p[4096], 7); /* moved with its contents */
	p[(8 << 20) - 1] = 9;
	CHECK_EQ(mprotect(p, 4096, PROT_READ), 0);
	CHECK_EQ(p[0], 0);
	CHECK_EQ(munmap(p, 8 << 20), 0);
	for (int i = 0; i < 1000; i++) /* brk */
		CHECK(malloc(1000) != NULL);
}

static void exit42(void *arg)
{
	(void)arg;
	init_enter();
	exit(42);
}

static void case_exit_status(void)
{
	CHECK(EXITED_WITH(dtest_child(exit42, NULL), 42));
}

static const struct dtest_case cases[] = {
	{ "abi", case_abi, "ioctl numbers, layout, bad arguments refused" },
	{ "enter", case_enter, "DUNE_ENTER: CPL 0, own CR3, same process" },
	{ "syscalls", case_syscalls, "1e5 VMMCALL syscalls, file I/O, pipes, errors" },
	{ "memory", case_memory, "malloc/mmap/mremap/mprotect after entry" },
	{ "exit-status", case_exit_status, "exit(42) in Dune mode is the process's status" },
};
DTEST_MAIN(cases)
