// Internal: the `dune` backend's probe and factory (dune_backend.cc), for the registry.
#pragma once

#include <memory>
#include <string>

#include "linux_backend.h"  // Probe

namespace dunegc::paging::detail {

// dune_init() (process-wide, once), then Dune mode entered on a throwaway thread that
// checks a write sets the hardware dirty bit of its PTE. Never changes the caller's mode.
const Probe &probe_dune();
// Enters Dune mode in the calling thread and takes libdune's page-fault handler slot.
std::unique_ptr<Backend> make_dune(std::string *why);
// prepare_thread()'s part: enter Dune mode if a dune backend is open. 0 or -errno.
int dune_prepare_thread();

}  // namespace dunegc::paging::detail
