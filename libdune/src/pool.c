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
static _Atomic(struct page *) free_head;
static _Atomic long bump, nfree;
static atomic_flag pop_lock = ATOMIC_FLAG_INIT;

/* Handlers can interrupt the thread they run on anywhere, even inside this allocator,
 * and may allocate themselves: nothing here may wait for the code it interrupted. Pushes
 * are lock-free; pops take a try-lock (one popper at a time, so the node below the head
 * cannot change under a pop) and fall back to never-used pages when someone holds it. */

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

	if (!atomic_flag_test_and_set_explicit(&pop_lock, memory_order_acquire)) {
		pg = atomic_load_explicit(&free_head, memory_order_acquire);
		while (pg && !atomic_compare_exchange_weak(&free_head, &pg, SLIST_NEXT(pg, link)))
			;
		atomic_flag_clear_explicit(&pop_lock, memory_order_release);
		if (pg)
			atomic_fetch_sub(&nfree, 1);
	}
	if (!pg) {
		long i = atomic_fetch_add(&bump, 1);
		if (i >= num_pages) {
			atomic_fetch_sub(&bump, 1);
			return NULL;
		}
		pg = &pages[i];
	}
	pg->ref = 1;
	return pg;
}

void dune_page_free(struct page *pg)
{
	struct page *head = atomic_load_explicit(&free_head, memory_order_relaxed);

	do
		SLIST_NEXT(pg, link) = head;
	while (!atomic_compare_exchange_weak_explicit(&free_head, &head, pg, memory_order_release,
						      memory_order_relaxed));
	atomic_fetch_add(&nfree, 1);
}

bool dune_page_isfrompool(physaddr_t pa)
{
	return pa >= dune_pool_pa && pa < dune_pool_pa + ((physaddr_t)num_pages << PGSHIFT);
}

void dune_page_stats(void)
{
	long b = atomic_load(&bump), f = atomic_load(&nfree);
	dune_printf("dune: pool: %d pages, %ld used, %ld free-listed, %ld never used\n",
		    num_pages, b - f, f, num_pages - b);
}
