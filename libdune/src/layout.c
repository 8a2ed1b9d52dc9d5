/* layout.c -- guest-physical addresses for the process's virtual addresses.
 *
 * Guest memory is the process's own memory. It is exposed to the VM in 1 GiB windows of
 * the address space, each one memslot, created only when something in it is mapped:
 * shadow-paging KVM allocates memslot metadata per byte of slot (about 8 bytes per 4 KiB),
 * so covering the whole 128 TiB address space is out of the question.
 *
 * Where the guest's MAXPHYADDR reaches 48 bits, guest-physical = virtual (identity) and
 * dune_va_to_pa() is free. Below that, windows get guest-physical addresses in the order
 * they are needed (a compressed layout), skipping the 3-4 GiB hole where APICs live.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dune_internal.h"

int dune_layout_identity = 1;

#define NWIN ((DUNE_USER_TOP >> DUNE_WINDOW_SHIFT) + 1) /* windows of the user half */
#define NO_GPA 0xffffffffffffffffull

static uint64_t *win_gpa;   /* window -> guest-physical base, NO_GPA if unbacked */
static int32_t *win_slot;   /* window -> memslot */
static uint64_t *gpa_win;   /* guest-physical window -> window (compressed layout) */
static uint64_t gpa_next, gpa_windows;
static int nslots;
static atomic_flag lock = ATOMIC_FLAG_INIT;

static void lk(void)
{
	dune_spin_lock(&lock);
}

static void unlk(void)
{
	dune_spin_unlock(&lock);
}

int dune_layout_init(int phys_bits)
{
	const char *force = getenv("DUNE_LAYOUT");
	size_t n = NWIN;

	dune_layout_identity = phys_bits >= 48;
	if (force && !strcmp(force, "compressed"))
		dune_layout_identity = 0;
	else if (force && !strcmp(force, "identity") && phys_bits < 48) {
		dune_warn("dune: DUNE_LAYOUT=identity needs MAXPHYADDR >= 48 (guest has %d)\n",
			phys_bits);
		return -EINVAL;
	}
	win_gpa = mmap(NULL, n * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	win_slot = mmap(NULL, n * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (win_gpa == MAP_FAILED || win_slot == MAP_FAILED)
		return -ENOMEM;
	memset(win_gpa, 0xff, n * 8);
	if (!dune_layout_identity) {
		gpa_windows = (phys_bits >= 63 ? ~0ull : (1ull << phys_bits)) >> DUNE_WINDOW_SHIFT;
		if (gpa_windows > NWIN)
			gpa_windows = NWIN;
		gpa_win = mmap(NULL, gpa_windows * 8, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (gpa_win == MAP_FAILED)
			return -ENOMEM;
		memset(gpa_win, 0xff, gpa_windows * 8);
		gpa_next = 0;
	}
	return 0;
}

static uint64_t window_size(uint64_t w)
{
	uint64_t base = w << DUNE_WINDOW_SHIFT;
	uint64_t end = base + DUNE_WINDOW_SIZE;
	return (end > DUNE_USER_TOP ? DUNE_USER_TOP : end) - base;
}

/* Called with the lock held. */
static int back_window(uint64_t w)
{
	uint64_t gpa;
	int r;

	if (win_gpa[w] != NO_GPA)
		return 0;
	if (nslots >= dune_g.info.max_slots) {
		dune_warn("dune: KVM memslots exhausted (%d): the process maps more than %d "
				"GiB windows of address space\n", nslots, nslots);
		return -ENOSPC;
	}
	if (dune_layout_identity) {
		gpa = w << DUNE_WINDOW_SHIFT;
	} else {
		if (gpa_next == 3) /* [3 GiB, 4 GiB): IOAPIC and LAPIC MMIO */
			gpa_next++;
		if (gpa_next >= gpa_windows) {
			dune_warn("dune: guest-physical address space exhausted (%llu windows)\n",
				(unsigned long long)gpa_windows);
			return -ENOSPC;
		}
		gpa_win[gpa_next] = w;
		gpa = gpa_next++ << DUNE_WINDOW_SHIFT;
	}
	r = dune_g.bk->map_window(nslots, gpa, window_size(w),
				  (void *)(uintptr_t)(w << DUNE_WINDOW_SHIFT));
	if (r < 0) {
		dune_warn("dune: mapping guest memory at %#llx failed: %s\n",
			(unsigned long long)(w << DUNE_WINDOW_SHIFT), strerror(-r));
		return r;
	}
	win_slot[w] = nslots++;
	__atomic_store_n(&win_gpa[w], gpa, __ATOMIC_RELEASE);
	return 0;
}

/* Hands each of this file's tables to fn (the fault path reads them: always mapped). */
int dune_layout_tables(int (*fn)(const void *p, size_t len))
{
	int r = fn(win_gpa, NWIN * 8);
	if (r >= 0)
		r = fn(win_slot, NWIN * 4);
	if (r >= 0 && gpa_win)
		r = fn(gpa_win, gpa_windows * 8);
	return r;
}

int dune_layout_back(uintptr_t va, size_t len)
{
	int r = 0;

	if (len == 0)
		return 0;
	if (va >= DUNE_USER_TOP || va + len > DUNE_USER_TOP || va + len < va)
		return -EINVAL;
	uint64_t w0 = va >> DUNE_WINDOW_SHIFT, w1 = (va + len - 1) >> DUNE_WINDOW_SHIFT;
	lk();
	for (uint64_t w = w0; w <= w1 && r == 0; w++)
		r = back_window(w);
	unlk();
	return r;
}

int dune_layout_is_backed(uintptr_t va)
{
	if (va >= DUNE_USER_TOP)
		return 0;
	return __atomic_load_n(&win_gpa[va >> DUNE_WINDOW_SHIFT], __ATOMIC_ACQUIRE) != NO_GPA;
}

int dune_layout_ensure(uintptr_t va, size_t len)
{
	if (len == 0)
		return 0;
	uint64_t w0 = va >> DUNE_WINDOW_SHIFT, w1 = (va + len - 1) >> DUNE_WINDOW_SHIFT;
	int missing = 0;
	for (uint64_t w = w0; w <= w1 && w < NWIN; w++)
		missing |= win_gpa[w] == NO_GPA;
	if (!missing && va + len <= DUNE_USER_TOP)
		return 0;
	if (dune_self) /* in Dune mode: memslots are the host's business */
		return (int)dune_hcall(DUNE_HC_BACK, va, len, 0);
	return dune_layout_back(va, len);
}

int dune_layout_replay(void)
{
	int r;

	for (uint64_t w = 0; w < NWIN; w++) {
		if (win_gpa[w] == NO_GPA)
			continue;
		r = dune_g.bk->map_window(win_slot[w], win_gpa[w], window_size(w),
					  (void *)(uintptr_t)(w << DUNE_WINDOW_SHIFT));
		if (r < 0)
			return r;
	}
	return 0;
}

physaddr_t __dune_va_to_pa_slow(const void *p)
{
	uintptr_t va = (uintptr_t)p;

	if (va >= DUNE_USER_TOP)
		return (physaddr_t)va;
	uint64_t w = va >> DUNE_WINDOW_SHIFT;
	if (win_gpa[w] == NO_GPA && dune_layout_ensure(va, 1) < 0)
		return (physaddr_t)-1;
	return win_gpa[w] + (va & (DUNE_WINDOW_SIZE - 1));
}

void *__dune_pa_to_va_slow(physaddr_t pa)
{
	return (void *)dune_layout_pa_to_va(pa);
}

uintptr_t dune_layout_pa_to_va(physaddr_t pa)
{
	if (dune_layout_identity)
		return pa < DUNE_USER_TOP ? (uintptr_t)pa : 0;
	uint64_t g = pa >> DUNE_WINDOW_SHIFT;
	if (g >= gpa_windows || gpa_win[g] == NO_GPA)
		return 0;
	return (uintptr_t)((gpa_win[g] << DUNE_WINDOW_SHIFT) + (pa & (DUNE_WINDOW_SIZE - 1)));
}
