// The registry: backend names, probing, opening; and the names of the enums.
#include <string>

#include "dune_backend.h"
#include "linux_backend.h"

namespace dunegc::paging {

namespace {

struct Entry {
  const char *name;
  const detail::Probe &(*probe)();
  std::unique_ptr<Backend> (*make)(std::string *why);
};

// `uffd` and `uffd-sigbus` differ only in how a trap reaches the fault handler (handler
// thread vs. SIGBUS on the faulting thread); see docs/paging.md for why both exist.
const Entry kEntries[] = {
    {"mprotect", detail::probe_mprotect, detail::make_mprotect},
    {"uffd", detail::probe_uffd, [](std::string *why) { return detail::make_uffd(false, why); }},
    {"uffd-sigbus", detail::probe_uffd,
     [](std::string *why) { return detail::make_uffd(true, why); }},
    {"softdirty", detail::probe_softdirty, detail::make_softdirty},
    {"dune", detail::probe_dune, detail::make_dune},
};

const Entry *find(std::string_view name) {
  for (const Entry &e : kEntries)
    if (name == e.name) return &e;
  return nullptr;
}

std::string unknown(std::string_view name) {
  std::string why = "unknown backend '" + std::string(name) + "' (known:";
  for (const Entry &e : kEntries) why += std::string(" ") + e.name;
  return why + ")";
}

}  // namespace

std::vector<std::string> backend_names() {
  std::vector<std::string> names;
  for (const Entry &e : kEntries) names.emplace_back(e.name);
  return names;
}

BackendInfo probe(std::string_view name) {
  const Entry *e = find(name);
  if (!e) return {std::string(name), false, unknown(name)};
  const detail::Probe &p = e->probe();
  return {e->name, p.ok, p.why};
}

std::unique_ptr<Backend> open(std::string_view name, std::string *why) {
  const Entry *e = find(name);
  if (!e) {
    if (why) *why = unknown(name);
    return nullptr;
  }
  if (!e->probe().ok) {  // never open a backend that its probe refused
    if (why) *why = e->probe().why;
    return nullptr;
  }
  return e->make(why);
}

const char *prot_name(Prot p) {
  static const char *const names[8] = {"none", "r", "w", "rw", "x", "rx", "wx", "rwx"};
  return names[uint8_t(p) & 7];
}

const char *access_name(Access a) {
  return a == Access::read ? "read" : a == Access::write ? "write" : "exec";
}

const char *feature_name(Feature f) {
  switch (f) {
    case Feature::trap:
      return "trap";
    case Feature::trap_kernel_writes:
      return "trap_kernel_writes";
    case Feature::protect_none:
      return "protect_none";
    case Feature::protect_exec:
      return "protect_exec";
    case Feature::protect_while_tracking:
      return "protect_while_tracking";
    case Feature::dirty:
      return "dirty";
    case Feature::dirty_atomic:
      return "dirty_atomic";
    case Feature::dirty_kernel_writes:
      return "dirty_kernel_writes";
    case Feature::kernel_writes_checked:
      return "kernel_writes_checked";
    case Feature::accessed:
      return "accessed";
    case Feature::map2:
      return "map2";
  }
  return "?";
}

}  // namespace dunegc::paging
