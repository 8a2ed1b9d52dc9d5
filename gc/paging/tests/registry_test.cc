// Backends by name: probed, opened only when they work, refused with a reason otherwise.
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>

#include "backend_fixture.h"

namespace dunegc::paging::test {
namespace {

TEST(Registry, KnowsEveryBackend) {
  EXPECT_EQ(backend_names(),
            (std::vector<std::string>{"mprotect", "uffd", "uffd-sigbus", "softdirty", "dune"}));
}

TEST(Registry, UnknownNameIsRefusedWithTheKnownNames) {
  BackendInfo info = probe("nope");
  EXPECT_FALSE(info.supported);
  EXPECT_EQ(info.why, "unknown backend 'nope' (known: mprotect uffd uffd-sigbus softdirty dune)");
  std::string why;
  EXPECT_EQ(open("nope", &why), nullptr);
  EXPECT_EQ(why, info.why);
}

TEST(Registry, OpensExactlyTheBackendsTheProbeAccepts) {
  for (const std::string &name : backend_names()) {
    BackendInfo info = probe(name);
    std::string why;
    std::unique_ptr<Backend> b = open(name, &why);
    EXPECT_EQ(b != nullptr, info.supported) << name << ": " << why;
    printf("backend %s: %s%s\n", name.c_str(),
           info.supported ? "supported" : "unsupported: ", info.why.c_str());
    if (b) {
      EXPECT_EQ(b->name(), name);
      EXPECT_TRUE(info.why.empty());
    } else {
      EXPECT_FALSE(info.why.empty()) << name;
      EXPECT_EQ(why, info.why);
    }
  }
}

// An oracle independent of the backend: does this kernel set pagemap bit 55 on a write
// after clear_refs=4? softdirty must be supported exactly when it does.
TEST(Registry, SoftdirtyIsSupportedExactlyWhenTheKernelTracksSoftDirty) {
  auto *m = static_cast<volatile char *>(
      mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(m, MAP_FAILED);
  madvise(const_cast<char *>(m), kPageSize, MADV_NOHUGEPAGE);
  m[0] = 1;
  int cr = ::open("/proc/self/clear_refs", O_WRONLY), pm = ::open("/proc/self/pagemap", O_RDONLY);
  ASSERT_GE(cr, 0);
  ASSERT_GE(pm, 0);
  ASSERT_EQ(write(cr, "4", 1), 1);
  m[0] = 2;
  uint64_t e = 0;
  ASSERT_EQ(pread(pm, &e, 8, off_t(reinterpret_cast<uintptr_t>(m) / kPageSize * 8)), 8);
  close(cr);
  close(pm);
  bool kernel_tracks = (e >> 55) & 1;
  BackendInfo info = probe("softdirty");
  EXPECT_EQ(info.supported, kernel_tracks) << info.why;
  if (!kernel_tracks) {
    EXPECT_NE(info.why.find("bit 55"), std::string::npos) << info.why;
  }
  printf("softdirty on this kernel: %s\n", info.supported ? "supported" : info.why.c_str());
}

// With userfaultfd(2) forbidden (as a seccomp sandbox or an old kernel would), both uffd
// backends must say so and refuse to open; mprotect is unaffected. Probes are cached per
// process, so this needs a process that has not probed yet (ctest runs each case alone).
TEST(Registry, UffdIsRefusedWhereUserfaultfdIsForbidden) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_userfaultfd, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{static_cast<unsigned short>(std::size(filter)), filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
      _exit(10);
    BackendInfo info = probe("uffd");
    std::string why;
    bool ok = !info.supported && info.why.find("userfaultfd(2) failed") != std::string::npos &&
              !open("uffd", &why) && why == info.why && !open("uffd-sigbus", &why) &&
              why == info.why && open("mprotect", &why) != nullptr;
    fprintf(stderr, "child: uffd probe says: %s\n", info.why.c_str());
    _exit(ok ? 0 : 11);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(Names, AreStable) {
  EXPECT_STREQ(prot_name(Prot::none), "none");
  EXPECT_STREQ(prot_name(Prot::read), "r");
  EXPECT_STREQ(prot_name(Prot::rw), "rw");
  EXPECT_STREQ(prot_name(Prot::rwx), "rwx");
  EXPECT_STREQ(access_name(Access::exec), "exec");
  EXPECT_STREQ(feature_name(Feature::dirty_atomic), "dirty_atomic");
  for (Feature f : kAllFeatures) EXPECT_STRNE(feature_name(f), "?");
}

TEST(PageBitmapTest, SetRangeCountListAndForEach) {
  PageBitmap bm;
  bm.reset(reinterpret_cast<void *>(0x10000), 200);
  EXPECT_EQ(bm.count(), 0u);
  bm.set_range(60, 70);  // crosses two word boundaries
  bm.set(199);
  EXPECT_EQ(bm.count(), 71u);
  EXPECT_FALSE(bm.test(59));
  EXPECT_TRUE(bm.test(60));
  EXPECT_TRUE(bm.test(129));
  EXPECT_FALSE(bm.test(130));
  std::vector<size_t> seen;
  bm.for_each([&](size_t i) { seen.push_back(i); });
  ASSERT_EQ(seen.size(), 71u);
  EXPECT_EQ(seen.front(), 60u);
  EXPECT_EQ(seen.back(), 199u);
  EXPECT_EQ(bm.list().back(), reinterpret_cast<void *>(0x10000 + 199 * kPageSize));
  bm.set_range(0, 200);
  EXPECT_EQ(bm.count(), 200u);
  bm.reset(nullptr, 64);
  EXPECT_EQ(bm.count(), 0u);
}

}  // namespace
}  // namespace dunegc::paging::test
