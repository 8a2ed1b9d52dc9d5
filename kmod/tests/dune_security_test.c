/*
 * dune_security_test - what a Dune process can reach, run inside QEMU.
 *
 * Guest-physical addresses are translated through the process's own mm only, so a guest
 * page table entry can name nothing but the process's own memory, with the process's own
 * permissions: anything else stops the guest (DUNE_RET_EPT_VIOLATION) or, beyond
 * MAXPHYADDR, is the guest's own reserved-bit page fault. Two Dune processes with memory at
 * the same address each see their own. /dev/dune is guarded by its file permissions.
 */
#define _GNU_SOURCE
#include "drt.h"
#include "dtest.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define PAGE 4096
#define HUGE (2UL << 20)
#define STOPPED DRT_STATUS(DUNE_RET_EPT_VIOLATION)
#define SAME_ADDR ((void *)0x80000000UL) /* identity window, unused by these programs */
#define ONLY_A_ADDR ((void *)0x90000000UL)

static void init_enter(void)
{
	CHECK_EQ(drt_init(), 0);
	CHECK_EQ(drt_enter(), 0);
}

/* A guest-virtual page of its own (2 MiB-aligned area, split), to point anywhere. */
static volatile uint64_t *spare_page(uint64_t **pte)
{
	char *p = mmap(NULL, 2 * HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	p = (char *)(((uintptr_t)p + HUGE - 1) & ~(HUGE - 1));
	*pte = drt_pte(p);
	return (volatile uint64_t *)p;
}

static void point_guest_page_at(uint64_t gpa)
{
	uint64_t *pte;
	volatile uint64_t *va = spare_page(&pte);

	*pte = gpa | PTE_P | PTE_W;
	drt_invlpg((void *)va);
	(void)*va;
	_exit(0); /* not reached */
}

static void point_at(void *arg)
{
	init_enter();
	point_guest_page_at((uint64_t)arg);
}

/* At an address that was mapped and is not any more (unmapped after the page tables). */
static void point_at_hole(void *arg)
{
	void *hole = mmap(NULL, HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t *pte;
	volatile uint64_t *va;

	(void)arg;
	CHECK(hole != MAP_FAILED);
	init_enter();
	va = spare_page(&pte);
	((volatile char *)hole)[0] = 1;
	CHECK_EQ(munmap(hole, HUGE), 0);
	*pte = drt_va_to_pa(hole) | PTE_P | PTE_W;
	drt_invlpg((void *)va);
	(void)*va;
	_exit(0); /* not reached */
}

static void case_unmapped(void)
{
	CHECK_EQ(drt_init(), 0);
	/* Page 1 (below mmap_min_addr: never mappable) and a hole just unmapped. */
	CHECK(EXITED_WITH(dtest_child(point_at, (void *)0x1000), STOPPED));
	CHECK(EXITED_WITH(dtest_child(point_at_hole, NULL), STOPPED));
}

static volatile uint64_t pf_error;

static void on_page_fault(struct drt_tf *tf)
{
	pf_error = tf->error;
	_exit(tf->error & 0x8 ? 50 : 51); /* reserved bit set in a paging entry, or not */
}

static void point_beyond(void *arg)
{
	(void)arg;
	drt_set_handler(14, on_page_fault);
	point_at((void *)drt_layout()->phys_limit); /* bit MAXPHYADDR: reserved in the guest */
}

static void case_beyond_maxphyaddr(void)
{
	CHECK_EQ(drt_init(), 0);
	CHECK(EXITED_WITH(dtest_child(point_beyond, NULL), 50));
}

static void write_text(void *arg)
{
	(void)arg;
	init_enter();
	*(volatile char *)case_unmapped = 0xcc; /* read-only in the host */
	_exit(0);
}

static void read_prot_none(void *arg)
{
	volatile char *p = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	(void)arg;
	init_enter();
	(void)p[0];
	_exit(0);
}

static void case_host_permissions(void)
{
	CHECK(EXITED_WITH(dtest_child(write_text, NULL), STOPPED));
	CHECK(EXITED_WITH(dtest_child(read_prot_none, NULL), STOPPED));
}

struct rendezvous {
	volatile int ready, go;
};

static struct rendezvous *shared_rendezvous(void)
{
	struct rendezvous *r =
		mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	CHECK(r != MAP_FAILED);
	return r;
}

static struct rendezvous *rv;

static void own_view(void *arg)
{
	uint64_t mine = (uint64_t)arg, *pte;
	volatile uint64_t *x = mmap(SAME_ADDR, PAGE, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0), *alias;

	CHECK(x == SAME_ADDR);
	for (int i = 0; i < 512; i++)
		x[i] = mine;
	init_enter();
	alias = spare_page(&pte); /* a second guest-virtual name for the same guest-physical page */
	*pte = drt_va_to_pa(SAME_ADDR) | PTE_P | PTE_W;
	drt_invlpg((void *)alias);
	__atomic_add_fetch(&rv->ready, 1, __ATOMIC_SEQ_CST);
	while (!rv->go)
		;
	for (int round = 0; round < 2000; round++) {
		for (int i = 0; i < 512; i++) {
			CHECK_EQ(x[i], mine);
			CHECK_EQ(alias[i], mine);
		}
		if (round % 100 == 0)
			sched_yield();
	}
	exit(0);
}

static void case_two_processes(void)
{
	pid_t a, b;
	int sa, sb;

	rv = shared_rendezvous();
	a = fork();
	if (a == 0)
		own_view((void *)0xaaaaaaaaaaaaaaaaULL);
	b = fork();
	if (b == 0)
		own_view((void *)0xbbbbbbbbbbbbbbbbULL);
	while (rv->ready < 2)
		sched_yield();
	rv->go = 1; /* both in guest mode, side by side on the two CPUs */
	sa = dtest_wait(a, 0);
	sb = dtest_wait(b, 0);
	CHECK(EXITED_WITH(sa, 0));
	CHECK(EXITED_WITH(sb, 0));
}

static void holds_secret(void *arg)
{
	volatile uint64_t *x = mmap(ONLY_A_ADDR, PAGE, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	(void)arg;
	CHECK(x == ONLY_A_ADDR);
	x[0] = 0x5ec2e7;
	init_enter();
	__atomic_add_fetch(&rv->ready, 1, __ATOMIC_SEQ_CST);
	while (!rv->go) /* in guest mode, its page mapped, while the other process looks */
		CHECK_EQ(x[0], 0x5ec2e7);
	exit(0);
}

static void case_other_process(void)
{
	int status;
	pid_t a;

	rv = shared_rendezvous();
	a = fork();
	if (a == 0)
		holds_secret(NULL);
	while (rv->ready < 1)
		sched_yield();
	CHECK_EQ(drt_init(), 0);
	/* The address is the other process's memory, not this one's: the guest is stopped. */
	CHECK(EXITED_WITH(dtest_child(point_at, (void *)drt_va_to_pa(ONLY_A_ADDR)), STOPPED));
	rv->go = 1;
	status = dtest_wait(a, 0);
	CHECK(EXITED_WITH(status, 0));
}

static void as_nobody(void *arg)
{
	bool expect_access = arg != NULL;

	CHECK_EQ(setgroups(0, NULL), 0);
	CHECK_EQ(setgid(65534), 0);
	CHECK_EQ(setuid(65534), 0);
	if (!expect_access) {
		CHECK_EQ(open("/dev/dune", O_RDWR), -1);
		CHECK_EQ(errno, EACCES);
		CHECK_EQ(drt_init(), -EACCES);
		exit(0);
	}
	init_enter();
	CHECK_EQ(getuid(), 65534);
	exit(0);
}

static void case_permissions(void)
{
	struct stat st;

	CHECK_EQ(stat("/dev/dune", &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0600);
	CHECK_EQ(st.st_uid, 0);
	CHECK(EXITED_WITH(dtest_child(as_nobody, NULL), 0)); /* EACCES */
	CHECK_EQ(chown("/dev/dune", 65534, 65534), 0);
	CHECK(EXITED_WITH(dtest_child(as_nobody, (void *)1), 0)); /* granted: works */
	CHECK_EQ(chown("/dev/dune", 0, 0), 0);
}

static const struct dtest_case cases[] = {
	{ "unmapped", case_unmapped, "guest PTEs to unmapped addresses stop the guest" },
	{ "beyond-maxphyaddr", case_beyond_maxphyaddr,
	  "a guest PTE past MAXPHYADDR is the guest's reserved-bit #PF" },
	{ "host-permissions", case_host_permissions, "read-only text, PROT_NONE stay so" },
	{ "two-processes", case_two_processes, "two Dune processes, same address: own memory" },
	{ "other-process", case_other_process, "another process's address is not reachable" },
	{ "permissions", case_permissions, "no access to /dev/dune: EACCES; granted: works" },
};
DTEST_MAIN(cases)
