// SPDX-License-Identifier: GPL-2.0
/*
 * core.c - /dev/dune: the misc device, its ioctls (the original Dune ABI, dune_ioctl.h),
 * and the life of vms and vcpus.
 *
 * Ownership. An open file keeps a reference on the vm (struct dune_vm, one per mm) of every
 * process that used it, and holds the vcpus parked on it (threads that returned to user
 * mode with DUNE_RET_SIGNAL and will re-enter). A running vcpu belongs to its thread inside
 * DUNE_ENTER, which holds the file. Closing the last reference to the file frees all of it;
 * the open file also holds the module, so `rmmod dune` is refused (EBUSY) while any process
 * has /dev/dune open, and succeeds once they are gone -- killed in any state included.
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/ptrace.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/task_stack.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "core.h"

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Dune: direct access to privileged CPU features for Linux processes (AMD SVM)");

const struct dune_vendor *dune_vendor;
struct dune_counts dune_counts;
static atomic64_t vcpu_serial;

struct vm_ref {
	struct list_head link;
	struct dune_vm *vm;
};

struct dune_file {
	struct mutex lock;
	struct list_head vms;    /* struct vm_ref */
	struct list_head parked; /* struct dune_vcpu */
};

#define GUEST_RFLAGS                                                                       \
	(X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | X86_EFLAGS_ZF | X86_EFLAGS_SF |     \
	 X86_EFLAGS_TF | X86_EFLAGS_IF | X86_EFLAGS_DF | X86_EFLAGS_OF | X86_EFLAGS_IOPL |   \
	 X86_EFLAGS_NT | X86_EFLAGS_AC | X86_EFLAGS_ID)

static void conf_to_vcpu(const struct dune_config *c, struct dune_vcpu *v)
{
	unsigned long *r = v->regs;

	r[DUNE_REG_RAX] = c->rax;
	r[DUNE_REG_RBX] = c->rbx;
	r[DUNE_REG_RCX] = c->rcx;
	r[DUNE_REG_RDX] = c->rdx;
	r[DUNE_REG_RSI] = c->rsi;
	r[DUNE_REG_RDI] = c->rdi;
	r[DUNE_REG_RSP] = c->rsp;
	r[DUNE_REG_RBP] = c->rbp;
	r[DUNE_REG_R8] = c->r8;
	r[DUNE_REG_R9] = c->r9;
	r[DUNE_REG_R10] = c->r10;
	r[DUNE_REG_R11] = c->r11;
	r[DUNE_REG_R12] = c->r12;
	r[DUNE_REG_R13] = c->r13;
	r[DUNE_REG_R14] = c->r14;
	r[DUNE_REG_R15] = c->r15;
	v->rip = c->rip;
	v->rflags = (c->rflags & GUEST_RFLAGS) | X86_EFLAGS_FIXED;
}

static void vcpu_to_conf(const struct dune_vcpu *v, struct dune_config *c)
{
	const unsigned long *r = v->regs;

	c->rax = r[DUNE_REG_RAX];
	c->rbx = r[DUNE_REG_RBX];
	c->rcx = r[DUNE_REG_RCX];
	c->rdx = r[DUNE_REG_RDX];
	c->rsi = r[DUNE_REG_RSI];
	c->rdi = r[DUNE_REG_RDI];
	c->rsp = r[DUNE_REG_RSP];
	c->rbp = r[DUNE_REG_RBP];
	c->r8 = r[DUNE_REG_R8];
	c->r9 = r[DUNE_REG_R9];
	c->r10 = r[DUNE_REG_R10];
	c->r11 = r[DUNE_REG_R11];
	c->r12 = r[DUNE_REG_R12];
	c->r13 = r[DUNE_REG_R13];
	c->r14 = r[DUNE_REG_R14];
	c->r15 = r[DUNE_REG_R15];
	c->rip = v->rip;
	c->rflags = v->rflags;
}

/* --- vcpus ------------------------------------------------------------------------------- */

static struct dune_vcpu *vcpu_create(struct dune_vm *vm, const struct dune_config *conf)
{
	struct dune_vcpu *v = dune_vendor->vcpu_alloc();

	if (!v)
		return ERR_PTR(-ENOMEM);
	v->vm = vm;
	v->tid = current->pid;
	v->serial = atomic64_inc_return(&vcpu_serial);
	v->token = v->serial;
	INIT_LIST_HEAD(&v->park_link);
	conf_to_vcpu(conf, v);
	dune_vendor->vcpu_init(v, conf);
	atomic_long_inc(&dune_counts.vcpus);
	return v;
}

/* For a vcpu that never joined its vm's list. */
static void vcpu_free(struct dune_vcpu *v)
{
	dune_mmu_drop_cache(v);
	dune_vendor->vcpu_free(v);
	atomic_long_dec(&dune_counts.vcpus);
}

static void vcpu_destroy(struct dune_vcpu *v)
{
	spin_lock(&v->vm->lock);
	list_del(&v->vm_link);
	spin_unlock(&v->vm->lock);
	vcpu_free(v);
}

/* Marks v as this thread's running vcpu; -EBUSY if the thread already runs one. */
static int vcpu_start(struct dune_vcpu *v, bool new)
{
	struct dune_vm *vm = v->vm;
	struct dune_vcpu *other;
	int r = 0;

	spin_lock(&vm->lock);
	list_for_each_entry(other, &vm->vcpus, vm_link)
		if (other->running && other->tid == current->pid)
			r = -EBUSY; /* DUNE_ENTER from inside the guest */
	if (!r) {
		if (new)
			list_add(&v->vm_link, &vm->vcpus);
		v->running = true;
	}
	spin_unlock(&vm->lock);
	return r;
}

/* --- the file ---------------------------------------------------------------------------- */

/* Frees parked vcpus of processes that are gone, and drops their vms. df->lock held. */
static void prune(struct dune_file *df)
{
	struct dune_vcpu *v, *vn;
	struct vm_ref *ref, *rn;

	list_for_each_entry_safe(v, vn, &df->parked, park_link) {
		if (READ_ONCE(v->vm->dead)) {
			list_del(&v->park_link);
			vcpu_destroy(v);
		}
	}
	list_for_each_entry_safe(ref, rn, &df->vms, link) {
		if (READ_ONCE(ref->vm->dead)) {
			list_del(&ref->link);
			dune_vm_put(ref->vm);
			kfree(ref);
		}
	}
}

/* The calling process's vm, through this file. */
static struct dune_vm *file_vm(struct dune_file *df)
{
	struct dune_vm *vm;
	struct vm_ref *ref;

	mutex_lock(&df->lock);
	prune(df);
	list_for_each_entry(ref, &df->vms, link) {
		if (ref->vm->mm == current->mm) {
			vm = ref->vm;
			goto out;
		}
	}
	ref = kzalloc(sizeof(*ref), GFP_KERNEL_ACCOUNT);
	vm = ref ? dune_vm_get(current->mm) : ERR_PTR(-ENOMEM);
	if (IS_ERR(vm)) {
		kfree(ref);
		goto out;
	}
	ref->vm = vm;
	list_add(&ref->link, &df->vms);
out:
	mutex_unlock(&df->lock);
	return vm;
}

static struct dune_vcpu *unpark(struct dune_file *df, struct dune_vm *vm, u64 token)
{
	struct dune_vcpu *v, *found = NULL;

	mutex_lock(&df->lock);
	list_for_each_entry(v, &df->parked, park_link) {
		if (v->vm == vm && v->tid == current->pid && (!token || v->token == token)) {
			list_del_init(&v->park_link);
			found = v;
			break;
		}
	}
	mutex_unlock(&df->lock);
	return found;
}

static void park(struct dune_file *df, struct dune_vcpu *v)
{
	mutex_lock(&df->lock);
	list_add(&v->park_link, &df->parked);
	mutex_unlock(&df->lock);
}

/*
 * Before returning with DUNE_RET_SIGNAL: Linux will push a signal frame at the user stack
 * pointer of the ioctl's caller -- which is where the guest's stack began, so the guest's
 * live frames lie below it. Move the user stack pointer below the guest's (and its red
 * zone) when both are in the same host mapping. libdune's entry code reloads RSP from
 * struct dune_config after the ioctl, so it does not notice.
 */
static void protect_guest_stack(const struct dune_vcpu *v)
{
	struct pt_regs *frame = current_pt_regs();
	unsigned long below = (v->regs[DUNE_REG_RSP] - 128) & ~15UL;
	struct vm_area_struct *vma;

	if (v->regs[DUNE_REG_RSP] >= frame->sp || below >= frame->sp)
		return;
	mmap_read_lock(current->mm);
	vma = vma_lookup(current->mm, frame->sp);
	if (vma && below >= vma->vm_start)
		frame->sp = below;
	mmap_read_unlock(current->mm);
}

static long ioctl_enter(struct dune_file *df, struct dune_config __user *uconf)
{
	struct dune_config conf;
	enum dune_outcome out;
	struct dune_vcpu *v;
	struct dune_vm *vm;
	bool resumed;
	long r;

	if (copy_from_user(&conf, uconf, sizeof(conf)))
		return -EFAULT;
	if (!current->mm || (current->flags & (PF_KTHREAD | PF_IO_WORKER)))
		return -EINVAL;
	if (dune_syscalls_blocked()) {
		pr_info_ratelimited("dune: pid %d is under seccomp: Dune mode would bypass its filter\n",
				    current->pid);
		return -EPERM;
	}
	vm = file_vm(df);
	if (IS_ERR(vm))
		return PTR_ERR(vm);

	resumed = conf.vcpu != 0;
	if (resumed) {
		v = unpark(df, vm, conf.vcpu);
		if (!v)
			return -EINVAL; /* no such parked vcpu for this thread */
		conf_to_vcpu(&conf, v);
	} else {
		if ((conf.cr3 & PAGE_MASK) >= vm->phys_limit)
			return -EINVAL;
		/* A fresh entry replaces whatever this thread left parked. */
		while ((v = unpark(df, vm, 0)))
			vcpu_destroy(v);
		v = vcpu_create(vm, &conf);
		if (IS_ERR(v))
			return PTR_ERR(v);
	}
	r = vcpu_start(v, !resumed);
	if (r) {
		if (resumed)
			park(df, v);
		else
			vcpu_free(v);
		return r;
	}

	v->ran = false;
	v->flush_tlb = true;
	out = dune_vcpu_run(v);
	v->running = false;

	if (out == DUNE_OUT_EXEC) { /* the thread now runs a new image: nothing to copy back */
		vcpu_destroy(v);
		return 0;
	}
	if (out == DUNE_OUT_FATAL_SIGNAL) {
		vcpu_destroy(v);
		return -EINTR;
	}
	if (out == DUNE_OUT_NOENTER && !v->ran) { /* nothing happened: fail the call itself */
		r = v->error;
		if (resumed)
			park(df, v);
		else
			vcpu_destroy(v);
		return r;
	}

	vcpu_to_conf(v, &conf);
	conf.vcpu = 0;
	conf.status = 0;
	switch (out) {
	case DUNE_OUT_SIGNAL:
		conf.ret = DUNE_RET_SIGNAL;
		conf.vcpu = v->token;
		protect_guest_stack(v);
		park(df, v);
		break;
	case DUNE_OUT_EXIT:
		conf.ret = DUNE_RET_EXIT;
		conf.status = v->exit_status;
		break;
	case DUNE_OUT_VIOLATION:
		conf.ret = DUNE_RET_EPT_VIOLATION;
		conf.status = v->fault_gpa;
		break;
	case DUNE_OUT_UNHANDLED:
		conf.ret = DUNE_RET_UNHANDLED_VMEXIT;
		conf.status = v->exit_code;
		break;
	default: /* DUNE_OUT_NOENTER after the guest ran */
		conf.ret = DUNE_RET_NOENTER;
		conf.status = v->error;
		break;
	}
	if (out != DUNE_OUT_SIGNAL)
		vcpu_destroy(v);
	return copy_to_user(uconf, &conf, sizeof(conf)) ? -EFAULT : 0;
}

static long ioctl_set_signals(struct dune_file *df, u64 __user *umask)
{
	const u64 allowed = GENMASK_ULL(DUNE_SIGNAL_MAX - 1, 0) &
			    ~(BIT_ULL(SIGKILL - 1) | BIT_ULL(SIGSTOP - 1));
	struct dune_vm *vm;
	u64 mask;

	if (get_user(mask, umask))
		return -EFAULT;
	if (mask & ~allowed)
		return -EINVAL;
	if (!current->mm)
		return -EINVAL;
	vm = file_vm(df);
	if (IS_ERR(vm))
		return PTR_ERR(vm);
	atomic64_set(&vm->sig_mask, mask);
	return 0;
}

static long dune_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct dune_file *df = file->private_data;
	struct dune_layout layout;

	switch (cmd) {
	case DUNE_ENTER:
		return ioctl_enter(df, (struct dune_config __user *)arg);
	case DUNE_GET_SYSCALL:
		return dune_vendor->guest_lstar;
	case DUNE_GET_LAYOUT:
		if (!current->mm)
			return -EINVAL;
		dune_layout_of(current->mm, &layout);
		return copy_to_user((void __user *)arg, &layout, sizeof(layout)) ? -EFAULT : 0;
	case DUNE_SET_SIGNALS:
		return ioctl_set_signals(df, (u64 __user *)arg);
	default:
		return -ENOTTY;
	}
}

static int dune_open(struct inode *inode, struct file *file)
{
	struct dune_file *df = kzalloc(sizeof(*df), GFP_KERNEL_ACCOUNT);

	if (!df)
		return -ENOMEM;
	mutex_init(&df->lock);
	INIT_LIST_HEAD(&df->vms);
	INIT_LIST_HEAD(&df->parked);
	file->private_data = df;
	return 0;
}

static int dune_release(struct inode *inode, struct file *file)
{
	struct dune_file *df = file->private_data;
	struct dune_vcpu *v, *vn;
	struct vm_ref *ref, *rn;

	list_for_each_entry_safe(v, vn, &df->parked, park_link)
		vcpu_destroy(v);
	list_for_each_entry_safe(ref, rn, &df->vms, link) {
		dune_vm_put(ref->vm);
		kfree(ref);
	}
	kfree(df);
	return 0;
}

static const struct file_operations dune_fops = {
	.owner = THIS_MODULE,
	.open = dune_open,
	.release = dune_release,
	.unlocked_ioctl = dune_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice dune_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "dune",
	.fops = &dune_fops,
	.mode = 0600, /* like /dev/kvm: root only unless an administrator grants it */
};

static int __init dune_init(void)
{
	struct dune_layout layout = {};
	int r;

	BUILD_BUG_ON(sizeof(struct dune_config) != 0xb0 || DUNE_ENTER != IOCTL_DUNE_ENTER);
	BUILD_BUG_ON(offsetof(struct dune_config, vcpu) != DUNE_CFG_VCPU);
	r = dune_syscall_init();
	if (r)
		return r;
	dune_vendor = dune_svm_init();
	if (IS_ERR(dune_vendor))
		return PTR_ERR(dune_vendor);
	r = misc_register(&dune_misc);
	if (r) {
		dune_vendor->exit();
		return r;
	}
	if (current->mm)
		dune_layout_of(current->mm, &layout);
	pr_info("dune: /dev/dune ready: %s with nested paging, guest-physical limit %#llx\n",
		dune_vendor->name, layout.phys_limit);
	return 0;
}

static void __exit dune_exit(void)
{
	long vms, vcpus, tables, pinned;

	misc_deregister(&dune_misc);
	dune_mmu_synchronize(); /* vm_free() callbacks still queued by the last puts */
	dune_vendor->exit();
	vms = atomic_long_read(&dune_counts.vms);
	vcpus = atomic_long_read(&dune_counts.vcpus);
	tables = atomic_long_read(&dune_counts.tables);
	pinned = atomic_long_read(&dune_counts.pinned);
	WARN(vms || vcpus || tables || pinned,
	     "dune: unloading with %ld vms, %ld vcpus, %ld nested table pages, %ld pinned pages\n",
	     vms, vcpus, tables, pinned);
}

module_init(dune_init);
module_exit(dune_exit);
