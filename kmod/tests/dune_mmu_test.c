/*
 * dune_mmu_test - memory in Dune mode, run inside QEMU: the nested page table follows the
 * process's mappings through the MMU notifier (DONTNEED, MAP_FIXED replacement, fork's
 * copy-on-write, mprotect, munmap), PFN-map mappings are mirrored, and the guest's own page
 * tables work with hardware page faults and accessed/dirty bits.
 */
#define _GNU_SOURCE
#include "drt.h"
#include "dtest.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define PAGE 4096
#define HUGE (2UL << 20)

static void init_enter(void)
{
	CHECK_EQ(drt_init(), 0);
	CHECK_EQ(drt_enter(), 0);
}

static char *map_page(void)
{
	char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	return p;
}

/* A 2 MiB-aligned page of its own 2 MiB guest mapping, so splitting it disturbs nothing. */
static char *aligned_page(void)
{
	char *p = mmap(NULL, 2 * HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	return (char *)(((uintptr_t)p + HUGE - 1) & ~(HUGE - 1));
}

static void case_dontneed(void)
{
	volatile char *p;

	init_enter();
	p = map_page();
	for (int i = 0; i < 100; i++) {
		p[0] = 0x55; /* the nested page table now maps the page, writable */
		CHECK_EQ(madvise((void *)p, PAGE, MADV_DONTNEED), 0);
		CHECK_EQ(p[0], 0); /* a fresh zero page, not the old one */
	}
}

static int memfd_with(char c)
{
	int fd = memfd_create("dune", 0);
	char page[PAGE];

	CHECK(fd >= 0);
	memset(page, c, sizeof(page));
	CHECK_EQ(write(fd, page, sizeof(page)), PAGE);
	return fd;
}

static void case_replace(void)
{
	int a = memfd_with('A'), b = memfd_with('B');
	volatile char *p;
	char c;

	init_enter();
	p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, a, 0);
	CHECK(p != MAP_FAILED);
	CHECK_EQ(p[100], 'A');
	for (int i = 0; i < 50; i++) { /* MAP_FIXED over the same address, alternating files */
		int fd = i % 2 ? a : b;

		CHECK(mmap((void *)p, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) ==
		      p);
		CHECK_EQ(p[100], i % 2 ? 'A' : 'B');
	}
	p[0] = 'Z'; /* a write through the guest lands in the file */
	CHECK_EQ(pread(a, &c, 1, 0), 1);
	CHECK_EQ(c, 'Z');
}

struct sync {
	volatile int go, child_done;
};

static void case_fork_cow(void)
{
	struct sync *s = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	volatile int *v;
	pid_t pid;
	int status;

	init_enter();
	v = (volatile int *)map_page();
	*v = 1; /* mapped writable in the parent's nested page table */
	pid = fork();
	if (pid == 0) { /* normal mode: its own copy of the page */
		while (!s->go)
			;
		status = *v == 1 ? 0 : 1; /* the parent's later write must not show here */
		*v = 3;
		s->child_done = 1;
		_exit(status);
	}
	CHECK(pid > 0);
	*v = 2; /* copy-on-write in the parent: fork's write-protection zapped the old leaf */
	s->go = 1;
	while (!s->child_done)
		;
	CHECK_EQ(*v, 2); /* and the child's write did not reach the parent either */
	status = dtest_wait(pid, 0);
	CHECK(EXITED_WITH(status, 0));
}

static void write_after_mprotect(void *arg)
{
	volatile char *p;

	(void)arg;
	init_enter();
	p = map_page();
	p[0] = 1;
	CHECK_EQ(mprotect((void *)p, PAGE, PROT_READ), 0);
	CHECK_EQ(p[0], 1); /* reading is still allowed */
	p[0] = 2;          /* writing is not: the guest is stopped */
	_exit(0);
}

static void read_after_munmap(void *arg)
{
	volatile char *p;

	(void)arg;
	init_enter();
	p = map_page();
	p[0] = 1;
	CHECK_EQ(munmap((void *)p, PAGE), 0);
	(void)p[0];
	_exit(0);
}

static void case_protect(void)
{
	const int stopped = DRT_STATUS(DUNE_RET_EPT_VIOLATION);

	CHECK(EXITED_WITH(dtest_child(write_after_mprotect, NULL), stopped));
	CHECK(EXITED_WITH(dtest_child(read_after_munmap, NULL), stopped));
}

static volatile int *remapped;
static volatile int stop_echo;

/* Another Dune thread, on the other CPU: echoes p[0] * 2 into p[1], on whatever page is
 * mapped there now. */
static void *echo(void *arg)
{
	(void)arg;
	CHECK_EQ(drt_enter(), 0);
	while (!stop_echo)
		remapped[1] = remapped[0] * 2;
	return NULL;
}

static void case_cross_thread(void)
{
	pthread_t t;

	CHECK_EQ(drt_init(), 0); /* this thread stays in normal mode: it sees the host's truth */
	remapped = (volatile int *)map_page();
	CHECK_EQ(pthread_create(&t, NULL, echo, NULL), 0);
	for (int k = 1; k <= 200; k++) {
		/* A fresh page replaces the one the other thread is using in guest mode: its
		 * leaf is zapped and its CPU kicked out, or it would go on with the old page
		 * and never answer on this one. */
		CHECK(mmap((void *)remapped, PAGE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == remapped);
		remapped[0] = k;
		while (remapped[1] != 2 * k)
			;
	}
	stop_echo = 1;
	CHECK_EQ(pthread_join(t, NULL), 0);
}

/* A VM_PFNMAP mapping (/dev/mem, here the BIOS ROM below 1 MiB) is mirrored too. */
static void case_pfnmap(void)
{
	const size_t len = 64 << 10;
	int fd = open("/dev/mem", O_RDONLY | O_SYNC);
	unsigned long host = 0, guest = 0;
	const unsigned char *rom;

	CHECK(fd >= 0);
	rom = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0xf0000);
	CHECK(rom != MAP_FAILED);
	for (size_t i = 0; i < len; i++)
		host = host * 31 + rom[i];
	init_enter();
	for (size_t i = 0; i < len; i++)
		guest = guest * 31 + rom[i];
	CHECK_EQ(guest, host);
	CHECK(host != 0);
}

static volatile uint64_t fault_addr, fault_err;
static volatile int faults;
static uint64_t *fault_pte;

static void on_page_fault(struct drt_tf *tf)
{
	fault_addr = drt_read_cr2();
	fault_err = tf->error;
	faults++;
	*fault_pte |= PTE_P | PTE_W;
	drt_invlpg((void *)fault_addr);
}

static void case_guest_page_faults(void)
{
	volatile char *page;
	const int n = 10000;

	init_enter();
	page = aligned_page() + 5 * PAGE;
	page[0] = 0;
	fault_pte = drt_pte((void *)page);
	drt_set_handler(14, on_page_fault);
	for (int i = 0; i < n; i++) {
		bool write = i & 1;

		*fault_pte &= write ? ~PTE_W : ~PTE_P; /* protect */
		drt_invlpg((void *)page);
		if (write)
			page[0] = (char)i; /* trap: present, write */
		else
			(void)page[0]; /* trap: not present, read */
		CHECK_EQ(faults, i + 1);
		CHECK_EQ(fault_addr, (uint64_t)page);
		CHECK_EQ(fault_err, write ? 0x3 : 0x0);
	}
	CHECK_EQ(page[0], (char)(n - 1));
}

static void case_accessed_dirty(void)
{
	volatile char *page;
	uint64_t *pte;

	init_enter();
	page = aligned_page() + 7 * PAGE;
	pte = drt_pte((void *)page);
	for (int round = 0; round < 3; round++) {
		*pte &= ~(PTE_A | PTE_D);
		drt_invlpg((void *)page);
		(void)page[0];
		CHECK((*pte & PTE_A) && !(*pte & PTE_D)); /* a read sets A only */
		page[0] = 1;
		CHECK((*pte & PTE_A) && (*pte & PTE_D)); /* a write sets D */
	}
}

static const struct dtest_case cases[] = {
	{ "dontneed", case_dontneed, "MADV_DONTNEED: the guest sees the fresh page" },
	{ "replace", case_replace, "MAP_FIXED replacement: the guest sees the new file" },
	{ "fork-cow", case_fork_cow, "fork's copy-on-write splits parent and child" },
	{ "cross-thread", case_cross_thread,
	  "remapping a page another Dune thread uses: it moves to the new page" },
	{ "protect", case_protect, "mprotect/munmap take effect in the guest" },
	{ "pfnmap", case_pfnmap, "a /dev/mem (VM_PFNMAP) mapping reads the same in the guest" },
	{ "guest-page-faults", case_guest_page_faults,
	  "1e4 guest #PF: protect, trap, unprotect; exact address and error code" },
	{ "accessed-dirty", case_accessed_dirty, "hardware A/D bits in the guest's own PTEs" },
};
DTEST_MAIN(cases)
