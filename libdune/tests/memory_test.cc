// Memory in Dune mode: the guest page table follows host mappings (mmap, munmap, mremap,
// brk, malloc, large lazy regions, other threads' mappings, stack growth), and the page-
// table API: protect/trap/unprotect, A/D bits, aliases, clones and load_cr3.
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <random>
#include <vector>

#include "dune_test.h"

namespace {

TEST(DuneMemory, MmapMunmapAndMallocGrowth) {
  DUNE_ENTER_OR_SKIP();
  // Small, medium and large anonymous mappings made in Dune mode.
  for (size_t len : {size_t{4096}, size_t{3} << 20, size_t{64} << 20}) {
    auto *p = static_cast<unsigned char *>(
        mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(p, MAP_FAILED);
    for (size_t i = 0; i < len; i += 4096) p[i] = static_cast<unsigned char>(i >> 12);
    for (size_t i = 0; i < len; i += 4096) ASSERT_EQ(p[i], static_cast<unsigned char>(i >> 12));
    ASSERT_EQ(munmap(p, len), 0);
  }
  // Re-mapping the same place gives fresh memory, not a stale translation.
  auto *a = static_cast<char *>(
      mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(a, MAP_FAILED);
  a[0] = 1;
  ASSERT_EQ(munmap(a, 8192), 0);
  auto *b = static_cast<char *>(mmap(a, 8192, PROT_READ | PROT_WRITE,
                                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
  ASSERT_EQ(b, a);
  EXPECT_EQ(b[0], 0);
  // malloc growth: many blocks, small (brk/arena) and large (mmap).
  std::mt19937 rng(1);
  std::vector<std::pair<char *, size_t>> blocks;
  for (int i = 0; i < 5000; i++) {
    size_t sz = (i % 100 == 0) ? (1u << 20) + rng() % 100000 : 16 + rng() % 4000;
    char *p = static_cast<char *>(malloc(sz));
    ASSERT_NE(p, nullptr);
    memset(p, i & 0x7f, sz);
    blocks.emplace_back(p, sz);
  }
  for (size_t i = 0; i < blocks.size(); i++) {
    ASSERT_EQ(blocks[i].first[0], static_cast<char>(i & 0x7f));
    ASSERT_EQ(blocks[i].first[blocks[i].second - 1], static_cast<char>(i & 0x7f));
    free(blocks[i].first);
  }
  // mremap growth (realloc of a large block) and brk.
  char *r = static_cast<char *>(malloc(1 << 20));
  memset(r, 3, 1 << 20);
  r = static_cast<char *>(realloc(r, 16 << 20));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r[(1 << 20) - 1], 3);
  r[(16 << 20) - 1] = 4;
  free(r);
  char *brk0 = static_cast<char *>(sbrk(0));
  ASSERT_NE(sbrk(1 << 20), reinterpret_cast<void *>(-1));
  brk0[(1 << 20) - 1] = 9;
  EXPECT_EQ(brk0[(1 << 20) - 1], 9);
  ASSERT_NE(sbrk(-(1 << 20)), reinterpret_cast<void *>(-1));
}

TEST(DuneMemory, LargeReservationsAreFilledOnFirstTouch) {
  DUNE_ENTER_OR_SKIP();
  const size_t len = size_t{8} << 30;  // far beyond eager mirroring; NORESERVE
  auto *p = static_cast<char *>(mmap(nullptr, len, PROT_NONE,
                                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  // Parts become accessible later, as a GC heap grows.
  ASSERT_EQ(mprotect(p + (size_t{3} << 30), size_t{1} << 30, PROT_READ | PROT_WRITE), 0);
  for (size_t off = 0; off < (size_t{1} << 30); off += size_t{64} << 20)
    p[(size_t{3} << 30) + off] = 1;
  ASSERT_EQ(mprotect(p + (size_t{7} << 30), 4096, PROT_READ | PROT_WRITE), 0);
  p[size_t{7} << 30] = 2;
  EXPECT_EQ(p[size_t{7} << 30], 2);
  ASSERT_EQ(munmap(p, len), 0);
}

TEST(DuneMemory, MappingsOfNormalThreadsAreSeen) {
  DUNE_ENTER_OR_SKIP();
  static char *made;
  pthread_t t;
  ASSERT_EQ(pthread_create(
                &t, nullptr,
                [](void *) -> void * {  // a normal-mode thread: its mmap bypasses libdune
                  made = static_cast<char *>(mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE,
                                                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
                  made[12345] = 77;
                  return nullptr;
                },
                nullptr),
            0);
  pthread_join(t, nullptr);
  ASSERT_NE(made, MAP_FAILED);
  EXPECT_EQ(made[12345], 77);
  made[999999] = 1;
}

static int recurse(int n) {
  volatile char pad[4096];
  pad[0] = static_cast<char>(n);
  pad[4095] = pad[0];
  return n ? recurse(n - 1) + pad[4095] % 2 : 0;
}

TEST(DuneMemory, MainStackGrows) {
  DUNE_ENTER_OR_SKIP();
  if (syscall(SYS_gettid) != getpid()) GTEST_SKIP() << "not on the main thread";
  EXPECT_GE(recurse(1500), 0);  // ~6 MiB below the initial stack mapping
}

// protect -> trap -> unprotect, with the exact address and error code every time.
static std::atomic<long> faults{0};
static volatile uintptr_t want_addr;
static volatile uint64_t want_fec;
static std::atomic<long> wrong{0};
static uintptr_t wrong_addr;
static uint64_t wrong_fec;

static void count_pgflt(uintptr_t addr, uint64_t fec, struct dune_tf *tf) {
  (void)tf;
  faults++;
  if ((addr != want_addr || fec != want_fec) && wrong++ == 0) {
    wrong_addr = addr;
    wrong_fec = fec;
  }
  dune_vm_mprotect(pgroot, reinterpret_cast<void *>(addr & ~4095UL), 4096, PERM_R | PERM_W);
}

TEST(DuneMemory, ProtectTrapUnprotectTenThousandTimes) {
  DUNE_ENTER_OR_SKIP();
  auto *page = static_cast<char *>(aligned_alloc(4096, 4 * 4096));
  memset(page, 0, 4 * 4096);
  faults = 0;  // the counters are static: a --gtest_repeat run starts them again
  wrong = 0;
  dune_register_pgflt_handler(count_pgflt);
  for (int i = 0; i < 10000; i++) {
    char *p = page + (i % 4) * 4096;
    int off = (i * 8) % 4096;
    bool write = i % 2;
    ASSERT_EQ(dune_vm_mprotect(pgroot, p, 4096, write ? PERM_R : PERM_NONE), 0);
    want_addr = reinterpret_cast<uintptr_t>(p + off);
    want_fec = write ? (FEC_P | FEC_W) : 0;  // read of a non-present page: no bits
    if (write)
      *reinterpret_cast<volatile long *>(p + off) = i;
    else
      (void)*reinterpret_cast<volatile long *>(p + off);
    ASSERT_EQ(faults.load(), i + 1);
  }
  EXPECT_EQ(wrong.load(), 0) << "first: addr " << std::hex << wrong_addr << " fec " << wrong_fec;
  dune_register_pgflt_handler(nullptr);
}

TEST(DuneMemory, HardwareAccessedAndDirtyBits) {
  DUNE_ENTER_OR_SKIP();
  auto *page = static_cast<volatile char *>(aligned_alloc(4096, 4096));
  page[0] = 1;
  ptent_t *pte;
  ASSERT_EQ(dune_vm_lookup(pgroot, const_cast<char *>(page), CREATE_NORMAL, &pte), 0);
  ASSERT_TRUE(*pte & PTE_P);
  for (int round = 0; round < 3; round++) {
    __atomic_and_fetch(pte, ~(PTE_A | PTE_D), __ATOMIC_SEQ_CST);
    dune_flush_tlb_one(reinterpret_cast<uintptr_t>(page));
    EXPECT_EQ(*pte & (PTE_A | PTE_D), 0u);
    (void)page[100];  // a read sets A only
    EXPECT_TRUE(*pte & PTE_A) << "round " << round;
    EXPECT_FALSE(*pte & PTE_D) << "round " << round;
    page[200] = 2;  // a write sets D
    EXPECT_TRUE(*pte & PTE_D) << "round " << round;
  }
}

TEST(DuneMemory, OnePhysicalPageAtTwoAddresses) {
  DUNE_ENTER_OR_SKIP();
  auto *a = static_cast<char *>(aligned_alloc(4096, 4096));
  auto *b = static_cast<char *>(
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(b, MAP_FAILED);
  // b's guest-virtual page now maps a's guest-physical page, read-only.
  void *pa = reinterpret_cast<void *>(dune_va_to_pa(a));
  ASSERT_EQ(dune_vm_map_phys(pgroot, b, 4096, pa, PERM_R), 0);
  dune_flush_tlb_one(reinterpret_cast<uintptr_t>(b));
  a[10] = 42;
  EXPECT_EQ(b[10], 42);
  a[10] = 43;
  EXPECT_EQ(b[10], 43);
  ptent_t *pa_pte, *pb_pte;
  ASSERT_EQ(dune_vm_lookup(pgroot, a, CREATE_NORMAL, &pa_pte), 0);
  ASSERT_EQ(dune_vm_lookup(pgroot, b, CREATE_NONE, &pb_pte), 0);
  EXPECT_EQ(PTE_ADDR(*pa_pte), PTE_ADDR(*pb_pte));
  EXPECT_TRUE(*pa_pte & PTE_W);
  EXPECT_FALSE(*pb_pte & PTE_W);
  EXPECT_EQ(dune_pa_to_va(dune_va_to_pa(a)), static_cast<void *>(a));
}

// dune_vm_map_phys() over a whole 2 MiB range the mirror holds as one big entry: the
// mapping is made of 4 KiB leaves, so the big entry must be split, not overwritten by a
// leaf the CPU would then walk as a page table. A fresh process: earlier tests leave
// split 2 MiB slots (page-table pages) where the new mapping may land.
TEST(DuneMemory, MapPhysOverAWholeMirrored2MiBEntry) {
  DUNE_FRESH_PROCESS();
  DUNE_ENTER_OR_SKIP();
  const size_t big = size_t{2} << 20;
  auto *raw = static_cast<unsigned char *>(
      mmap(nullptr, size_t{8} << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(raw, MAP_FAILED);
  auto *p = reinterpret_cast<unsigned char *>((reinterpret_cast<uintptr_t>(raw) + big - 1) &
                                              ~(uintptr_t)(big - 1));
  for (size_t o = 0; o < big; o += 4096) p[o] = static_cast<unsigned char>(o >> 12);
  ptent_t *e;
  ASSERT_EQ(dune_vm_lookup(pgroot, p, CREATE_NONE, &e), 0);
  ASSERT_TRUE(*e & PTE_PS) << "the mirror did not map the 2 MiB as one entry";
  ASSERT_EQ(dune_vm_map_phys(pgroot, p, big, reinterpret_cast<void *>(dune_va_to_pa(p)),
                             PERM_R | PERM_W),
            0);
  dune_flush_tlb();
  p[0] = 1;
  EXPECT_EQ(p[0], 1);
  for (size_t o = 4096; o < big; o += 4096)
    ASSERT_EQ(p[o], static_cast<unsigned char>(o >> 12)) << "offset " << o;
  ASSERT_EQ(dune_vm_lookup(pgroot, p + big - 1, CREATE_NONE, &e), 0);
  EXPECT_FALSE(*e & PTE_PS);
  EXPECT_EQ(PTE_ADDR(*e), dune_va_to_pa(p + big - 4096));
  ASSERT_EQ(munmap(raw, size_t{8} << 20), 0);
}

TEST(DuneMemory, ClonedPageTableWithLoadCr3) {
  DUNE_ENTER_OR_SKIP();
  auto *x = static_cast<char *>(aligned_alloc(4096, 4096));
  strcpy(x, "original");
  struct page *pg = dune_page_alloc();
  ASSERT_NE(pg, nullptr);
  ptent_t *clone = dune_vm_clone(pgroot);
  ASSERT_NE(clone, nullptr);
  // In the clone only, x's page is replaced by a pool page.
  ASSERT_EQ(dune_vm_insert_page(clone, x, pg, PERM_R | PERM_W), 0);
  auto *pool_view = static_cast<char *>(dune_pa_to_va(dune_page2pa(pg)));
  strcpy(pool_view, "cloned");
  EXPECT_EQ(dune_vm_lookup_page(clone, x), pg);
  load_cr3(dune_va_to_pa(clone));
  char seen[16];
  memcpy(seen, x, sizeof seen);
  load_cr3(dune_va_to_pa(pgroot));
  EXPECT_STREQ(seen, "cloned");
  EXPECT_STREQ(x, "original");
  dune_vm_free(clone);
}

TEST(DuneMemory, MapPagesAndUnmapLeaveATombstone) {
  DUNE_ENTER_OR_SKIP();
  // An address range nothing on the host maps.
  auto *hole = static_cast<char *>(
      mmap(nullptr, 8 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  ASSERT_NE(hole, MAP_FAILED);
  ASSERT_EQ(dune_vm_map_pages(pgroot, hole, 8 * 4096, PERM_R | PERM_W), 0);
  for (int i = 0; i < 8; i++) hole[i * 4096] = static_cast<char>(i + 1);
  EXPECT_NE(dune_vm_lookup_page(pgroot, hole), nullptr);
  dune_vm_unmap(pgroot, hole, 4096);
  ptent_t *pte;
  ASSERT_EQ(dune_vm_lookup(pgroot, hole, CREATE_NONE, &pte), 0);
  EXPECT_FALSE(*pte & PTE_P);
  EXPECT_TRUE(*pte & PTE_TOMB);
  EXPECT_EQ(hole[4096], 2);
}

// A shootdown: another Dune thread must stop writing through a translation we revoked.
static std::atomic<int> phase{0};
static std::atomic<long> other_faults{0};
static char *shared_page;

static void other_pgflt(uintptr_t addr, uint64_t fec, struct dune_tf *tf) {
  (void)tf;
  if ((fec & FEC_W) && (addr & ~4095UL) == reinterpret_cast<uintptr_t>(shared_page)) {
    other_faults++;
    phase = 3;
    while (phase.load() != 4) {
    }
  }
}

TEST(DuneMemory, ShootdownReachesOtherVcpus) {
  DUNE_ENTER_OR_SKIP();
  shared_page = static_cast<char *>(aligned_alloc(4096, 4096));
  memset(shared_page, 0, 4096);
  phase = 0;  // static, as the handler needs it: a --gtest_repeat run starts it again
  other_faults = 0;
  dune_register_pgflt_handler(other_pgflt);
  pthread_t t;
  ASSERT_EQ(pthread_create(
                &t, nullptr,
                [](void *) -> void * {
                  if (dune_enter()) return nullptr;
                  phase = 1;
                  long i = 0;
                  while (phase.load() < 3) shared_page[i++ % 4096]++;  // keeps the TLB hot
                  return nullptr;
                },
                nullptr),
            0);
  while (phase.load() < 1) {
  }
  ASSERT_EQ(dune_vm_mprotect(pgroot, shared_page, 4096, PERM_R), 0);
  dune_tlb_queue_page(shared_page);
  ASSERT_EQ(dune_tlb_shootdown(), 0);
  // From here on, the other vCPU cannot write without faulting.
  while (phase.load() < 3) {
  }
  EXPECT_EQ(other_faults.load(), 1);
  ASSERT_EQ(dune_vm_mprotect(pgroot, shared_page, 4096, PERM_R | PERM_W), 0);
  dune_tlb_queue_page(shared_page);
  ASSERT_EQ(dune_tlb_shootdown(), 0);
  phase = 4;
  pthread_join(t, nullptr);
  dune_register_pgflt_handler(nullptr);
  struct dune_vcpu_stats s;
  ASSERT_EQ(dune_stats_get(0, &s), 0);
  EXPECT_GE(s.shootdowns_sent, 1u);
}

// Many Dune threads map, touch and unmap memory at once: every munmap is a shootdown
// round that interrupts the others, and the host reuses freed ranges for the next mmap
// (of this thread or another) while the page table follows.
static void *churn_thread(void *arg) {
  auto *ok = static_cast<std::atomic<int> *>(arg);
  if (dune_enter()) return nullptr;
  for (int i = 0; i < 150; i++) {
    size_t len = (size_t)(1 + i % 7) * 64 * 1024;
    auto *p = static_cast<unsigned char *>(
        mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (p == MAP_FAILED) return nullptr;
    for (size_t o = 0; o < len; o += 4096) p[o] = static_cast<unsigned char>(i + o / 4096);
    for (size_t o = 0; o < len; o += 4096)
      if (p[o] != static_cast<unsigned char>(i + o / 4096)) return nullptr;
    if (i % 3 == 0 && mprotect(p, 4096, PROT_READ) != 0) return nullptr;
    if (munmap(p, len) != 0) return nullptr;
  }
  ok->fetch_add(1);
  return nullptr;
}

TEST(DuneMemory, ManyThreadsMapAndUnmapAtOnce) {
  DUNE_ENTER_OR_SKIP();
  std::atomic<int> ok{0};
  pthread_t th[6];
  for (auto &t : th) ASSERT_EQ(pthread_create(&t, nullptr, churn_thread, &ok), 0);
  for (auto &t : th) ASSERT_EQ(pthread_join(t, nullptr), 0);
  EXPECT_EQ(ok.load(), 6);
}

TEST(DuneMemory, CompressedGuestPhysicalLayout) {
  DUNE_FRESH_PROCESS();
  std::string why;
  if (!dune_test_kvm_usable(&why)) GTEST_SKIP() << why;
  std::string out;
  int st = dune_test_run_child(
      [] {
        setenv("DUNE_LAYOUT", "compressed", 1);  // as if MAXPHYADDR were below 48 bits
        if (dune_init_and_enter()) return 2;
        if (dune_layout_identity) return 3;
        auto *p = static_cast<char *>(malloc(1 << 20));
        memset(p, 7, 1 << 20);
        auto *m = static_cast<char *>(mmap(nullptr, 64 << 20, PROT_READ | PROT_WRITE,
                                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        m[(64 << 20) - 1] = 1;
        if (dune_va_to_pa(p) == reinterpret_cast<uintptr_t>(p)) return 4;
        if (dune_pa_to_va(dune_va_to_pa(p)) != p) return 5;
        for (int i = 0; i < 1000; i++) getpid();
        return p[12345] == 7 ? 0 : 6;
      },
      &out);
  ASSERT_TRUE(WIFEXITED(st)) << out;
  EXPECT_EQ(WEXITSTATUS(st), 0) << out;
}

}  // namespace
