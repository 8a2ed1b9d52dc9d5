// Built outside the tree against an installed prefix:
//   c++ prog.cc $(pkg-config --cflags --libs dunegc-paging)   (C++17 or later)
#include <dunegc/paging/paging.h>

#include <cstdio>

int main() {
  for (const std::string &name : dunegc::paging::backend_names()) {
    dunegc::paging::BackendInfo info = dunegc::paging::probe(name);
    std::printf("%s: %s\n", name.c_str(), info.supported ? "supported" : info.why.c_str());
  }
  std::string why;
  auto b = dunegc::paging::open("mprotect", &why);
  void *p = nullptr;
  if (!b || b->map(4096, dunegc::paging::Backing::anonymous, &p) != 0) return 1;
  return b->unmap(p) == 0 ? 0 : 1;
}
