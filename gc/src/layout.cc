#include "layout.h"

#include <cstring>

#include "meta.h"

namespace dunegc::gc {

namespace {

MetaVector<const Layout *> g_layouts;  // every layout made so far (few: one per type)

// Layout storage: bump allocation in metadata pages, never freed.
char *g_bump = nullptr;
size_t g_room = 0;

Layout *new_layout(size_t bytes) {
  bytes = (bytes + 15) & ~size_t{15};
  if (bytes > g_room) {
    size_t chunk = bytes > 65536 ? bytes : 65536;
    g_bump = static_cast<char *>(ChunkProvider::map_metadata(chunk));
    if (!g_bump) {
      g_room = 0;
      return nullptr;
    }
    g_room = chunk;
  }
  auto *l = reinterpret_cast<Layout *>(g_bump);
  g_bump += bytes;
  g_room -= bytes;
  return l;
}

}  // namespace

const Layout *intern_bitmap_layout(const uint64_t *bits, size_t nwords) {
  size_t nbitwords = (nwords + 63) / 64;
  // Canonical form: bits past nwords cleared, so equal layouts compare equal.
  for (const Layout *l : g_layouts) {
    if (l->type != Layout::kBitmap || l->nwords != nwords) continue;
    bool same = true;
    for (size_t i = 0; i < nbitwords && same; i++) {
      uint64_t w = bits[i];
      if (i == nbitwords - 1 && nwords % 64) w &= (uint64_t{1} << (nwords % 64)) - 1;
      same = l->bits[i] == w;
    }
    if (same) return l;
  }
  Layout *l = new_layout(offsetof(Layout, bits) + nbitwords * sizeof(uint64_t));
  if (!l || !g_layouts.push(l)) return nullptr;
  l->type = Layout::kBitmap;
  l->nwords = uint32_t(nwords);
  l->trace = nullptr;
  memcpy(l->bits, bits, nbitwords * sizeof(uint64_t));
  if (nwords % 64) l->bits[nbitwords - 1] &= (uint64_t{1} << (nwords % 64)) - 1;
  return l;
}

const Layout *intern_trace_layout(dunegc_trace_fn fn) {
  for (const Layout *l : g_layouts)
    if (l->type == Layout::kTrace && l->trace == fn) return l;
  Layout *l = new_layout(sizeof(Layout));
  if (!l || !g_layouts.push(l)) return nullptr;
  l->type = Layout::kTrace;
  l->nwords = 0;
  l->trace = fn;
  return l;
}

}  // namespace dunegc::gc
