// Built outside the tree against an installed prefix:
//   c++ prog.cc $(pkg-config --cflags --libs dunegc-alloc)
#include <dunegc/allocators/heap.h>

#include <cstdio>
#include <cstring>

int main() {
  dunegc::allocators::Heap heap;
  if (int rc = heap.init(); rc != 0) {
    fprintf(stderr, "heap init: %s\n", strerror(-rc));
    return 1;
  }
  char *p = static_cast<char *>(heap.allocate(100));
  void *big = heap.allocate(1 << 20);
  if (!p || !big) return 1;
  strcpy(p, "dunegc-alloc");
  printf("%s usable=%zu\n", p, heap.usable_size(p));
  return heap.deallocate(p) == 0 && heap.deallocate(big) == 0 && heap.deallocate(p + 1) != 0 ? 0 : 1;
}
