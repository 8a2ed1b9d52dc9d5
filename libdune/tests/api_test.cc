// The rest of the original API: ELF helpers, procmap, dune_mmap, dune_die, dune_signal,
// Dune ring-3 FS base, x2APIC IPIs, and the red zone of interrupted code.
#include <elf.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <vector>

#include "dune_test.h"

namespace {

int loads;
int count_ph(struct dune_elf *, Elf64_Phdr *ph) {
  loads += ph->p_type == PT_LOAD;
  return 0;
}

bool saw_text;
int find_text(struct dune_elf *, const char *name, int, Elf64_Shdr *sh) {
  if (!strcmp(name, ".text") && sh->sh_size > 0) saw_text = true;
  return 0;
}

TEST(DuneApi, ElfHelpersReadHeaders) {
  struct dune_elf elf;
  memset(&elf, 0, sizeof elf);
  ASSERT_EQ(dune_elf_open(&elf, "/proc/self/exe"), 0);
  EXPECT_EQ(elf.hdr.e_machine, EM_X86_64);
  loads = 0;
  saw_text = false;
  EXPECT_EQ(dune_elf_iter_ph(&elf, count_ph), 0);
  EXPECT_EQ(dune_elf_iter_sh(&elf, find_text), 0);
  EXPECT_GT(loads, 0);
  EXPECT_TRUE(saw_text);
  EXPECT_EQ(dune_elf_close(&elf), 0);
  EXPECT_EQ(dune_elf_open(&elf, "/nonexistent"), -ENOENT);
  char junk[64] = "not an ELF file";
  EXPECT_EQ(dune_elf_open_mem(&elf, junk, sizeof junk), -ENOEXEC);
}

Elf64_Phdr first_load;
int take_first_load(struct dune_elf *, Elf64_Phdr *ph) {
  if (ph->p_type == PT_LOAD && ph->p_filesz > 0) {
    first_load = *ph;
    return 1;
  }
  return 0;
}

TEST(DuneApi, ElfLoadSegmentInDuneMode) {
  DUNE_ENTER_OR_SKIP();
  int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  void *img = mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  ASSERT_NE(img, MAP_FAILED);
  struct dune_elf elf;
  memset(&elf, 0, sizeof elf);
  ASSERT_EQ(dune_elf_open_mem(&elf, img, int(st.st_size)), 0);
  ASSERT_EQ(dune_elf_iter_ph(&elf, take_first_load), 1);
  // Load it somewhere free: a fresh reservation, placed by the kernel.
  size_t span = ((first_load.p_vaddr & 4095) + first_load.p_memsz + 4095) & ~size_t(4095);
  auto *where = static_cast<char *>(mmap(nullptr, span, PROT_NONE,
                                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(where, MAP_FAILED);
  off_t off = reinterpret_cast<uintptr_t>(where) - (first_load.p_vaddr & ~uint64_t(4095));
  ASSERT_EQ(dune_elf_load_ph(&elf, &first_load, off), 0);
  const char *loaded = where + (first_load.p_vaddr & 4095);
  EXPECT_EQ(memcmp(loaded, static_cast<char *>(img) + first_load.p_offset, first_load.p_filesz),
            0);
  dune_elf_close(&elf);
  close(fd);
}

int procmap_entries, procmap_stack;
void on_map(const struct dune_procmap_entry *e) {
  procmap_entries++;
  if (e->type == PROCMAP_TYPE_STACK) procmap_stack++;
}

TEST(DuneApi, ProcmapIterates) {
  procmap_entries = procmap_stack = 0;
  dune_procmap_iterate(on_map);
  EXPECT_GT(procmap_entries, 5);
  EXPECT_EQ(procmap_stack, 1);
}

TEST(DuneApi, DuneMmapIsMappedAtOnce) {
  DUNE_ENTER_OR_SKIP();
  const size_t len = size_t{512} << 20;  // beyond eager mirroring of ordinary mmaps
  auto *p = static_cast<char *>(dune_mmap(nullptr, len, PROT_READ | PROT_WRITE,
                                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  ptent_t *pte;
  ASSERT_EQ(dune_vm_lookup(pgroot, p + len - 4096, CREATE_NONE, &pte), 0);
  EXPECT_TRUE(*pte & PTE_P);
  p[len - 1] = 1;
  struct dune_vcpu_stats before, after;
  ASSERT_EQ(dune_stats_get(dune_vcpu_index(), &before), 0);
  p[len / 2] = 2;
  ASSERT_EQ(dune_stats_get(dune_vcpu_index(), &after), 0);
  EXPECT_EQ(after.lazy_maps, before.lazy_maps);
  munmap(p, len);
}

TEST(DuneApi, DuneDieExitsWithStatusOne) {
  std::string why;
  if (!dune_test_kvm_usable(&why)) GTEST_SKIP() << why;
  int st = dune_test_run_child([] {
    if (dune_init_and_enter()) return 100;
    dune_die();
  });
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1) << st;
}

std::atomic<int> sighandler_calls{0};
void plain_handler(int sig) { sighandler_calls += sig == SIGUSR2; }

TEST(DuneApi, DuneSignalTakesASighandler) {
  DUNE_ENTER_OR_SKIP();
  EXPECT_EQ(dune_signal(SIGUSR2, plain_handler), SIG_DFL);
  kill(getpid(), SIGUSR2);
  EXPECT_EQ(sighandler_calls.load(), 1);
  EXPECT_EQ(dune_signal(SIGUSR2, plain_handler), plain_handler);
  EXPECT_EQ(dune_signal(0, plain_handler), SIG_ERR);
}

// Ring-3 code reading %fs:0, reported through syscall 0xd0e.
extern "C" char fs_blob_start[], fs_blob_end[];
asm(R"(
  .text
  .globl fs_blob_start, fs_blob_end
fs_blob_start:
  mov %fs:0, %rdi
  mov $0xd0e, %eax
  syscall
  ud2
fs_blob_end:
)");

uint64_t fs_seen;
void fs_handler(struct dune_tf *tf) {
  if (tf->rax == 0xd0e) {
    fs_seen = tf->rdi;
    dune_ret_from_user(0);
  }
  dune_passthrough_syscall(tf);
}

TEST(DuneApi, UserFsBaseIsUsedInRingThree) {
  DUNE_ENTER_OR_SKIP();
  auto *code = static_cast<char *>(aligned_alloc(4096, 4096));
  auto *stack = static_cast<char *>(aligned_alloc(4096, 4096));
  auto *tls = static_cast<uint64_t *>(aligned_alloc(4096, 4096));
  tls[0] = 0xfeedface12345678ULL;
  memcpy(code, fs_blob_start, size_t(fs_blob_end - fs_blob_start));
  for (char *p : {code, stack, reinterpret_cast<char *>(tls)})
    ASSERT_EQ(dune_vm_map_phys(pgroot, p, 4096, reinterpret_cast<void *>(dune_va_to_pa(p)),
                               PERM_R | PERM_W | PERM_X | PERM_U),
              0);
  dune_flush_tlb();
  unsigned long kfs = 0;
  syscall(SYS_arch_prctl, 0x1003, &kfs);
  EXPECT_EQ(dune_get_user_fs(), kfs);  // defaults to the thread's own
  dune_set_user_fs(reinterpret_cast<unsigned long>(tls));
  EXPECT_EQ(dune_get_user_fs(), reinterpret_cast<unsigned long>(tls));
  dune_register_syscall_handler(fs_handler);
  struct dune_tf tf;
  memset(&tf, 0, sizeof tf);
  tf.rip = reinterpret_cast<uint64_t>(code);
  tf.rsp = reinterpret_cast<uint64_t>(stack) + 4096 - 64;
  tf.rflags = 0x202;
  ASSERT_EQ(dune_jump_to_user(&tf), 0);
  EXPECT_EQ(fs_seen, 0xfeedface12345678ULL);
  unsigned long kfs_after = 0;
  syscall(SYS_arch_prctl, 0x1003, &kfs_after);
  EXPECT_EQ(kfs_after, kfs);  // Dune ring 0 got its own FS back
  dune_register_syscall_handler(nullptr);
  free(code);
  free(stack);
  free(tls);
}

std::atomic<int> ipis{0};
void on_ipi(struct dune_tf *) {
  ipis++;
  dune_apic_eoi();  // harmless: libdune acknowledged already
}

TEST(DuneApi, X2apicIpiBetweenVcpus) {
  DUNE_ENTER_OR_SKIP();
  EXPECT_EQ(dune_apic_id(), dune_apic_id_for_vcpu(dune_vcpu_index()));
  ASSERT_EQ(dune_register_intr_handler(0x60, on_ipi), 0);
  static std::atomic<int> ready{0}, stop{0};
  static std::atomic<uint32_t> other_apic{0};
  pthread_t t;
  ASSERT_EQ(pthread_create(
                &t, nullptr,
                [](void *) -> void * {
                  if (dune_enter()) return nullptr;
                  other_apic = dune_apic_id();
                  ready = 1;
                  while (!stop.load()) {
                  }
                  return nullptr;
                },
                nullptr),
            0);
  while (!ready.load()) {
  }
  for (int i = 1; i <= 10; i++) {
    dune_apic_send_ipi(0x60, other_apic.load());
    while (ipis.load() < i) {
    }
  }
  stop = 1;
  pthread_join(t, nullptr);
  EXPECT_EQ(ipis.load(), 10);
  dune_register_intr_handler(0x60, nullptr);
}

// The red zone (128 bytes below rsp) of interrupted code survives a handled trap.
uint64_t redzone_out[16];
void noop_bp(struct dune_tf *) {
  char scratch[512];
  memset(scratch, 0x33, sizeof scratch);
  asm volatile("" ::"r"(scratch) : "memory");
}

TEST(DuneApi, RedZoneSurvivesTraps) {
  DUNE_ENTER_OR_SKIP();
  ASSERT_EQ(dune_register_intr_handler(T_BRKPT, noop_bp), 0);
  asm volatile(
      "mov $16, %%ecx\n\t"
      "1: movabs $0x0101010101010101, %%rax\n\t"
      "imul %%rcx, %%rax\n\t"
      "mov %%rax, -136(%%rsp,%%rcx,8)\n\t"  // fills -128..-8(%rsp)
      "loop 1b\n\t"
      "int3\n\t"
      "mov $16, %%ecx\n\t"
      "2: mov -136(%%rsp,%%rcx,8), %%rax\n\t"
      "mov %%rax, -8(%[out],%%rcx,8)\n\t"
      "loop 2b\n\t"
      :
      : [out] "r"(redzone_out)
      : "rax", "rcx", "memory");
  for (uint64_t i = 1; i <= 16; i++) EXPECT_EQ(redzone_out[i - 1], i * 0x0101010101010101ULL);
  dune_register_intr_handler(T_BRKPT, nullptr);
}

}  // namespace
