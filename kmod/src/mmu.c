// SPDX-License-Identifier: GPL-2.0
/*
 * mmu.c - the nested MMU: the guest-physical layout of a Dune process, the nested page
 * table that mirrors the process's address space on demand, and the MMU notifier that
 * keeps the two coherent.
 *
 * Guest-physical memory is the process's own virtual memory, seen through three windows
 * (struct dune_layout): identity below phys_limit - 64 GiB, then 63 GiB onto the mmap area,
 * then 1 GiB onto the stack. A nested page fault at a guest-physical address is resolved by
 * pinning the page behind the matching host-virtual address with get_user_pages() on the
 * process's mm -- so the guest can only ever reach memory the process has mapped, with at
 * most the access the process has -- and installing a 4 KiB leaf that holds that page
 * reference. Whenever Linux changes the process's page tables (munmap, COW, migration,
 * reclaim, mprotect) the notifier zaps the affected leaves, drops the references, and makes
 * every CPU running this process's guest flush its TLB before Linux proceeds.
 *
 * The entry bit layout comes from the vendor (AMD NPT entries are ordinary x86 page-table
 * entries; Intel EPT entries would differ); the walk is the same four or five levels as
 * the host's paging mode.
 */
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/smp.h>

#include "core.h"

#define PT_ADDR_MASK GENMASK_ULL(51, 12)
#define PT_SHIFT(level) (PAGE_SHIFT + 9 * (level))
#define PT_INDEX(gpa, level) (((gpa) >> PT_SHIFT(level)) & 511)
#define BAD_HVA (~0UL)

static inline const struct dune_pt_format *fmt(void)
{
	return dune_vendor->pt;
}

static inline u64 *pt_table(u64 entry)
{
	return __va(entry & PT_ADDR_MASK);
}

/* --- the guest-physical layout ---------------------------------------------------------- */

static unsigned int gpa_bits(int levels)
{
	/* The nested walk has the host's depth: it cannot reach past 48 (57) bits. */
	return min_t(unsigned int, boot_cpu_data.x86_phys_bits, PT_SHIFT(levels));
}

static int host_levels(void)
{
	return pgtable_l5_enabled() ? 5 : 4;
}

void dune_layout_of(struct mm_struct *mm, struct dune_layout *layout)
{
	layout->phys_limit = 1UL << gpa_bits(host_levels());
	layout->base_map = LG_ALIGN(mm->mmap_base) - GPA_MAP_SIZE;
	layout->base_stack = LG_ALIGN(mm->start_stack) - GPA_STACK_SIZE;
}

struct window {
	u64 gpa;
	unsigned long hva;
	u64 size;
};

static void windows(const struct dune_vm *vm, struct window w[3])
{
	u64 map_gpa = vm->phys_limit - GPA_STACK_SIZE - GPA_MAP_SIZE;

	w[0] = (struct window){ .gpa = 0, .hva = 0, .size = map_gpa };
	w[1] = (struct window){ .gpa = map_gpa, .hva = vm->map_hva, .size = GPA_MAP_SIZE };
	w[2] = (struct window){ .gpa = vm->phys_limit - GPA_STACK_SIZE, .hva = vm->stack_hva,
				.size = GPA_STACK_SIZE };
}

static unsigned long gpa_to_hva(const struct dune_vm *vm, u64 gpa)
{
	struct window w[3];
	int i;

	windows(vm, w);
	for (i = 0; i < 3; i++)
		if (gpa >= w[i].gpa && gpa - w[i].gpa < w[i].size)
			return w[i].hva + (gpa - w[i].gpa);
	return BAD_HVA;
}

/* --- walking the nested page table ------------------------------------------------------ */

/* Called for each present leaf in a range; returns true when it changed something. */
typedef bool (*leaf_fn)(u64 *entry, void *arg);

static bool walk(u64 *table, int level, u64 base, u64 start, u64 end, leaf_fn fn, void *arg)
{
	u64 span = 1ULL << PT_SHIFT(level);
	u64 first = (start - base) >> PT_SHIFT(level);
	u64 last = (end - 1 - base) >> PT_SHIFT(level);
	bool changed = false;
	u64 i;

	for (i = first; i <= last; i++) {
		u64 lo = base + i * span;

		if (!(table[i] & fmt()->present))
			continue;
		if (level == 0)
			changed |= fn(&table[i], arg);
		else
			changed |= walk(pt_table(table[i]), level - 1, lo, max(start, lo),
					min(end, lo + span), fn, arg);
	}
	return changed;
}

static bool walk_gpa(struct dune_vm *vm, u64 start, u64 end, leaf_fn fn, void *arg)
{
	lockdep_assert_held(&vm->lock);
	end = min_t(u64, end, vm->phys_limit);
	if (start >= end || vm->dead)
		return false;
	return walk(vm->root, vm->levels - 1, 0, start, end, fn, arg);
}

/* Applies fn to the leaves that mirror host-virtual [start, end), in every window. */
static bool walk_hva(struct dune_vm *vm, unsigned long start, unsigned long end, leaf_fn fn,
		     void *arg)
{
	struct window w[3];
	bool changed = false;
	int i;

	windows(vm, w);
	for (i = 0; i < 3; i++) {
		unsigned long lo = max(start, w[i].hva);
		unsigned long hi = min_t(unsigned long, end, w[i].hva + w[i].size);

		if (lo < hi)
			changed |= walk_gpa(vm, w[i].gpa + (lo - w[i].hva),
					    w[i].gpa + (hi - w[i].hva), fn, arg);
	}
	return changed;
}

static bool zap_leaf(u64 *entry, void *arg)
{
	u64 old = *entry;

	WRITE_ONCE(*entry, 0);
	if (!(old & fmt()->sw_nopage)) {
		put_page(pfn_to_page((old & PT_ADDR_MASK) >> PAGE_SHIFT));
		atomic_long_dec(&dune_counts.pinned);
	}
	return true;
}

static bool clear_young_leaf(u64 *entry, void *arg)
{
	if (!(*entry & fmt()->accessed))
		return false;
	WRITE_ONCE(*entry, *entry & ~fmt()->accessed);
	return true;
}

static bool test_young_leaf(u64 *entry, void *arg)
{
	return *entry & fmt()->accessed;
}

/* Zaps every leaf below table and frees the tables themselves. */
static void free_tables(u64 *table, int level)
{
	int i;

	for (i = 0; i < 512; i++) {
		if (!(table[i] & fmt()->present))
			continue;
		if (level == 0) {
			zap_leaf(&table[i], NULL);
		} else {
			free_tables(pt_table(table[i]), level - 1);
			free_page((unsigned long)pt_table(table[i]));
			atomic_long_dec(&dune_counts.tables);
			table[i] = 0;
		}
	}
}

u64 dune_vm_root_pa(struct dune_vm *vm)
{
	return __pa(vm->root);
}

/*
 * After translations went away: no CPU may keep using them once this returns. A CPU is in
 * vm->running, with interrupts off, from just before it reads tlb_gen until just after it
 * leaves guest mode; the IPI therefore completes only after such a CPU has left, and it
 * flushes on its next entry because tlb_gen changed (or it read the new value already).
 */
static void kick_nop(void *unused)
{
}

static void vm_flush(struct dune_vm *vm)
{
	atomic64_inc(&vm->tlb_gen);
	smp_mb__after_atomic();
	preempt_disable();
	smp_call_function_many(vm->running, kick_nop, NULL, true);
	preempt_enable();
}

/* --- faults ----------------------------------------------------------------------------- */

static int topup_cache(struct dune_vcpu *v)
{
	while (v->pt_cached < v->vm->levels - 1) {
		void *page = (void *)get_zeroed_page(GFP_KERNEL_ACCOUNT);

		if (!page)
			return -ENOMEM;
		v->pt_cache[v->pt_cached++] = page;
	}
	return 0;
}

void dune_mmu_drop_cache(struct dune_vcpu *v)
{
	while (v->pt_cached)
		free_page((unsigned long)v->pt_cache[--v->pt_cached]);
}

static u64 *walk_create(struct dune_vcpu *v, u64 gpa)
{
	struct dune_vm *vm = v->vm;
	u64 *table = vm->root;
	int level;

	for (level = vm->levels - 1; level > 0; level--) {
		u64 *entry = &table[PT_INDEX(gpa, level)];

		if (!(*entry & fmt()->present)) {
			if (WARN_ON_ONCE(!v->pt_cached))
				return NULL;
			WRITE_ONCE(*entry, __pa(v->pt_cache[--v->pt_cached]) | fmt()->table);
			atomic_long_inc(&dune_counts.tables);
		}
		table = pt_table(*entry);
	}
	return &table[PT_INDEX(gpa, 0)];
}

/*
 * A VM_IO / VM_PFNMAP mapping (e.g. the vDSO's vvar page, a device mapping) has no struct
 * pages for get_user_pages(); read its PTE instead (faulting it in first), as KVM does.
 * Nothing pins such frames; the notifier still zaps them with the host's mapping.
 */
static int pfnmap_frame(struct mm_struct *mm, unsigned long hva, bool write, u64 *frame)
{
	unsigned int flags = write ? FAULT_FLAG_WRITE : 0;
	struct vm_area_struct *vma;
	bool unlocked = false;
	spinlock_t *ptl;
	pte_t *ptep, pte;
	int r;

	mmap_read_lock(mm);
again:
	vma = vma_lookup(mm, hva);
	r = -EFAULT;
	if (!vma || !(vma->vm_flags & (VM_IO | VM_PFNMAP)) || !(vma->vm_flags & VM_READ) ||
	    (write && !(vma->vm_flags & VM_WRITE)))
		goto out;
	r = fixup_user_fault(mm, hva, flags, &unlocked);
	if (r)
		goto out;
	if (unlocked) { /* the mmap lock was dropped: the VMA may be another now */
		unlocked = false;
		goto again;
	}
	r = follow_pte(mm, hva, &ptep, &ptl);
	if (r)
		goto out;
	pte = *ptep;
	pte_unmap_unlock(ptep, ptl);
	if (!pte_present(pte) || (write && !pte_write(pte))) {
		r = -EFAULT;
		goto out;
	}
	*frame = (pte_pfn(pte) << PAGE_SHIFT) | fmt()->sw_nopage |
		 (pte_flags(pte) & fmt()->memtype) | (write ? fmt()->writable : 0);
out:
	mmap_read_unlock(mm);
	return r;
}

/*
 * Resolves a nested page fault at gpa. Returns 0 when mapped, -EAGAIN when an invalidation
 * raced with it (the guest simply faults again), -EFAULT when gpa is not memory of the
 * process with the needed access, or another negative errno.
 */
int dune_mmu_fault(struct dune_vcpu *v, u64 gpa, bool write)
{
	struct dune_vm *vm = v->vm;
	unsigned long hva = gpa_to_hva(vm, gpa);
	struct page *page = NULL;
	unsigned long seq;
	u64 frame, *entry, old;
	bool replaced = false;
	long r;

	if (hva == BAD_HVA || hva >= TASK_SIZE_MAX)
		return -EFAULT;
	hva &= PAGE_MASK;
	r = topup_cache(v);
	if (r)
		return r;

	seq = READ_ONCE(vm->inv_seq);
	smp_rmb(); /* read seq before the host page table, as invalidate_range_end writes them */
	r = get_user_pages_unlocked(hva, 1, &page, write ? FOLL_WRITE : 0);
	if (r == 1) {
		frame = ((u64)page_to_pfn(page) << PAGE_SHIFT) | (write ? fmt()->writable : 0);
	} else {
		page = NULL;
		if (r == 0 || r == -EFAULT)
			r = pfnmap_frame(vm->mm, hva, write, &frame);
		if (r)
			return r;
	}
	frame |= fmt()->leaf;

	spin_lock(&vm->lock);
	if (vm->dead || vm->inv_count || vm->inv_seq != seq) {
		spin_unlock(&vm->lock);
		if (page)
			put_page(page);
		return -EAGAIN;
	}
	entry = walk_create(v, gpa);
	if (!entry) {
		spin_unlock(&vm->lock);
		if (page)
			put_page(page);
		return -ENOMEM;
	}
	old = *entry;
	if (old & fmt()->present) {
		replaced = (old & PT_ADDR_MASK) != (frame & PT_ADDR_MASK);
		zap_leaf(entry, NULL);
	}
	WRITE_ONCE(*entry, frame);
	if (page)
		atomic_long_inc(&dune_counts.pinned);
	spin_unlock(&vm->lock);
	if (replaced)
		vm_flush(vm);
	return 0;
}

/* --- the MMU notifier: one per mm, and it is the struct dune_vm ----------------------- */

static inline struct dune_vm *to_vm(struct mmu_notifier *mn)
{
	return container_of(mn, struct dune_vm, mn);
}

static struct mmu_notifier *vm_alloc(struct mm_struct *mm)
{
	struct dune_layout layout;
	struct dune_vm *vm = kzalloc(sizeof(*vm), GFP_KERNEL_ACCOUNT);

	if (!vm)
		return ERR_PTR(-ENOMEM);
	vm->root = (u64 *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	if (!vm->root || !zalloc_cpumask_var(&vm->running, GFP_KERNEL)) {
		free_page((unsigned long)vm->root);
		kfree(vm);
		return ERR_PTR(-ENOMEM);
	}
	vm->mm = mm;
	vm->levels = host_levels();
	dune_layout_of(mm, &layout);
	vm->phys_limit = layout.phys_limit;
	vm->map_hva = layout.base_map;
	vm->stack_hva = layout.base_stack;
	spin_lock_init(&vm->lock);
	INIT_LIST_HEAD(&vm->vcpus);
	atomic_long_inc(&dune_counts.vms);
	return &vm->mn;
}

/* After the last put, once no notifier callback can still be running (SRCU). */
static void vm_free(struct mmu_notifier *mn)
{
	struct dune_vm *vm = to_vm(mn);

	WARN_ON_ONCE(!list_empty(&vm->vcpus));
	free_tables(vm->root, vm->levels - 1);
	free_page((unsigned long)vm->root);
	free_cpumask_var(vm->running);
	kfree(vm);
	atomic_long_dec(&dune_counts.vms);
}

static int vm_invalidate_start(struct mmu_notifier *mn, const struct mmu_notifier_range *range)
{
	struct dune_vm *vm = to_vm(mn);
	bool zapped;

	spin_lock(&vm->lock);
	vm->inv_count++;
	zapped = walk_hva(vm, range->start, range->end, zap_leaf, NULL);
	spin_unlock(&vm->lock);
	if (zapped)
		vm_flush(vm);
	return 0;
}

static void vm_invalidate_end(struct mmu_notifier *mn, const struct mmu_notifier_range *range)
{
	struct dune_vm *vm = to_vm(mn);

	spin_lock(&vm->lock);
	vm->inv_seq++;
	vm->inv_count--;
	spin_unlock(&vm->lock);
}

/* The mm is being torn down (its last user is gone): drop every page at once. */
static void vm_release(struct mmu_notifier *mn, struct mm_struct *mm)
{
	struct dune_vm *vm = to_vm(mn);

	spin_lock(&vm->lock);
	free_tables(vm->root, vm->levels - 1);
	vm->dead = true;
	spin_unlock(&vm->lock);
	vm_flush(vm);
}

/* Page aging: the hardware sets accessed bits in the nested leaves, not in the host PTEs. */
static int vm_clear_flush_young(struct mmu_notifier *mn, struct mm_struct *mm,
				unsigned long start, unsigned long end)
{
	struct dune_vm *vm = to_vm(mn);
	bool young;

	spin_lock(&vm->lock);
	young = walk_hva(vm, start, end, clear_young_leaf, NULL);
	spin_unlock(&vm->lock);
	if (young)
		vm_flush(vm);
	return young;
}

static int vm_clear_young(struct mmu_notifier *mn, struct mm_struct *mm, unsigned long start,
			  unsigned long end)
{
	struct dune_vm *vm = to_vm(mn);
	bool young;

	/* Like KVM: no flush; a stale TLB entry only delays the next accessed bit. */
	spin_lock(&vm->lock);
	young = walk_hva(vm, start, end, clear_young_leaf, NULL);
	spin_unlock(&vm->lock);
	return young;
}

static int vm_test_young(struct mmu_notifier *mn, struct mm_struct *mm, unsigned long address)
{
	struct dune_vm *vm = to_vm(mn);
	bool young;

	spin_lock(&vm->lock);
	young = walk_hva(vm, address, address + PAGE_SIZE, test_young_leaf, NULL);
	spin_unlock(&vm->lock);
	return young;
}

static const struct mmu_notifier_ops dune_mn_ops = {
	.release = vm_release,
	.clear_flush_young = vm_clear_flush_young,
	.clear_young = vm_clear_young,
	.test_young = vm_test_young,
	.invalidate_range_start = vm_invalidate_start,
	.invalidate_range_end = vm_invalidate_end,
	.alloc_notifier = vm_alloc,
	.free_notifier = vm_free,
};

/* The process's vm, created on first use; one reference per call. */
struct dune_vm *dune_vm_get(struct mm_struct *mm)
{
	struct mmu_notifier *mn = mmu_notifier_get(&dune_mn_ops, mm);

	return IS_ERR(mn) ? ERR_CAST(mn) : to_vm(mn);
}

void dune_vm_put(struct dune_vm *vm)
{
	mmu_notifier_put(&vm->mn);
}

/* Module exit: wait until every vm_free() queued by dune_vm_put() has run. */
void dune_mmu_synchronize(void)
{
	mmu_notifier_synchronize();
}
