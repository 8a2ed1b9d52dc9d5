/*
 * dune_coexist_test - /dev/dune beside kvm-amd, run inside QEMU with both loaded.
 *
 * The policy (docs/kmod.md): SVM belongs to whoever is using it on a CPU. While a KVM VM
 * exists, kvm-amd keeps EFER.SVME set on every CPU and Dune refuses to enter (EBUSY; a
 * running Dune thread ends with DUNE_RET_NOENTER, status -EBUSY). Dune sets EFER.SVME only
 * around each VMRUN, so KVM can always start, and works again once the VMs are gone.
 */
#define _GNU_SOURCE
#include "drt.h"
#include "dtest.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

struct kvm_vm {
	int kvm, vm, vcpu;
	uint8_t *mem;
	struct kvm_run *run;
	int run_size;
};

/* A VM whose real-mode guest writes 42 to port 0x10 and halts (as qemu/tests/kvm_smoke.c). */
static void kvm_open(struct kvm_vm *k)
{
	static const uint8_t code[] = { 0xb0, 42, 0xe6, 0x10, 0xf4 };
	struct kvm_userspace_memory_region region;
	struct kvm_sregs sregs;

	k->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	CHECK(k->kvm >= 0);
	k->vm = ioctl(k->kvm, KVM_CREATE_VM, 0); /* kvm-amd enables SVM on every CPU */
	CHECK(k->vm >= 0);
	k->mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(k->mem != MAP_FAILED);
	memcpy(k->mem, code, sizeof(code));
	region = (struct kvm_userspace_memory_region){
		.slot = 0, .guest_phys_addr = 0x1000, .memory_size = 4096,
		.userspace_addr = (uintptr_t)k->mem };
	CHECK_EQ(ioctl(k->vm, KVM_SET_USER_MEMORY_REGION, &region), 0);
	k->vcpu = ioctl(k->vm, KVM_CREATE_VCPU, 0);
	CHECK(k->vcpu >= 0);
	k->run_size = ioctl(k->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	k->run = mmap(NULL, k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, k->vcpu, 0);
	CHECK(k->run != MAP_FAILED);
	CHECK_EQ(ioctl(k->vcpu, KVM_GET_SREGS, &sregs), 0);
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	CHECK_EQ(ioctl(k->vcpu, KVM_SET_SREGS, &sregs), 0);
}

static void kvm_run_guest(struct kvm_vm *k)
{
	struct kvm_regs regs = { .rip = 0x1000, .rflags = 0x2 };

	CHECK_EQ(ioctl(k->vcpu, KVM_SET_REGS, &regs), 0);
	CHECK_EQ(ioctl(k->vcpu, KVM_RUN, 0), 0);
	CHECK_EQ(k->run->exit_reason, KVM_EXIT_IO);
	CHECK_EQ(*((uint8_t *)k->run + k->run->io.data_offset), 42);
	CHECK_EQ(ioctl(k->vcpu, KVM_RUN, 0), 0);
	CHECK_EQ(k->run->exit_reason, KVM_EXIT_HLT);
}

/* Dropping the last reference destroys the VM, and kvm-amd disables SVM again. */
static void kvm_close(struct kvm_vm *k)
{
	CHECK_EQ(munmap(k->run, k->run_size), 0);
	CHECK_EQ(close(k->vcpu), 0);
	CHECK_EQ(close(k->vm), 0);
	CHECK_EQ(close(k->kvm), 0);
	CHECK_EQ(munmap(k->mem, 4096), 0);
}

static void case_kvm_first(void)
{
	struct kvm_vm k;

	CHECK_EQ(drt_init(), 0);
	kvm_open(&k);
	kvm_run_guest(&k);
	CHECK_EQ(drt_enter(), -EBUSY); /* KVM owns SVM: refused, nothing happened */
	CHECK(!drt_in_guest());
	kvm_run_guest(&k); /* and KVM is unharmed */
	kvm_close(&k);
	CHECK_EQ(drt_enter(), 0); /* SVM is free again */
	CHECK_EQ(getpid(), getpid());
}

struct shared {
	volatile int ready;
	volatile long counter;
};

static void case_dune_first(void)
{
	struct shared *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
				 -1, 0);
	struct kvm_vm k;
	int status;
	pid_t pid;

	CHECK(sh != MAP_FAILED);
	pid = fork();
	if (pid == 0) {
		CHECK_EQ(drt_init(), 0);
		CHECK_EQ(drt_enter(), 0);
		sh->ready = 1;
		for (;;)
			sh->counter++;
	}
	while (!sh->ready)
		sched_yield();
	kvm_open(&k); /* KVM can start while a Dune thread runs */
	status = dtest_wait(pid, 0);
	CHECK(EXITED_WITH(status, DRT_STATUS(DUNE_RET_NOENTER))); /* which then stops cleanly */
	kvm_run_guest(&k);
	kvm_close(&k);
	CHECK_EQ(drt_init(), 0);
	CHECK_EQ(drt_enter(), 0);
	CHECK_EQ(getpid(), getpid());
}

static const struct dtest_case cases[] = {
	{ "kvm-first", case_kvm_first, "while a KVM VM exists DUNE_ENTER is EBUSY; then works" },
	{ "dune-first", case_dune_first,
	  "a KVM VM starts beside a running Dune thread, which stops with NOENTER" },
};
DTEST_MAIN(cases)
