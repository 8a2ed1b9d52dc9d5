#include "dune_platform.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

TEST(Platform, NoneExactlyWhenNoKvmDevice) {
  int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  bool have_kvm = fd >= 0;
  if (fd >= 0) close(fd);
  bool have_dune = access("/dev/dune", F_OK) == 0;
  char why[160] = {};
  enum dune_virt v = dune_detect_virt(why, sizeof why);
  EXPECT_EQ(v == DUNE_VIRT_NONE, !have_kvm && !have_dune) << why;
  EXPECT_GT(strlen(why), 10u);
}

TEST(Platform, PvmModuleMeansPvm) {
  if (access("/sys/module/kvm_pvm", F_OK) != 0) GTEST_SKIP() << "kvm_pvm not loaded here";
  if (access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "no usable /dev/kvm";
  EXPECT_EQ(dune_detect_virt(nullptr, 0), DUNE_VIRT_PVM);
}

TEST(Platform, NamesAreTheFourTags) {
  EXPECT_STREQ(dune_virt_name(DUNE_VIRT_NONE), "none");
  EXPECT_STREQ(dune_virt_name(DUNE_VIRT_HW), "hw");
  EXPECT_STREQ(dune_virt_name(DUNE_VIRT_PVM), "pvm");
  EXPECT_STREQ(dune_virt_name(DUNE_VIRT_TCG), "tcg");
}

TEST(Platform, InfoIsFilledAndIdIsFileNameSafe) {
  struct dune_platform_info p;
  dune_platform_info(&p);
  EXPECT_GT(strlen(p.cpu_vendor), 0u);
  EXPECT_GT(strlen(p.kernel), 0u);
  EXPECT_GE(p.ncpus, 1);
  std::string id = p.id;
  EXPECT_EQ(id.rfind(dune_virt_name(p.virt), 0), 0u) << id;
  for (char c : id) EXPECT_TRUE(isalnum((unsigned char)c) || c == '-' || c == '_') << id;
}

TEST(Platform, JsonFitsAndIsAnObject) {
  char buf[1024];
  int n = dune_platform_json(buf, sizeof buf);
  ASSERT_LT(n, (int)sizeof buf);
  ASSERT_EQ((int)strlen(buf), n);
  EXPECT_EQ(buf[0], '{');
  EXPECT_EQ(buf[n - 1], '}');
  EXPECT_NE(std::string(buf).find("\"virt\": \""), std::string::npos);
  // A buffer too small is reported by the return value, never overrun.
  char small[16];
  memset(small, 'x', sizeof small);
  EXPECT_EQ(dune_platform_json(small, 8), n);
  EXPECT_EQ(small[7], '\0');
  EXPECT_EQ(small[8], 'x');
}
