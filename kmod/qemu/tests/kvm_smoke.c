// kvm_smoke: proves the QEMU guest can run KVM (kvm-amd on TCG's emulated SVM + NPT).
//
// Creates a VM with one page of guest memory holding three real-mode instructions
//   mov $42, %al ; out %al, $0x10 ; hlt
// runs its vCPU and checks that KVM reports exactly the port write of 42 and then the HLT.
// Exit status 0 on success, 1 with a one-line reason otherwise.
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define GUEST_BASE 0x1000u
#define PORT 0x10u

static int fail(const char *what) {
  fprintf(stderr, "kvm_smoke: %s: %s\n", what, errno ? strerror(errno) : "unexpected");
  return 1;
}

int main(void) {
  static const uint8_t code[] = {0xb0, 42, 0xe6, PORT, 0xf4};
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) return fail("open /dev/kvm");
  if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) return fail("KVM API version");
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) return fail("KVM_CREATE_VM");

  uint8_t *mem = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return fail("mmap guest memory");
  memcpy(mem, code, sizeof(code));
  struct kvm_userspace_memory_region region = {
      .slot = 0, .guest_phys_addr = GUEST_BASE, .memory_size = 0x1000,
      .userspace_addr = (uintptr_t)mem};
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) return fail("set memory region");

  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) return fail("KVM_CREATE_VCPU");
  int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size < (int)sizeof(struct kvm_run)) return fail("KVM_GET_VCPU_MMAP_SIZE");
  struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) return fail("mmap kvm_run");

  struct kvm_sregs sregs;
  if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) return fail("KVM_GET_SREGS");
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) return fail("KVM_SET_SREGS");
  struct kvm_regs regs = {.rip = GUEST_BASE, .rflags = 0x2};
  if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) return fail("KVM_SET_REGS");

  int saw_out = 0;
  for (int i = 0; i < 16; i++) {
    if (ioctl(vcpu, KVM_RUN, 0) < 0) return fail("KVM_RUN");
    switch (run->exit_reason) {
      case KVM_EXIT_IO: {
        uint8_t value = *((uint8_t *)run + run->io.data_offset);
        if (run->io.direction != KVM_EXIT_IO_OUT || run->io.port != PORT || run->io.size != 1 ||
            value != 42) {
          fprintf(stderr, "kvm_smoke: unexpected I/O exit: port %#x size %u value %u\n",
                  run->io.port, run->io.size, value);
          return 1;
        }
        saw_out = 1;
        break;
      }
      case KVM_EXIT_HLT:
        if (!saw_out) {
          fprintf(stderr, "kvm_smoke: HLT before the port write\n");
          return 1;
        }
        printf("kvm_smoke: guest wrote 42 to port %#x and halted\n", PORT);
        return 0;
      default:
        fprintf(stderr, "kvm_smoke: unexpected exit reason %u\n", run->exit_reason);
        return 1;
    }
  }
  fprintf(stderr, "kvm_smoke: guest did not halt\n");
  return 1;
}
