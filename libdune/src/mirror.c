/* mirror.c -- the guest page table follows the host's mappings.
 *
 * At dune_init() every host mapping up to DUNE_EAGER_MAX_MB (256 MiB) is copied into the
 * page table (2 MiB entries where aligned); larger ones are filled in on first touch, one
 * 1 GiB window at a time, so a huge PROT_NONE or MAP_NORESERVE reservation costs nothing
 * until used. Afterwards:
 *   - mapping syscalls made in Dune mode (mmap, munmap, mprotect, mremap, brk, shmat,
 *     shmdt) are followed by an upcall that updates the page table in Dune ring 0 and
 *     shoots down stale translations on other vCPUs;
 *   - a page fault on an address the page table does not map, or on a mirrored entry, asks
 *     the host what is mapped there, which also picks up mappings made by threads outside
 *     Dune mode (they do not go through us), and grows the main stack.
 * Entries carry PTE_MIRROR; those the program writes through dune_vm_* are its own and are
 * never refilled or reprotected from the host. Updates happen in the guest: on shadow-
 * paging hosts KVM only tracks page-table writes the guest itself makes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dune_internal.h"

char *dune_pool_va(void) HIDDEN;

ptent_t dune_prot_to_pte(int prot)
{
	ptent_t f;

	if (!(prot & (PROT_READ | PROT_WRITE | PROT_EXEC)))
		return 0;
	f = PTE_P;
	if (prot & PROT_WRITE)
		f |= PTE_W;
	if (!(prot & PROT_EXEC))
		f |= PTE_NX;
	if (dune_g.cpl == 3)
		f |= PTE_U;
	return f;
}

static size_t eager_max(void)
{
	return (size_t)dune_g.eager_max_mb << 20;
}

/* ---- the mapping lock ------------------------------------------------------------ */

static struct {
	_Atomic int word; /* 0 free, 1 held, 2 held and maybe waited for */
	_Atomic uintptr_t owner;
	int depth;
} map_lk;
static DUNE_TLS char map_lk_me; /* its address names the thread, host side and guest side */

void dune_map_lock(void)
{
	uintptr_t me = (uintptr_t)&map_lk_me;
	int c = 0;

	if (atomic_load_explicit(&map_lk.owner, memory_order_relaxed) == me) {
		map_lk.depth++;
		return;
	}
	if (!atomic_compare_exchange_strong(&map_lk.word, &c, 1)) {
		if (c != 2)
			c = atomic_exchange(&map_lk.word, 2);
		while (c != 0) {
			dune_raw_syscall6(SYS_futex, (long)&map_lk.word, FUTEX_WAIT_PRIVATE, 2, 0, 0,
					  0);
			c = atomic_exchange(&map_lk.word, 2);
		}
	}
	atomic_store_explicit(&map_lk.owner, me, memory_order_relaxed);
	map_lk.depth = 1;
}

void dune_map_unlock(void)
{
	if (--map_lk.depth > 0)
		return;
	atomic_store_explicit(&map_lk.owner, 0, memory_order_relaxed);
	if (atomic_exchange(&map_lk.word, 0) == 2)
		dune_raw_syscall6(SYS_futex, (long)&map_lk.word, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0);
}

void dune_map_lock_reset(void)
{
	atomic_store(&map_lk.word, 0);
	atomic_store(&map_lk.owner, 0);
	map_lk.depth = 0;
}

/* ---- reading /proc/self/maps without libc locks (host loop) --------------------- */

struct vma {
	uintptr_t start, end;
	int prot;
	int stack; /* [stack]: grows down */
};

static uintptr_t hex(const char **s)
{
	uintptr_t v = 0;
	for (;; (*s)++) {
		char c = **s;
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return v;
		v = v * 16 + (uintptr_t)d;
	}
}

static int parse_line(const char *s, struct vma *m)
{
	m->start = hex(&s);
	if (*s++ != '-')
		return -1;
	m->end = hex(&s);
	if (*s++ != ' ')
		return -1;
	m->prot = (s[0] == 'r' ? PROT_READ : 0) | (s[1] == 'w' ? PROT_WRITE : 0) |
		  (s[2] == 'x' ? PROT_EXEC : 0);
	m->stack = strstr(s, "[stack]") != NULL;
	return 0;
}

/* Calls fn for each mapping, in address order, until it returns nonzero. */
static int for_each_vma(int (*fn)(const struct vma *, void *), void *arg)
{
	char buf[4096], line[512];
	size_t ll = 0;
	int fd = (int)syscall(SYS_open, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
	long n;
	int r = 0;

	if (fd < 0)
		return -errno;
	while (r == 0 && (n = syscall(SYS_read, fd, buf, sizeof(buf))) > 0) {
		for (long i = 0; i < n && r == 0; i++) {
			if (buf[i] != '\n') {
				if (ll < sizeof(line) - 1)
					line[ll++] = buf[i];
				continue;
			}
			line[ll] = 0;
			ll = 0;
			struct vma m;
			if (parse_line(line, &m) == 0)
				r = fn(&m, arg);
		}
	}
	syscall(SYS_close, fd);
	return r < 0 ? r : 0;
}

struct find {
	uintptr_t addr;
	struct vma hit, below, above;
	int found, have_below, have_above;
};

static int find_cb(const struct vma *m, void *a)
{
	struct find *f = a;

	if (f->addr >= m->start && f->addr < m->end) {
		f->hit = *m;
		f->found = 1;
		return 1;
	}
	if (m->end <= f->addr) {
		f->below = *m;
		f->have_below = 1;
		return 0;
	}
	f->above = *m;
	f->have_above = 1;
	return 1;
}

/* Lets the main stack grow to cover addr (and 256 KiB more), as a fault there would
 * natively, when the kernel would allow it. */
static int grow_stack(const struct find *f)
{
	struct rlimit rl;
	uintptr_t gap = 256 * PGSIZE; /* the kernel's default stack_guard_gap */

	if (!f->have_above || !f->above.stack)
		return 0;
	if (syscall(SYS_getrlimit, RLIMIT_STACK, &rl) < 0)
		return 0;
	uintptr_t lowest = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > f->above.end
				   ? 0
				   : f->above.end - rl.rlim_cur;
	uintptr_t floor = f->have_below ? f->below.end + gap : 0;
	if (lowest < floor)
		lowest = floor;
	uintptr_t want = PGADDR(f->addr);
	if (want < lowest)
		return 0;
	uintptr_t extra = want > lowest + 256 * 1024 ? want - 256 * 1024 : lowest;
	for (uintptr_t a = f->above.start - PGSIZE; a >= extra && a >= PGSIZE; a -= PGSIZE)
		(void)*(volatile char *)a; /* the host kernel expands the stack */
	return 1;
}

int dune_host_vma(uintptr_t addr, uintptr_t *start, uintptr_t *end, int *prot)
{
	struct find f;

	memset(&f, 0, sizeof(f));
	f.addr = addr;
	if (for_each_vma(find_cb, &f) < 0)
		return -EIO;
	if (!f.found && grow_stack(&f)) {
		memset(&f, 0, sizeof(f));
		f.addr = addr;
		for_each_vma(find_cb, &f);
	}
	if (!f.found)
		return -ENOENT;
	*start = f.hit.start;
	*end = f.hit.end;
	*prot = f.hit.prot;
	return 0;
}

/* ---- dune_init: copy what is mapped now ---------------------------------------- */

static int init_cb(const struct vma *m, void *a)
{
	ptent_t flags = dune_prot_to_pte(m->prot);
	size_t len = m->end - m->start;
	int r;

	(void)a;
	if (m->start >= DUNE_USER_TOP || !flags)
		return 0; /* [vsyscall] and PROT_NONE */
	if (len > eager_max() && !m->stack)
		return 0; /* on first touch */
	if ((r = dune_layout_back(m->start, len)) < 0)
		return r;
	if ((r = dune_vm_map_host(pgroot, m->start, len, flags)) < 0) {
		dune_warn("dune: mapping %#lx-%#lx into the page table failed: %s", m->start,
			  m->end, strerror(-r));
		return r;
	}
	return 0;
}

static int map_always_prot(const void *p, size_t len, int prot)
{
	uintptr_t lo = PGADDR((uintptr_t)p);
	uintptr_t hi = ((uintptr_t)p + len + PGSIZE - 1) & ~(uintptr_t)PGMASK;
	int r = dune_layout_back(lo, hi - lo);

	if (r >= 0)
		r = dune_vm_map_host(pgroot, lo, hi - lo, dune_prot_to_pte(prot));
	return r < 0 ? r : 0;
}

static int map_always(const void *p, size_t len)
{
	return map_always_prot(p, len, PROT_READ | PROT_WRITE);
}

int dune_mirror_init(void)
{
	int r;
	size_t pool_bytes = (size_t)num_pages << PGSHIFT;

	/* The pool holds the page tables themselves; `pages` (their bookkeeping) and the
	 * layout's tables are what the fault path itself reads and writes: all always mapped
	 * (a first touch of one inside the fault path would fault again, for ever). The
	 * kernel may have merged them into a big neighbouring mapping that init_cb leaves to
	 * first touch. */
	r = dune_vm_map_host(pgroot, (uintptr_t)dune_pool_va(), pool_bytes,
			     dune_prot_to_pte(PROT_READ | PROT_WRITE));
	if (r >= 0)
		r = map_always(pages, (size_t)num_pages * sizeof(struct page));
	if (r >= 0)
		r = dune_layout_tables(map_always);
	if (r >= 0) /* the IDT, read by the CPU (read-only on the host too) */
		r = map_always_prot((const void *)(uintptr_t)dune_g.idt_base, PGSIZE, PROT_READ);
	if (r >= 0)
		r = for_each_vma(init_cb, NULL);
	if (r < 0)
		dune_warn("dune: cannot mirror the process's mappings: %s", strerror(-r));
	return r < 0 ? r : 0;
}

/* Host side, before the thread runs guest code: mirror the whole mapping containing
 * `start` (clipped to `end`). Additions to the page table are safe from the host. */
int dune_mirror_range_host(uintptr_t start, uintptr_t end)
{
	uintptr_t s, e;
	int prot, r;

	dune_map_lock();
	if ((r = dune_host_vma(start, &s, &e, &prot)) < 0)
		goto out;
	if (e > end)
		e = end;
	if (!dune_prot_to_pte(prot))
		goto out;
	if ((r = dune_layout_back(s, e - s)) < 0)
		goto out;
	r = dune_vm_map_host(pgroot, s, e - s, dune_prot_to_pte(prot));
out:
	dune_map_unlock();
	return r < 0 ? r : 0;
}

/* ---- guest side: after a mapping syscall ---------------------------------------- */

static void flush_range(uintptr_t va, size_t len, int others)
{
	if (len / PGSIZE > 32) {
		dune_tlb_flush_local_all();
	} else {
		for (uintptr_t a = va; a < va + len; a += PGSIZE)
			dune_flush_tlb_one(a);
	}
	if (others) {
		dune_tlb_queue_range((void *)va, len);
		dune_tlb_shootdown();
	}
}

static void map_new(uintptr_t va, size_t len, ptent_t flags)
{
	int had;

	if (!flags) {
		dune_vm_clear(pgroot, va, len);
		flush_range(va, len, 1);
		return;
	}
	if (len > eager_max()) {
		/* Large: only drop what was there; first touches fill it in. */
		dune_vm_clear(pgroot, va, len);
		flush_range(va, len, 1);
		return;
	}
	if (dune_layout_ensure(va, len) < 0)
		return; /* the fault path will report it */
	had = dune_vm_map_host(pgroot, va, len, flags);
	if (had > 0)
		flush_range(va, len, 1);
}

static ptent_t flags_at(uintptr_t va)
{
	int level;
	ptent_t *p = dune_vm_walk(pgroot, va, &level);

	if (!p || !(*p & PTE_P))
		return 0;
	return (*p & (PTE_P | PTE_W | PTE_U | PTE_NX));
}

void dune_mirror_after_syscall(long nr, const uint64_t a[6], long ret, uint64_t aux)
{
	uintptr_t addr = PGADDR(a[0]);
	size_t len = (a[1] + PGSIZE - 1) & ~(size_t)PGMASK;

	switch (nr) {
	case SYS_mmap:
		map_new((uintptr_t)ret, len, dune_prot_to_pte((int)a[2]));
		break;
	case SYS_munmap:
		dune_vm_clear(pgroot, addr, len);
		flush_range(addr, len, 1);
		break;
	case SYS_mprotect:
	case SYS_pkey_mprotect: {
		ptent_t f = dune_prot_to_pte((int)a[2]);
		long n = dune_vm_reprotect_mirror(pgroot, addr, len, f);
		if (f && len <= eager_max() && dune_layout_ensure(addr, len) == 0)
			n += dune_vm_map_host(pgroot, addr, len, f) > 0;
		if (n)
			flush_range(addr, len, 1);
		break;
	}
	case SYS_mremap: {
		ptent_t f = flags_at(addr);
		size_t nlen = (a[2] + PGSIZE - 1) & ~(size_t)PGMASK;
		dune_vm_clear(pgroot, addr, len);
		flush_range(addr, len, 1);
		if (f)
			map_new((uintptr_t)ret, nlen, f | PTE_MIRROR);
		break;
	}
	case SYS_brk: {
		uintptr_t old = PGADDR(aux + PGSIZE - 1), now = PGADDR((uintptr_t)ret + PGSIZE - 1);
		if (now > old)
			map_new(old, now - old, dune_prot_to_pte(PROT_READ | PROT_WRITE));
		else if (now < old) {
			dune_vm_clear(pgroot, now, old - now);
			flush_range(now, old - now, 1);
		}
		break;
	}
	case SYS_shmat: {
		int prot = (a[2] & 010000 /* SHM_RDONLY */) ? PROT_READ : PROT_READ | PROT_WRITE;
		if (a[2] & 0100000 /* SHM_EXEC */)
			prot |= PROT_EXEC;
		map_new((uintptr_t)ret, (aux + PGSIZE - 1) & ~(size_t)PGMASK, dune_prot_to_pte(prot));
		break;
	}
	case SYS_shmdt:
		dune_vm_clear(pgroot, addr, aux);
		flush_range(addr, aux, 1);
		break;
	}
}

/* ---- guest side: page faults the host mapping explains -------------------------- */

static DUNE_TLS uintptr_t last_fault;

static int mirror_fault(uintptr_t addr, uint64_t fec)
{
	int level;
	ptent_t *p = dune_vm_walk(pgroot, addr, &level);
	ptent_t e = p ? __atomic_load_n(p, __ATOMIC_ACQUIRE) : 0;
	struct dune_hc_vma vma;

	if (addr >= DUNE_USER_TOP)
		return 0;
	if (e && !(e & PTE_MIRROR))
		return 0; /* the program's own entry (or tombstone): its handler decides */
	if (dune_hcall(DUNE_HC_VMA, addr, (uint64_t)(uintptr_t)&vma, 0) < 0)
		return 0;
	ptent_t f = dune_prot_to_pte((int)vma.prot);
	if (!f || ((fec & FEC_W) && !(f & PTE_W)) || ((fec & FEC_I) && (f & PTE_NX)))
		return 0; /* the host would fault too */
	/* A handler that interrupted this one (a signal, a nested fault) may have filled the
	 * entry in meanwhile. */
	if (dune_fault_is_spurious(addr, fec))
		return 1;
	p = dune_vm_walk(pgroot, addr, &level);
	e = p ? __atomic_load_n(p, __ATOMIC_ACQUIRE) : 0;
	if (e && PGADDR(addr) == last_fault)
		return 0; /* already refilled once and it faults again: not ours to fix */
	last_fault = PGADDR(addr);

	uintptr_t w = addr & ~(uintptr_t)(DUNE_WINDOW_SIZE - 1);
	uintptr_t lo = vma.start > w ? vma.start : w;
	uintptr_t hi = vma.end < w + DUNE_WINDOW_SIZE ? vma.end : w + DUNE_WINDOW_SIZE;
	if (dune_layout_ensure(lo, hi - lo) < 0)
		return 0;
	if (e)
		dune_vm_reprotect_mirror(pgroot, lo, hi - lo, f);
	if (dune_vm_map_host(pgroot, lo, hi - lo, f) < 0)
		return 0;
	dune_flush_tlb_one(addr);
	if (dune_self)
		dune_self->stats.lazy_maps++;
	return 1;
}

int dune_mirror_fault(uintptr_t addr, uint64_t fec)
{
	/* What the host says is mapped stays so until the entries are in. */
	dune_map_lock();
	int r = mirror_fault(addr, fec);
	dune_map_unlock();
	return r;
}
