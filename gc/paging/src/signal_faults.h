// Internal: protection faults delivered as signals (SIGSEGV for mprotect, SIGBUS for
// userfaultfd with UFFD_FEATURE_SIGBUS). One process-wide handler per signal finds the
// region by address and asks its backend; faults outside managed regions, and faults the
// backend declines, go to whatever handler was installed before (ASan's, a runtime's, or
// the default action, which then kills the process as if we had never been there).
#pragma once

namespace dunegc::paging::detail {

// Reference-counted: the first acquire installs the handler (SA_ONSTACK | SA_SIGINFO),
// the last release restores the previous one if nobody has installed over it since.
int signal_faults_acquire(int signo);  // 0 or -errno
void signal_faults_release(int signo);

}  // namespace dunegc::paging::detail
