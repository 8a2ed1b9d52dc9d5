#include "dune_test.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <cstdlib>
#include <unistd.h>

#include <cstring>

bool dune_test_kvm_usable(std::string *why) {
  int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    *why = std::string("no usable /dev/kvm on this machine: ") + strerror(errno);
    return false;
  }
  close(fd);
  return true;
}

int dune_test_run_child(const std::function<int()> &fn, std::string *out) {
  int p[2];
  if (pipe(p) < 0) return -1;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    close(p[0]);
    dup2(p[1], 1);
    dup2(p[1], 2);
    _exit(fn());
  }
  close(p[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0)
    if (out) out->append(buf, static_cast<size_t>(n));
  close(p[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

int dune_test_rerun_fresh(std::string *out) {
  if (dune_backend() == DUNE_BACKEND_NONE && !dune_in_dune_mode()) return 0;
  if (getenv("DUNE_TEST_FRESH")) {
    ADD_FAILURE() << "libdune is initialized even in a fresh run of this test";
    return 1;
  }
  const auto *info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string filter =
      std::string("--gtest_filter=") + info->test_suite_name() + "." + info->name();
  int st = dune_test_run_child(
      [&] {
        setenv("DUNE_TEST_FRESH", "1", 1);
        execl("/proc/self/exe", "fresh", filter.c_str(), static_cast<char *>(nullptr));
        return 127;
      },
      out);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "fresh run of " << filter << ":\n"
                                                      << *out;
  if (out->find("[  SKIPPED ]") != std::string::npos && out->find("1 test, listed below") !=
                                                             std::string::npos)
    return 2;
  return 1;
}

std::string dune_test_tmpfile(const char *tag) {
  return std::string("/tmp/dunegc-") + tag + "-" + std::to_string(getpid());
}
