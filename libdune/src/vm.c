/* vm.c -- the guest page table: the original libdune API plus the mirror's primitives.
 *
 * Entries are updated with atomic exchanges that keep the accessed/dirty bits the CPU (or
 * the shadow MMU) may set concurrently on other vCPUs: a lost dirty bit is a lost write
 * for a collector. 2 MiB entries created for host mappings are split on demand when an
 * operation covers part of one (or, for 4 KiB mapping calls, any of it). Walking needs
 * table virtual addresses: tables come from the pool, so guest-physical to virtual is a
 * subtraction.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "dune_internal.h"

char *dune_pool_va(void) HIDDEN;

#define PTE_DEF_FLAGS (PTE_P | PTE_W | PTE_U)
#define CREATE_SPLIT 4 /* internal: no new tables, but split big entries partly covered */
#define KEEP_HW (PTE_A | PTE_D)

/* ---- the lock: recursive per thread (a handler may interrupt its own thread) --------- */

static _Atomic(uintptr_t) owner;
static int depth;
static DUNE_TLS char me;

void dune_vm_lock(void)
{
	uintptr_t self = (uintptr_t)&me, expect = 0;

	if (atomic_load_explicit(&owner, memory_order_relaxed) == self) {
		depth++;
		return;
	}
	while (!atomic_compare_exchange_weak_explicit(&owner, &expect, self, memory_order_acquire,
						      memory_order_relaxed)) {
		expect = 0;
		__builtin_ia32_pause();
	}
	depth = 1;
}

void dune_vm_unlock(void)
{
	if (--depth == 0)
		atomic_store_explicit(&owner, 0, memory_order_release);
}

/* ---- helpers --------------------------------------------------------------------- */

static inline ptent_t *table_of(ptent_t e)
{
	physaddr_t pa = PTE_ADDR(e);

	if (dune_page_isfrompool(pa))
		return (ptent_t *)(dune_pool_va() + (pa - dune_pool_pa));
	return dune_pa_to_va(pa);
}

/* Zeroes a page without calling memset: on the fault path a sanitizer's memset
 * interceptor would touch shadow memory that may not be mapped yet. */
static inline void zero_page(void *p)
{
	uint64_t n = PGSIZE / 8;
	__asm__ volatile("rep stosq" : "+D"(p), "+c"(n) : "a"(0ull) : "memory");
}

static ptent_t *alloc_table(physaddr_t *pa)
{
	struct page *pg = dune_page_alloc();

	if (!pg)
		return NULL;
	ptent_t *t = dune_pool_page_va(pg);
	zero_page(t);
	*pa = dune_page2pa(pg);
	return t;
}

static inline int is_big(ptent_t e, int level)
{
	return level > 0 && (e & PTE_PS);
}

static inline int is_table(ptent_t e, int level)
{
	return level > 0 && (e & PTE_P) && !(e & PTE_PS);
}

/* Store an entry, keeping the A/D bits hardware set meanwhile when `keep` says so. */
static inline void set_entry(ptent_t *p, ptent_t v, ptent_t keep)
{
	ptent_t old = __atomic_load_n(p, __ATOMIC_RELAXED);

	while (!__atomic_compare_exchange_n(p, &old, v | (old & keep), 0, __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED))
		;
}

static ptent_t perm_to_flags(int perm)
{
	ptent_t f = 0;

	if (perm & PERM_R)
		f = PTE_P;
	if (perm & PERM_W)
		f |= PTE_W;
	if (!(perm & PERM_X))
		f |= PTE_NX;
	if ((perm & PERM_U) || dune_g.cpl == 3) /* at CPL 3, every page must be a user page */
		f |= PTE_U;
	if (perm & PERM_UC)
		f |= PTE_PCD;
	if (perm & PERM_COW)
		f |= PTE_COW;
	if ((perm & PERM_USR3) == PERM_USR3)
		f |= PTE_USR3;
	else if (perm & PERM_USR1)
		f |= PTE_USR1;
	else if (perm & PERM_USR2)
		f |= PTE_USR2;
	return f;
}

/* Replace a big entry by a table of 512 entries one level down with the same mapping. */
static int split(ptent_t *e, int level)
{
	physaddr_t pa;
	ptent_t *t = alloc_table(&pa);
	ptent_t old = __atomic_load_n(e, __ATOMIC_ACQUIRE);
	uint64_t step = 1ull << PDSHIFT(level - 1);

	if (!t)
		return -ENOMEM;
	ptent_t flags = PTE_FLAGS(old) & ~(ptent_t)PTE_PAT_PS;
	if (level - 1 == 0)
		flags &= ~PTE_PS;
	for (int i = 0; i < NPTENTRIES; i++)
		t[i] = (PTE_ADDR(old) + i * step) | flags;
	__atomic_store_n(e, pa | PTE_DEF_FLAGS, __ATOMIC_RELEASE);
	return 0;
}

/* The original walker, with big entries split when an operation covers part of one
 * (create = CREATE_NORMAL or CREATE_SPLIT). */
static int walk(ptent_t *dir, int level, uintptr_t start, uintptr_t end, page_walk_cb cb,
		const void *arg, int create)
{
	uint64_t size = 1ull << PDSHIFT(level);
	int i0 = (int)PDX(level, start), i1 = (int)PDX(level, end);
	uintptr_t base = start & ~((size << NPTBITS) - 1);
	int r;

	if (level == NPTLVLS)
		base = 0;
	for (int i = i0; i <= i1; i++) {
		uintptr_t cur = base + (uintptr_t)i * size;
		uintptr_t lo = i == i0 ? start : cur, hi = i == i1 ? end : cur + size - 1;
		ptent_t *p = &dir[i];

		if (level == 0) {
			if (create == CREATE_NORMAL || *p)
				if ((r = cb(arg, p, (void *)cur)))
					return r;
			continue;
		}
		if ((level == 1 && create == CREATE_BIG) ||
		    (level == 2 && create == CREATE_BIG_1GB)) {
			if ((r = cb(arg, p, (void *)cur)))
				return r;
			continue;
		}
		if (is_big(*p, level)) {
			/* CREATE_NORMAL callbacks write 4 KiB leaves, so a big entry is split even
			 * when the range covers it whole: a leaf in a PD/PDPT slot (no PS) would make
			 * the CPU walk the page it names as a table. */
			int partial = lo != cur || hi != cur + size - 1;
			if ((!partial && create != CREATE_NORMAL) || create == CREATE_NONE ||
			    create == CREATE_BIG || create == CREATE_BIG_1GB) {
				if ((r = cb(arg, p, (void *)cur)))
					return r;
				continue;
			}
			if ((r = split(p, level)))
				return r;
		}
		if (!is_table(*p, level)) {
			physaddr_t pa;
			if (create != CREATE_NORMAL && create != CREATE_BIG && create != CREATE_BIG_1GB)
				continue;
			if (!alloc_table(&pa))
				return -ENOMEM;
			__atomic_store_n(p, pa | PTE_DEF_FLAGS, __ATOMIC_RELEASE);
		}
		if ((r = walk(table_of(*p), level - 1, lo, hi, cb, arg, create)))
			return r;
	}
	return 0;
}

static int walk_range(ptent_t *root, uintptr_t va, size_t len, page_walk_cb cb,
		      const void *arg, int create)
{
	if (len == 0)
		return 0;
	dune_vm_lock();
	int r = walk(root, NPTLVLS, va, va + len - 1, cb, arg, create);
	dune_vm_unlock();
	return r;
}

/* The leaf entry for va (or NULL), and its level. */
ptent_t *dune_vm_walk(ptent_t *root, uintptr_t va, int *level)
{
	ptent_t *dir = root;

	for (int l = NPTLVLS; l > 0; l--) {
		ptent_t *p = &dir[PDX(l, va)];
		ptent_t e = __atomic_load_n(p, __ATOMIC_ACQUIRE);
		if (is_big(e, l)) {
			*level = l;
			return p;
		}
		if (!is_table(e, l))
			return NULL;
		dir = table_of(e);
	}
	*level = 0;
	return &dir[PDX(0, va)];
}

/* ---- the original API ------------------------------------------------------------ */

int dune_vm_page_walk(ptent_t *root, void *start_va, void *end_va, page_walk_cb cb,
		      const void *arg)
{
	dune_vm_lock();
	int r = walk(root, NPTLVLS, (uintptr_t)start_va, (uintptr_t)end_va, cb, arg, CREATE_NONE);
	dune_vm_unlock();
	return r;
}

int dune_vm_lookup(ptent_t *root, void *va, int create, ptent_t **pte_out)
{
	ptent_t *dir = root;
	int r = 0;

	dune_vm_lock();
	for (int l = NPTLVLS; l > 0; l--) {
		ptent_t *p = &dir[PDX(l, va)];
		if (is_big(*p, l)) {
			if (!create) {
				*pte_out = p;
				goto out;
			}
			if ((r = split(p, l)))
				goto out;
		}
		if (!is_table(*p, l)) {
			physaddr_t pa;
			if (!create) {
				r = -ENOENT;
				goto out;
			}
			if (!alloc_table(&pa)) {
				r = -ENOMEM;
				goto out;
			}
			__atomic_store_n(p, pa | PTE_DEF_FLAGS, __ATOMIC_RELEASE);
		}
		dir = table_of(*p);
	}
	*pte_out = &dir[PDX(0, va)];
out:
	dune_vm_unlock();
	return r;
}

struct map_phys_arg {
	ptent_t flags;
	uintptr_t va_base;
	physaddr_t pa_base;
};

static int map_phys_cb(const void *a, ptent_t *p, void *va)
{
	const struct map_phys_arg *m = a;
	set_entry(p, PTE_ADDR((uintptr_t)va - m->va_base + m->pa_base) | m->flags, 0);
	return 0;
}

int dune_vm_map_phys(ptent_t *root, void *va, size_t len, void *pa, int perm)
{
	struct map_phys_arg m = {perm_to_flags(perm), (uintptr_t)va, (physaddr_t)(uintptr_t)pa};
	int create = CREATE_NORMAL;

	if (perm & PERM_BIG_1GB) {
		create = dune_g.info.big_1g_pages ? CREATE_BIG_1GB : CREATE_BIG;
		m.flags |= PTE_PS;
	} else if (perm & PERM_BIG) {
		create = CREATE_BIG;
		m.flags |= PTE_PS;
	}
	/* The guest-physical range must be backed by a memslot before anything can use it. */
	uintptr_t hva = dune_layout_pa_to_va(m.pa_base);
	if (hva) {
		int r = dune_layout_ensure(hva, len);
		if (r < 0)
			return r;
	}
	return walk_range(root, (uintptr_t)va, len, map_phys_cb, &m, create);
}

static int map_pages_cb(const void *a, ptent_t *p, void *va)
{
	struct page *pg = dune_page_alloc();

	(void)va;
	if (!pg)
		return -ENOMEM;
	set_entry(p, PTE_ADDR(dune_page2pa(pg)) | *(const ptent_t *)a, 0);
	return 0;
}

int dune_vm_map_pages(ptent_t *root, void *va, size_t len, int perm)
{
	ptent_t flags = perm_to_flags(perm);

	if (!(perm & PERM_R) && (perm & ~PERM_R))
		return -EINVAL;
	return walk_range(root, (uintptr_t)va, len, map_pages_cb, &flags, CREATE_NORMAL);
}

static int mprotect_cb(const void *a, ptent_t *p, void *va)
{
	ptent_t e = __atomic_load_n(p, __ATOMIC_RELAXED);

	(void)va;
	if (!e || (e & PTE_TOMB))
		return 0;
	set_entry(p, PTE_ADDR(e) | (e & PTE_PS) | *(const ptent_t *)a, KEEP_HW);
	return 0;
}

int dune_vm_mprotect(ptent_t *root, void *va, size_t len, int perm)
{
	if (!(perm & PERM_R)) {
		if (perm & PERM_W)
			return -EINVAL;
		perm = PERM_NONE;
	}
	ptent_t flags = perm_to_flags(perm);
	if (perm == PERM_NONE) /* not present; keeps the address (and is not the mirror's) */
		flags &= ~(ptent_t)PTE_P;
	int r = walk_range(root, (uintptr_t)va, len, mprotect_cb, &flags, CREATE_SPLIT);
	if (r)
		return r;
	dune_flush_tlb();
	return 0;
}

static void put_if_pool(ptent_t e)
{
	if ((e & PTE_P) && !(e & PTE_MIRROR) && dune_page_isfrompool(PTE_ADDR(e)))
		dune_page_put(dune_pa2page(PTE_ADDR(e)));
}

static int unmap_cb(const void *a, ptent_t *p, void *va)
{
	(void)a;
	(void)va;
	put_if_pool(__atomic_exchange_n(p, PTE_TOMB, __ATOMIC_ACQ_REL));
	return 0;
}

void dune_vm_unmap(ptent_t *root, void *va, size_t len)
{
	walk_range(root, (uintptr_t)va, len, unmap_cb, NULL, CREATE_SPLIT);
	dune_flush_tlb();
}

int dune_vm_insert_page(ptent_t *root, void *va, struct page *pg, int perm)
{
	ptent_t *p;
	int r = dune_vm_lookup(root, va, CREATE_NORMAL, &p);

	if (r)
		return r;
	set_entry(p, PTE_ADDR(dune_page2pa(pg)) | perm_to_flags(perm), 0);
	return 0;
}

struct page *dune_vm_lookup_page(ptent_t *root, void *va)
{
	ptent_t *p;

	if (dune_vm_lookup(root, va, CREATE_NONE, &p) || !(*p & PTE_P))
		return NULL;
	if (!dune_page_isfrompool(PTE_ADDR(*p)))
		return NULL;
	return dune_pa2page(PTE_ADDR(*p));
}

/* Deep copy: new tables, the same leaves (pool pages gain a reference). */
static int clone_dir(const ptent_t *src, ptent_t *dst, int level)
{
	for (int i = 0; i < NPTENTRIES; i++) {
		ptent_t e = src[i];
		if (!e)
			continue;
		if (is_table(e, level)) {
			physaddr_t pa;
			ptent_t *t = alloc_table(&pa);
			if (!t)
				return -ENOMEM;
			dst[i] = pa | PTE_FLAGS(e);
			if (clone_dir(table_of(e), t, level - 1))
				return -ENOMEM;
			continue;
		}
		if ((e & PTE_P) && !(e & PTE_MIRROR) && !(e & PTE_PS) &&
		    dune_page_isfrompool(PTE_ADDR(e)))
			dune_page_get(dune_pa2page(PTE_ADDR(e)));
		dst[i] = e;
	}
	return 0;
}

static void free_dir(ptent_t *dir, int level, int put_leaves)
{
	for (int i = 0; i < NPTENTRIES; i++) {
		ptent_t e = dir[i];
		if (is_table(e, level)) {
			free_dir(table_of(e), level - 1, put_leaves);
			dune_page_put(dune_pa2page(PTE_ADDR(e)));
		} else if (put_leaves && !(e & PTE_PS)) {
			put_if_pool(e);
		}
		dir[i] = 0;
	}
}

ptent_t *dune_vm_clone(ptent_t *root)
{
	physaddr_t pa;

	dune_vm_lock();
	ptent_t *nr = alloc_table(&pa);
	if (nr && clone_dir(root, nr, NPTLVLS)) {
		free_dir(nr, NPTLVLS, 1);
		dune_page_put(dune_pa2page(pa));
		nr = NULL;
	}
	dune_vm_unlock();
	return nr;
}

void dune_vm_free(ptent_t *root)
{
	dune_vm_lock();
	free_dir(root, NPTLVLS, 1);
	dune_page_put(dune_pa2page(dune_va_to_pa(root)));
	dune_vm_unlock();
}

/* Copy-on-write, as the original: a write to a read-only PTE_COW page gets a private copy. */
void dune_vm_default_pgflt_handler(uintptr_t addr, uint64_t fec)
{
	ptent_t *p;

	if ((fec & (FEC_P | FEC_RSV)) != FEC_P || !(fec & FEC_W))
		return;
	if (dune_vm_lookup(pgroot, (void *)addr, CREATE_NORMAL, &p) || !(*p & PTE_COW))
		return;
	ptent_t e = *p, flags = (PTE_FLAGS(e) & ~PTE_COW) | PTE_W;
	physaddr_t old = PTE_ADDR(e);
	if (dune_page_isfrompool(old) && dune_pa2page(old)->ref == 1) {
		set_entry(p, old | flags, 0);
	} else {
		struct page *pg = dune_page_alloc();
		if (!pg)
			return;
		memcpy(dune_pool_page_va(pg), (void *)PGADDR(addr), PGSIZE);
		set_entry(p, PTE_ADDR(dune_page2pa(pg)) | flags, 0);
		if (dune_page_isfrompool(old))
			dune_page_put(dune_pa2page(old));
	}
	dune_flush_tlb_one(addr);
}

/* ---- the mirror's primitives ----------------------------------------------------- */

struct host_arg {
	ptent_t flags;
	int keep_user;
	long changed;
};

static int map_host_cb(const void *a, ptent_t *p, void *va)
{
	struct host_arg *h = (struct host_arg *)a;
	ptent_t e = __atomic_load_n(p, __ATOMIC_RELAXED);

	if (h->keep_user && e && !(e & PTE_MIRROR))
		return 0; /* the program's own entry */
	ptent_t v = PTE_ADDR(dune_va_to_pa(va)) | h->flags;
	if (e != v) {
		set_entry(p, v, 0);
		h->changed += e != 0;
	}
	return 0;
}

/* The entry at `level` for va, creating tables above it (and splitting big entries in the
 * way); NULL when out of pool pages. Called with the lock held. */
static ptent_t *slot_at(ptent_t *root, uintptr_t va, int level)
{
	ptent_t *dir = root;

	for (int l = NPTLVLS; l > level; l--) {
		ptent_t *p = &dir[PDX(l, va)];
		if (is_big(*p, l) && split(p, l))
			return NULL;
		if (!is_table(*p, l)) {
			physaddr_t pa;
			if (!alloc_table(&pa))
				return NULL;
			__atomic_store_n(p, pa | PTE_DEF_FLAGS, __ATOMIC_RELEASE);
		}
		dir = table_of(*p);
	}
	return &dir[PDX(level, va)];
}

int dune_vm_map_host(ptent_t *root, uintptr_t va, size_t len, ptent_t flags)
{
	struct host_arg h = {flags | PTE_MIRROR, 1, 0};
	struct host_arg hb = {flags | PTE_MIRROR | PTE_PS, 1, 0};
	uintptr_t end = va + len;
	int r = 0;

	dune_vm_lock();
	while (va < end && r == 0) {
		uintptr_t next = (va | BIG_PGMASK) + 1;
		if (!(va & BIG_PGMASK) && next <= end) {
			/* A whole aligned 2 MiB: one entry, unless a table (entries of the program
			 * or of a finer host mapping) is already there. */
			ptent_t *pd = slot_at(root, va, 1);
			if (!pd) {
				r = -ENOMEM;
				break;
			}
			ptent_t e = __atomic_load_n(pd, __ATOMIC_RELAXED);
			if (!e || (is_big(e, 1) && (e & PTE_MIRROR))) {
				map_host_cb(&hb, pd, (void *)va);
				h.changed += hb.changed;
				hb.changed = 0;
				va = next;
				continue;
			}
		}
		uintptr_t stop = next < end ? next : end;
		r = walk(root, NPTLVLS, va, stop - 1, map_host_cb, &h, CREATE_NORMAL);
		va = stop;
	}
	dune_vm_unlock();
	return r < 0 ? r : (int)(h.changed > 0);
}

static int clear_cb(const void *a, ptent_t *p, void *va)
{
	long *n = (long *)a;

	(void)va;
	if (__atomic_exchange_n(p, 0, __ATOMIC_ACQ_REL))
		(*n)++;
	return 0;
}

void dune_vm_clear(ptent_t *root, uintptr_t va, size_t len)
{
	long n = 0;
	walk_range(root, va, len, clear_cb, &n, CREATE_SPLIT);
}

static int reprotect_cb(const void *a, ptent_t *p, void *va)
{
	struct host_arg *h = (struct host_arg *)a;
	ptent_t e = __atomic_load_n(p, __ATOMIC_RELAXED);

	(void)va;
	if (!(e & PTE_MIRROR))
		return 0;
	if (!(h->flags & PTE_P))
		__atomic_store_n(p, 0, __ATOMIC_RELEASE); /* PROT_NONE: refilled on demand */
	else
		set_entry(p, PTE_ADDR(e) | (e & PTE_PS) | h->flags | PTE_MIRROR, KEEP_HW);
	h->changed++;
	return 0;
}

long dune_vm_reprotect_mirror(ptent_t *root, uintptr_t va, size_t len, ptent_t flags)
{
	struct host_arg h = {flags, 0, 0};
	int r = walk_range(root, va, len, reprotect_cb, &h, CREATE_SPLIT);
	return r < 0 ? r : h.changed;
}
