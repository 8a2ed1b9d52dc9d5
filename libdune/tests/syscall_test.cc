// System calls in Dune mode: forwarding, files, processes (fork, vfork, execve), threads,
// exit statuses, and host signals delivered as Dune interrupts.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <set>
#include <vector>

#include "dune_test.h"

extern char **environ;

namespace {

TEST(DuneSyscall, HundredThousandForwardedSyscalls) {
  pid_t pid = getpid();
  pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
  DUNE_ENTER_OR_SKIP();
  long bad = 0;
  for (int i = 0; i < 100000; i++) bad += syscall(SYS_getpid) != pid;
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(syscall(SYS_gettid), tid);  // the same thread, not a proxy
  struct dune_vcpu_stats s;
  ASSERT_EQ(dune_stats_get(0, &s), 0);
  EXPECT_GE(s.exit_syscall, 100000u);
}

TEST(DuneSyscall, FileIo) {
  DUNE_ENTER_OR_SKIP();
  std::string path = dune_test_tmpfile("fileio");
  int fd = open(path.c_str(), O_CREAT | O_TRUNC | O_RDWR, 0600);
  ASSERT_GE(fd, 0) << strerror(errno);
  std::vector<char> data(1 << 20);
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<char>(i * 31 + 7);
  ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, static_cast<off_t>(data.size()));
  ASSERT_EQ(lseek(fd, 4096, SEEK_SET), 4096);
  std::vector<char> back(8192);
  ASSERT_EQ(read(fd, back.data(), back.size()), 8192);
  EXPECT_EQ(memcmp(back.data(), data.data() + 4096, 8192), 0);
  FILE *f = fdopen(fd, "r");  // stdio on top, too
  ASSERT_NE(f, nullptr);
  rewind(f);
  EXPECT_EQ(fgetc(f), data[0] & 0xff);
  fclose(f);
  EXPECT_EQ(unlink(path.c_str()), 0);
  EXPECT_EQ(access(path.c_str(), F_OK), -1);
}

TEST(DuneSyscall, ExitStatusIsPreserved) {
  std::string why;
  if (!dune_test_kvm_usable(&why)) GTEST_SKIP() << why;
  std::string out;
  int st = dune_test_run_child(
      [] {
        if (dune_init_and_enter()) return 100;
        _exit(42);
      },
      &out);
  ASSERT_TRUE(WIFEXITED(st)) << out;
  EXPECT_EQ(WEXITSTATUS(st), 42) << out;
  st = dune_test_run_child([] {
    if (dune_init_and_enter()) return 100;
    return 43;  // through exit() and atexit handlers, in Dune mode
  });
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 43);
}

TEST(DuneSyscall, ForkChildStartsNormalAndReenters) {
  DUNE_ENTER_OR_SKIP();
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(p[0]);
    int before = dune_in_dune_mode();  // normal mode after fork
    int r = dune_enter();
    int after = dune_in_dune_mode();
    pid_t me = getpid();
    char msg[64];
    int n = snprintf(msg, sizeof msg, "%d %d %d %d", before, r, after, me);
    if (write(p[1], msg, n) != n) _exit(3);
    _exit(after && dune_vcpu_index() == 0 ? 7 : 8);
  }
  close(p[1]);
  char buf[64] = {};
  ssize_t n = read(p[0], buf, sizeof buf - 1);
  ASSERT_GT(n, 0);
  int before, r, after, cpid;
  ASSERT_EQ(sscanf(buf, "%d %d %d %d", &before, &r, &after, &cpid), 4) << buf;
  EXPECT_EQ(before, 0);
  EXPECT_EQ(r, 0);
  EXPECT_EQ(after, 1);
  EXPECT_EQ(cpid, child);
  int st;
  ASSERT_EQ(waitpid(child, &st, 0), child);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 7);
  EXPECT_TRUE(dune_in_dune_mode());  // the parent is still in Dune mode
}

TEST(DuneSyscall, ForkChildMayStayNormal) {
  DUNE_ENTER_OR_SKIP();
  static int shared = 5;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    shared = 6;  // copy-on-write
    _exit(dune_in_dune_mode() ? 1 : 9);
  }
  int st;
  ASSERT_EQ(waitpid(child, &st, 0), child);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 9);
  EXPECT_EQ(shared, 5);
}

TEST(DuneSyscall, VforkAndExecve) {
  DUNE_ENTER_OR_SKIP();
  pid_t pid;
  const char *argv[] = {"/bin/sh", "-c", "exit 3", nullptr};
  ASSERT_EQ(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char **>(argv), environ),
            0);  // clone(CLONE_VM | CLONE_VFORK) + execve
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 3);
  pid = vfork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", "exit 4", static_cast<char *>(nullptr));
    _exit(99);
  }
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 4);
  EXPECT_TRUE(dune_in_dune_mode());
  // A failing execve returns an error to Dune code.
  EXPECT_EQ(execl("/nonexistent/prog", "prog", static_cast<char *>(nullptr)), -1);
  EXPECT_EQ(errno, ENOENT);
}

struct ThreadResult {
  int vcpu = -1;
  long sum = 0;
  pid_t tid = 0;
};

static void *dune_thread(void *arg) {
  auto *r = static_cast<ThreadResult *>(arg);
  if (dune_in_dune_mode()) return nullptr;  // new threads start in normal mode
  if (dune_enter() != 0) return nullptr;
  r->vcpu = dune_vcpu_index();
  r->tid = static_cast<pid_t>(syscall(SYS_gettid));
  std::vector<long> v(100000);
  for (size_t i = 0; i < v.size(); i++) v[i] = static_cast<long>(i);
  for (int k = 0; k < 200; k++) r->sum += syscall(SYS_getpid) == getpid();
  for (long x : v) r->sum += x;
  return nullptr;
}

TEST(DuneSyscall, EightThreadsInDuneMode) {
  DUNE_ENTER_OR_SKIP();
  pthread_t th[8];
  ThreadResult res[8];
  for (int i = 0; i < 8; i++) ASSERT_EQ(pthread_create(&th[i], nullptr, dune_thread, &res[i]), 0);
  for (int i = 0; i < 8; i++) ASSERT_EQ(pthread_join(th[i], nullptr), 0);
  std::set<int> vcpus;
  std::set<pid_t> tids;
  const long expect = 200 + 100000L * 99999 / 2;
  for (auto &r : res) {
    EXPECT_GE(r.vcpu, 1);
    EXPECT_EQ(r.sum, expect);
    vcpus.insert(r.vcpu);
    tids.insert(r.tid);
  }
  EXPECT_EQ(tids.size(), 8u);
  EXPECT_GE(dune_stats_vcpus(), 2);
  // Exited Dune threads give their vCPUs back: threads started one after another now
  // create none.
  int made = dune_stats_vcpus();
  for (int i = 0; i < 4; i++) {
    ASSERT_EQ(pthread_create(&th[i], nullptr, dune_thread, &res[i]), 0);
    ASSERT_EQ(pthread_join(th[i], nullptr), 0);
    EXPECT_GE(res[i].vcpu, 1);
  }
  EXPECT_EQ(dune_stats_vcpus(), made);
}

static std::atomic<int> sig_count{0};
static std::atomic<uint64_t> sig_rip{0};
static void on_usr1(struct dune_tf *tf) {
  sig_count++;
  sig_rip = tf->rip;
}

TEST(DuneSyscall, SignalIsHandledBeforeKillReturns) {
  DUNE_ENTER_OR_SKIP();
  ASSERT_EQ(dune_register_signal_handler(SIGUSR1, on_usr1), 0);
  for (int i = 1; i <= 50; i++) {
    ASSERT_EQ(kill(getpid(), SIGUSR1), 0);
    ASSERT_EQ(sig_count.load(), i);  // the interrupt came in before kill() returned
  }
  EXPECT_NE(sig_rip.load(), 0u);
  struct dune_vcpu_stats s;
  ASSERT_EQ(dune_stats_get(0, &s), 0);
  EXPECT_GE(s.signals, 50u);
  EXPECT_EQ(dune_register_signal_handler(SIGKILL, on_usr1), -EINVAL);
  EXPECT_EQ(dune_register_signal_handler(60, on_usr1), -EINVAL);  // 200+60 > 255
  dune_register_signal_handler(SIGUSR1, nullptr);
}

TEST(DuneSyscall, SignalInterruptsBlockingCall) {
  DUNE_ENTER_OR_SKIP();
  sig_count = 0;
  ASSERT_EQ(dune_register_signal_handler(SIGUSR1, on_usr1), 0);
  pthread_t killer;
  pid_t me = static_cast<pid_t>(syscall(SYS_gettid));
  ASSERT_EQ(pthread_create(
                &killer, nullptr,
                [](void *arg) -> void * {
                  usleep(100000);
                  syscall(SYS_tgkill, getpid(), *static_cast<pid_t *>(arg), SIGUSR1);
                  return nullptr;
                },
                &me),
            0);
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  char c;
  EXPECT_EQ(read(p[0], &c, 1), -1);  // nobody writes: only the signal ends it
  EXPECT_EQ(errno, EINTR);
  EXPECT_EQ(sig_count.load(), 1);
  pthread_join(killer, nullptr);
}

// Signals that arrive while the vCPU runs libdune's CPL-0 stubs (the service calls behind
// dune_flush_tlb_one at CPL 3, say) wait until the stub has returned; none is lost.
TEST(DuneSyscall, SignalsDuringServiceCallsAreDelivered) {
  DUNE_ENTER_OR_SKIP();
  sig_count = 0;
  ASSERT_EQ(dune_register_signal_handler(SIGUSR1, on_usr1), 0);
  static std::atomic<int> stop{0};
  stop = 0;
  pthread_t killer;
  pid_t me = static_cast<pid_t>(syscall(SYS_gettid));
  ASSERT_EQ(pthread_create(
                &killer, nullptr,
                [](void *arg) -> void * {
                  for (int i = 0; i < 100; i++) {
                    int before = sig_count.load();
                    syscall(SYS_tgkill, getpid(), *static_cast<pid_t *>(arg), SIGUSR1);
                    while (sig_count.load() == before) usleep(100);
                  }
                  stop = 1;
                  return nullptr;
                },
                &me),
            0);
  static char page[4096] __attribute__((aligned(4096)));
  while (!stop.load()) dune_flush_tlb_one(reinterpret_cast<uintptr_t>(page));
  pthread_join(killer, nullptr);
  EXPECT_EQ(sig_count.load(), 100);
  dune_register_signal_handler(SIGUSR1, nullptr);
}

TEST(DuneSyscall, UnregisteredSignalKeepsItsUsualEffect) {
  std::string why;
  if (!dune_test_kvm_usable(&why)) GTEST_SKIP() << why;
  int st = dune_test_run_child([] {
    if (dune_init_and_enter()) return 100;
    kill(getpid(), SIGTERM);
    return 1;
  });
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM) << st;
  st = dune_test_run_child([] {
    if (dune_init_and_enter()) return 100;
    signal(SIGUSR2, SIG_IGN);
    kill(getpid(), SIGUSR2);
    return 11;
  });
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 11) << st;
}

}  // namespace
