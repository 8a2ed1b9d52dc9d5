// Internal: the parts of the Linux ABI newer than the installed 6.1 headers, written out
// from include/uapi/linux/userfaultfd.h and include/uapi/linux/fs.h (Linux 6.7+). Whether
// the running kernel has them is decided at run time by the probe, never by these defines.
#pragma once

#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#include <cstdint>

namespace dunegc::paging::uffd_abi {

// userfaultfd(2) flag (5.11+): only faults from user mode; lets an unprivileged process
// use userfaultfd when vm.unprivileged_userfaultfd = 0.
inline constexpr int kUserModeOnly = 1;

inline constexpr uint64_t kFeatureSigbus = UFFD_FEATURE_SIGBUS;                        // 4.14
inline constexpr uint64_t kFeatureExactAddress = UFFD_FEATURE_EXACT_ADDRESS;           // 5.18
inline constexpr uint64_t kFeatureWpHugetlbfsShmem = UFFD_FEATURE_WP_HUGETLBFS_SHMEM;  // 5.19
inline constexpr uint64_t kFeatureWpUnpopulated = uint64_t(1) << 13;                   // 6.4
inline constexpr uint64_t kFeatureWpAsync = uint64_t(1) << 15;                         // 6.7

// PAGEMAP_SCAN on /proc/self/pagemap (6.7).
struct PageRegion {
  uint64_t start, end, categories;
};
struct PmScanArg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
inline constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);
inline constexpr uint64_t kPageIsWritten = uint64_t(1) << 1;
inline constexpr uint64_t kScanWpMatching = uint64_t(1) << 0;    // write-protect what matched
inline constexpr uint64_t kScanCheckWpAsync = uint64_t(1) << 1;  // fail on non-WP_ASYNC memory

}  // namespace dunegc::paging::uffd_abi
