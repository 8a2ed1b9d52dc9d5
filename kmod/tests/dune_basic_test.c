/*
 * dune_basic_test - /dev/dune basics, run inside QEMU: the ABI, entering Dune mode,
 * system calls through VMMCALL, exit statuses, unloading.
 */
#define _GNU_SOURCE
#include "drt.h"
#include "dtest.h"

#include <asm/prctl.h>
#include <cpuid.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
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

static double seconds(struct timeval t)
{
	return t.tv_sec + t.tv_usec / 1e6;
}

/* Time the thread spends in guest mode is user time (the guest is the program). */
static void case_accounting(void)
{
	struct timespec start, now;
	struct rusage ru;

	init_enter();
	/* (the system call, not the vDSO, which drt's page table may not cover) */
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &start);
	do { /* about a second of guest execution, with a syscall every so often */
		for (volatile int i = 0; i < 1000000; i++)
			;
		syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &now);
	} while ((now.tv_sec - start.tv_sec) * 1000000000L + now.tv_nsec - start.tv_nsec <
		 1000000000L);
	CHECK_EQ(getrusage(RUSAGE_SELF, &ru), 0);
	CHECK(seconds(ru.ru_utime) > 4 * seconds(ru.ru_stime));
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


/* --- host and guest state stay apart ------------------------------------------------------ */

#define MSR_EFER 0xc0000080
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_FS_BASE 0xc0000100
#define MSR_GS_BASE 0xc0000101
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MSR_TSC 0x10
#define MSR_SPEC_CTRL 0x48
#define MSR_PAT 0x277
#define MSR_TSC_AUX 0xc0000103

static const uint32_t patterns[16][4] = {
	[0] = { 0x01010101, 0x02020202, 0x03030303, 0x04040404 },
	[7] = { 0x77777777, 0x70707070, 0x07070707, 0x7f7f7f7f },
	[15] = { 0xf00df00d, 0xdeadbeef, 0xcafebabe, 0x8badf00d },
};

/* A normal-mode process that keeps other values in the SSE registers, checking them. */
static void fpu_noise(void *arg)
{
	const uint32_t mine[4] = { 0x11111111, 0x22222222, 0x33333333, 0x44444444 };
	long spins = (long)arg;
	int bad = 0;

	for (long i = 0; i < spins && !bad; i++) {
		asm volatile("movdqu %1, %%xmm0\n\tmovdqu %1, %%xmm7\n\tmovdqu %1, %%xmm15\n\t"
			     "mov $24, %%eax\n\tsyscall\n\t" /* sched_yield */
			     "pcmpeqd %1, %%xmm0\n\tpcmpeqd %1, %%xmm7\n\tpcmpeqd %1, %%xmm15\n\t"
			     "pand %%xmm7, %%xmm0\n\tpand %%xmm15, %%xmm0\n\t"
			     "pmovmskb %%xmm0, %0\n\txor $0xffff, %0"
			     : "=r"(bad)
			     : "m"(mine)
			     : "rax", "rcx", "r11", "xmm0", "xmm7", "xmm15", "memory");
	}
	_exit(bad ? 1 : 0);
}

static void case_fpu(void)
{
	uint32_t out[16][4] = { 0 };
	uint32_t mxcsr_in = 0x7f80 | (3 << 13), mxcsr_out = 0; /* round toward zero */
	double x87 = 0;
	pid_t noise;

	init_enter();
	noise = fork();
	if (noise == 0)
		fpu_noise((void *)20000);
	/* Registers loaded in guest mode survive 2000 exits, other processes' FPU use and
	 * the host kernel's; checked in one asm block so the compiler cannot touch them. */
	asm volatile("ldmxcsr %[mi]\n\tfld1\n\t"
		     "movdqu 0(%[p]), %%xmm0\n\tmovdqu 112(%[p]), %%xmm7\n\t"
		     "movdqu 240(%[p]), %%xmm15\n\t"
		     "mov $2000, %%r12d\n"
		     "1:\n\tmov $24, %%eax\n\tsyscall\n\tdec %%r12d\n\tjnz 1b\n\t"
		     "movdqu %%xmm0, 0(%[o])\n\tmovdqu %%xmm7, 112(%[o])\n\t"
		     "movdqu %%xmm15, 240(%[o])\n\tstmxcsr %[mo]\n\tfstpl %[x]\n\t"
		     "ldmxcsr %[dflt]"
		     : [mo] "=m"(mxcsr_out), [x] "=m"(x87)
		     : [p] "r"(patterns), [o] "r"(out), [mi] "m"(mxcsr_in), [dflt] "m"((uint32_t){ 0x1f80 })
		     : "rax", "rcx", "r11", "r12", "xmm0", "xmm7", "xmm15", "memory", "cc");
	CHECK(memcmp(out, patterns, sizeof(out)) == 0);
	CHECK_EQ(mxcsr_out, mxcsr_in);
	CHECK(x87 == 1.0);
	CHECK(EXITED_WITH(dtest_wait(noise, 0), 0)); /* and the guest did not disturb it */
}

/* The guest's own syscall entry: counts, then does what drt's stub does. */
volatile long alt_syscalls;
void alt_syscall_entry(void);
asm(".text\n.globl alt_syscall_entry\nalt_syscall_entry:\n\t"
    "lock incq alt_syscalls(%rip)\n\t.byte 0x0f, 0x01, 0xd9\n\tjmp *%rcx\n");

static void exit_normally(void *arg)
{
	(void)arg;
	exit(0);
}

static void case_msrs(void)
{
	uint64_t host_gs, host_fs, seen_fs_host = 0, seen_fs_guest = 0, fs, lstar;
	const uint64_t fake_fs = 0x0000123456789000ULL;

	CHECK_EQ(syscall(SYS_arch_prctl, ARCH_GET_GS, &host_gs), 0);
	CHECK_EQ(syscall(SYS_arch_prctl, ARCH_GET_FS, &host_fs), 0);
	init_enter();
	CHECK_EQ(drt_rdmsr(MSR_FS_BASE), host_fs); /* the thread's TLS */
	CHECK_EQ((uint64_t)pthread_self(), host_fs);

	/* GS and KERNEL_GS: the guest's own, kept across exits; the host's untouched. */
	drt_wrmsr(MSR_GS_BASE, 0x0000111122223333ULL);
	drt_wrmsr(MSR_KERNEL_GS_BASE, 0xffff888877776000ULL);
	for (int i = 0; i < 1000; i++)
		CHECK_EQ(getppid(), getppid());
	CHECK_EQ(drt_rdmsr(MSR_GS_BASE), 0x0000111122223333ULL);
	CHECK_EQ(drt_rdmsr(MSR_KERNEL_GS_BASE), 0xffff888877776000ULL);
	CHECK_EQ(syscall(SYS_arch_prctl, ARCH_GET_GS, &fs), 0);
	CHECK_EQ(fs, host_gs);

	/* FS: another base in the guest while Linux reports the thread's (one asm block:
	 * TLS, and so errno and the stack protector, is unusable in between). */
	fs = drt_rdmsr(MSR_FS_BASE);
	asm volatile("mov $0xc0000100, %%ecx\n\tmov %[fake], %%rax\n\tmov %%rax, %%rdx\n\t"
		     "shr $32, %%rdx\n\twrmsr\n\t"
		     "mov $158, %%eax\n\tmov $0x1003, %%edi\n\tmov %[out], %%rsi\n\tsyscall\n\t"
		     "mov $0xc0000100, %%ecx\n\trdmsr\n\tshl $32, %%rdx\n\tor %%rdx, %%rax\n\t"
		     "mov %%rax, %[g]\n\t"
		     "mov $0xc0000100, %%ecx\n\tmov %[fs], %%rax\n\tmov %%rax, %%rdx\n\t"
		     "shr $32, %%rdx\n\twrmsr"
		     : [g] "=m"(seen_fs_guest)
		     : [fake] "r"(fake_fs), [out] "r"(&seen_fs_host), [fs] "r"(fs)
		     : "rax", "rcx", "rdx", "rdi", "rsi", "r11", "memory");
	CHECK_EQ(seen_fs_guest, fake_fs);
	CHECK_EQ(seen_fs_host, host_fs); /* ARCH_GET_FS (0x1003) saw the host's */

	/* LSTAR: the guest's syscall entry moves; the host's (every other process) does not. */
	lstar = drt_rdmsr(MSR_LSTAR);
	CHECK_EQ(lstar, drt_lstar());
	drt_wrmsr(MSR_LSTAR, (uint64_t)alt_syscall_entry);
	for (int i = 0; i < 100; i++)
		CHECK_EQ(syscall(SYS_getpid), getpid());
	drt_wrmsr(MSR_LSTAR, lstar);
	CHECK_EQ(alt_syscalls, 200);
	CHECK(EXITED_WITH(dtest_child(exit_normally, NULL), 0)); /* the host is fine */
}

static volatile int trapped;
static volatile int skip_len;

static void on_fault(struct drt_tf *tf)
{
	trapped = (int)tf->vector;
	tf->rip += skip_len;
}

#define EXPECT_FAULT(vector, len, ...)                                                      \
	do {                                                                                \
		trapped = -1;                                                               \
		skip_len = (len);                                                           \
		asm volatile(__VA_ARGS__);                                                  \
		CHECK_EQ(trapped, (vector));                                                \
	} while (0)

static void case_privileged(void)
{
	const int gp = 13, ud = 6;
	unsigned a, b, c, d;
	int xsetbv_fault;

	__cpuid(1, a, b, c, d);
	xsetbv_fault = c & bit_OSXSAVE ? gp : ud;
	init_enter();
	drt_set_handler(gp, on_fault);
	drt_set_handler(ud, on_fault);
	/* MSRs that are the host's: EFER, PAT, TSC, SPEC_CTRL, TSC_AUX. */
	EXPECT_FAULT(gp, 2, "wrmsr" : : "c"(MSR_EFER), "a"(0), "d"(0));
	EXPECT_FAULT(gp, 2, "rdmsr" : : "c"(MSR_EFER) : "rax", "rdx");
	EXPECT_FAULT(gp, 2, "wrmsr" : : "c"(MSR_PAT), "a"(0), "d"(0));
	EXPECT_FAULT(gp, 2, "wrmsr" : : "c"(MSR_TSC), "a"(0), "d"(0));
	EXPECT_FAULT(gp, 2, "rdmsr" : : "c"(MSR_SPEC_CTRL) : "rax", "rdx");
	EXPECT_FAULT(gp, 2, "wrmsr" : : "c"(MSR_TSC_AUX), "a"(0), "d"(0));
	/* Ports, control and debug registers, caches, counters, XCR0. */
	EXPECT_FAULT(gp, 2, "inb $0x80, %%al" : : : "rax");
	EXPECT_FAULT(gp, 2, "outb %%al, $0x80" : : "a"(0));
	EXPECT_FAULT(gp, 3, "mov %%cr4, %%rax\n\tmov %%rax, %%cr4" : : : "rax");
	EXPECT_FAULT(gp, 3, "mov %%cr0, %%rax\n\tbts $30, %%rax\n\tmov %%rax, %%cr0" : : : "rax");
	EXPECT_FAULT(gp, 3, "mov %%dr0, %%rax" : : : "rax");
	EXPECT_FAULT(gp, 3, "mov %%rax, %%dr7" : : "a"(0x401));
	EXPECT_FAULT(gp, 2, "wbinvd");
	EXPECT_FAULT(gp, 2, "invd");
	EXPECT_FAULT(gp, 2, "rdpmc" : : "c"(0) : "rax", "rdx");
	EXPECT_FAULT(xsetbv_fault, 3, "xsetbv" : : "c"(0), "a"(1), "d"(0));
	/* SVM itself, and Intel's VMCALL. */
	EXPECT_FAULT(ud, 3, "clgi");
	EXPECT_FAULT(ud, 3, "stgi");
	EXPECT_FAULT(ud, 3, "vmrun" : : "a"(0));
	EXPECT_FAULT(ud, 3, "vmload" : : "a"(0));
	EXPECT_FAULT(ud, 3, "vmsave" : : "a"(0));
	EXPECT_FAULT(ud, 3, "invlpga" : : "a"(0), "c"(0));
	EXPECT_FAULT(ud, 3, "vmcall");
	/* Reading the TSC is the thread's own business. */
	{
		uint64_t t0 = __builtin_ia32_rdtsc(), t1 = __builtin_ia32_rdtsc();

		CHECK(t1 > t0);
	}
}

static void case_unload(void)
{
	int p[2], fd;
	pid_t holder;
	char c;

	CHECK_EQ(pipe(p), 0);
	holder = fork();
	if (holder == 0) {
		CHECK(open("/dev/dune", O_RDWR) >= 0);
		CHECK_EQ(write(p[1], "x", 1), 1);
		for (;;)
			pause();
	}
	CHECK_EQ(read(p[0], &c, 1), 1);
	CHECK_EQ(syscall(SYS_delete_module, "dune", O_NONBLOCK), -1); /* in use: refused */
	CHECK_EQ(errno, EWOULDBLOCK);
	CHECK_EQ(access("/dev/dune", F_OK), 0);
	CHECK_EQ(kill(holder, SIGKILL), 0);
	CHECK(KILLED_BY(dtest_wait(holder, 0), SIGKILL));
	CHECK_EQ(syscall(SYS_delete_module, "dune", O_NONBLOCK), 0);
	CHECK_EQ(access("/dev/dune", F_OK), -1);
	/* Load it again (the harness put it in the image) for the commands that follow. */
	fd = open("/dunegc/modules/dune.ko", O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_EQ(syscall(SYS_finit_module, fd, "", 0), 0);
	CHECK_EQ(access("/dev/dune", F_OK), 0);
}

static const struct dtest_case cases[] = {
	{ "abi", case_abi, "ioctl numbers, layout, bad arguments refused" },
	{ "enter", case_enter, "DUNE_ENTER: CPL 0, own CR3, same process" },
	{ "accounting", case_accounting, "guest execution is accounted as user time" },
	{ "syscalls", case_syscalls, "1e5 VMMCALL syscalls, file I/O, pipes, errors" },
	{ "memory", case_memory, "malloc/mmap/mremap/mprotect after entry" },
	{ "exit-status", case_exit_status, "exit(42) in Dune mode is the process's status" },
	{ "fpu", case_fpu, "SSE/x87/MXCSR survive exits; other processes' FPU state too" },
	{ "msrs", case_msrs, "FS/GS/KERNEL_GS/LSTAR: the guest's own, the host's untouched" },
	{ "privileged", case_privileged, "host MSRs, ports, CR/DR, caches, SVM: #GP or #UD" },
	{ "unload", case_unload, "rmmod refused while /dev/dune is open, then succeeds" },
};
DTEST_MAIN(cases)
