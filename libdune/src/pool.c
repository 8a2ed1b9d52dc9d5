/* pool.c -- libdune's page pool: guest-physically contiguous pages for page tables and
 * for dune_vm_map_pages(). The pool is reserved once (address space only; the host commits
 * pages on first touch) and backed by its own memslot windows. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

#include "dune_internal.h"

struct page *pages;
int num_pages;
physaddr_t dune_pool_pa;

static char *pool_va;
static struct page *free_head;
static long bump, nfree;
static atomic_flag lock = ATOMIC_FLAG_INIT;

/* Handlers may allocate while the code they interrupted holds the lock (same thread):
 * a nested upcall spins on itself. The pool lock is therefore held only for a few
 * instructions with no way to fault inside. */
static void lk(void)
{
	while (atomic_flag_test_and_set_explicit(&lock, memory_order_acquire))
		__builtin_ia32_pause();
}

static void unlk(void)
{
	atomic_flag_clear_explicit(&lock, memory_order_release);
}

int dune_pool_init(size_t bytes)
{
	size_t win = DUNE_WINDOW_SIZE;
	int r;

	bytes = (bytes + win - 1) & ~(win - 1);
	if (bytes == 0 || bytes > (64ull << 30))
		return -EINVAL;
	/* Window-aligned, so its windows get consecutive guest-physical addresses even in
	 * the compressed layout. */
	char *raw = mmap(NULL, bytes + win, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		return -errno;
	pool_va = (char *)(((uintptr_t)raw + win - 1) & ~(uintptr_t)(win - 1));
	if (pool_va > raw)
		munmap(raw, (size_t)(pool_va - raw));
	munmap(pool_va + bytes, (size_t)(raw + win - pool_va));
	num_pages = (int)(bytes / PGSIZE);
	pages = mmap(NULL, (size_t)num_pages * sizeof(struct page), PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (pages == MAP_FAILED)
		return -errno;
	if ((r = dune_layout_back((uintptr_t)pool_va, bytes)) < 0)
		return r;
	dune_pool_pa = dune_va_to_pa(pool_va);
	if (dune_pool_pa + bytes != dune_va_to_pa(pool_va + bytes - 1) + 1)
		return -EFAULT; /* not contiguous: cannot happen with aligned windows */
	return 0;
}

void *dune_pool_page_va(struct page *pg)
{
	return pool_va + ((size_t)(pg - pages) << PGSHIFT);
}

/* The pool's virtual range, for vm.c's fast guest-physical to virtual translation. */
HIDDEN char *dune_pool_va(void)
{
	return pool_va;
}

struct page *dune_page_alloc(void)
{
	struct page *pg = NULL;

	lk();
	if (free_head) {
		pg = free_head;
		free_head = SLIST_NEXT(pg, link);
		nfree--;
	} else if (bump < num_pages) {
		pg = &pages[bump++];
	}
	unlk();
	if (pg)
		pg->ref = 1;
	return pg;
}

void dune_page_free(struct page *pg)
{
	lk();
	SLIST_NEXT(pg, link) = free_head;
	free_head = pg;
	nfree++;
	unlk();
}

bool dune_page_isfrompool(physaddr_t pa)
{
	return pa >= dune_pool_pa && pa < dune_pool_pa + ((physaddr_t)num_pages << PGSHIFT);
}

void dune_page_stats(void)
{
	dune_printf("dune: pool: %d pages, %ld used, %ld free-listed, %ld never used\n",
		    num_pages, bump - nfree, nfree, num_pages - bump);
}
