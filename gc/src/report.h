// Messages to the user: warnings (through the warn handler, kept as the thread's last
// error) and fatal errors (internal invariants broken: print and abort).
#pragma once

#include <cstddef>

namespace dunegc::gc {

// Formats one line, stores it as this thread's last error and passes it to the warn
// handler. Returns the negative errno it is given, so `return fail(-EINVAL, ...)` reads.
int fail(int neg_errno, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Called with the message before fatal() aborts (an API layer's abort callback).
void set_fatal_hook(void (*hook)(const char *msg));
const char *last_error();

}  // namespace dunegc::gc
