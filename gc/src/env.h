// Settings from the environment (DUNEGC_*, and Boehm's GC_* in gc/bdw).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "report.h"

namespace dunegc::gc {

// A size such as "512M", "2G", "1048576"; 0 when unset, and a warning when malformed.
inline size_t env_size(const char *name) {
  const char *v = getenv(name);
  if (!v || !*v) return 0;
  char *end;
  unsigned long long n = strtoull(v, &end, 10);
  switch (*end) {
    case 'k': case 'K': n <<= 10; end++; break;
    case 'm': case 'M': n <<= 20; end++; break;
    case 'g': case 'G': n <<= 30; end++; break;
    default: break;
  }
  if (*end) {
    warn("ignoring %s=%s: not a size (e.g. 512M)", name, v);
    return 0;
  }
  return size_t(n);
}

// Set, non-empty and not "0".
inline bool env_flag(const char *name) {
  const char *v = getenv(name);
  return v && *v && strcmp(v, "0") != 0;
}

}  // namespace dunegc::gc
