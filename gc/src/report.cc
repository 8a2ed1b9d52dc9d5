#include "report.h"

#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "dunegc/dunegc.h"

namespace dunegc::gc {

namespace {

__thread char t_last_error[256];

void default_warn(const char *msg) {
  char line[300];
  int n = snprintf(line, sizeof line, "dunegc: %s\n", msg);
  if (n > 0) {
    ssize_t w = write(STDERR_FILENO, line, size_t(n) < sizeof line ? size_t(n) : sizeof line - 1);
    (void)w;
  }
}

std::atomic<dunegc_warn_fn> g_warn{&default_warn};
std::atomic<void (*)(const char *)> g_fatal_hook{nullptr};

void vreport(const char *fmt, va_list ap) {
  vsnprintf(t_last_error, sizeof t_last_error, fmt, ap);
  dunegc_warn_fn fn = g_warn.load(std::memory_order_acquire);
  if (fn) fn(t_last_error);
}

}  // namespace

int fail(int neg_errno, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(fmt, ap);
  va_end(ap);
  return neg_errno;
}

void warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(fmt, ap);
  va_end(ap);
}

void fatal(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  default_warn(msg);
  if (auto hook = g_fatal_hook.load(std::memory_order_acquire)) hook(msg);
  abort();
}

void set_fatal_hook(void (*hook)(const char *msg)) { g_fatal_hook.store(hook, std::memory_order_release); }

const char *last_error() { return t_last_error; }

}  // namespace dunegc::gc

extern "C" {

void dunegc_set_warn_handler(dunegc_warn_fn fn) {
  dunegc::gc::g_warn.store(fn ? fn : &dunegc::gc::default_warn, std::memory_order_release);
}
dunegc_warn_fn dunegc_get_warn_handler(void) {
  return dunegc::gc::g_warn.load(std::memory_order_acquire);
}
const char *dunegc_last_error(void) { return dunegc::gc::t_last_error; }

}  // extern "C"
