#include "dune_test.h"

#include <fcntl.h>
#include <sys/wait.h>
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

std::string dune_test_tmpfile(const char *tag) {
  return std::string("/tmp/dunegc-") + tag + "-" + std::to_string(getpid());
}
