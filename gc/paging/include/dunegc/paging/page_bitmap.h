// PageBitmap: one bit per 4 KiB page of an address range -- what DIRTY and accessed-bit
// sampling return. A bitmap rather than a list because a collector scans it in address
// order and because its size does not depend on how many pages were written; list() gives
// the exact page list when that is what the caller wants.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace dunegc::paging {

inline constexpr size_t kPageSize = 4096;

class PageBitmap {
 public:
  // Cover `pages` pages from `base`, all clear. Keeps its storage, so a bitmap reused for
  // the same range allocates once.
  void reset(const void *base, size_t pages) {
    base_ = reinterpret_cast<uintptr_t>(base);
    pages_ = pages;
    words_.assign((pages + 63) / 64, 0);
  }

  uintptr_t base() const { return base_; }
  size_t pages() const { return pages_; }
  void *page(size_t i) const { return reinterpret_cast<void *>(base_ + i * kPageSize); }

  bool test(size_t i) const { return (words_[i / 64] >> (i % 64)) & 1; }
  void set(size_t i) { words_[i / 64] |= uint64_t(1) << (i % 64); }
  void set_range(size_t first, size_t n) {
    for (size_t i = first; i < first + n;) {
      size_t bit = i % 64, take = std::min<size_t>(64 - bit, first + n - i);
      uint64_t mask = take == 64 ? ~uint64_t(0) : ((uint64_t(1) << take) - 1) << bit;
      words_[i / 64] |= mask;
      i += take;
    }
  }

  size_t count() const {
    size_t n = 0;
    for (uint64_t w : words_) n += size_t(__builtin_popcountll(w));
    return n;
  }

  // f(index) for every set bit, in address order.
  template <typename F>
  void for_each(F &&f) const {
    for (size_t w = 0; w < words_.size(); w++)
      for (uint64_t bits = words_[w]; bits; bits &= bits - 1)
        f(w * 64 + size_t(__builtin_ctzll(bits)));
  }

  // The exact list of set pages, as addresses.
  std::vector<void *> list() const {
    std::vector<void *> out;
    out.reserve(count());
    for_each([&](size_t i) { out.push_back(page(i)); });
    return out;
  }

  const std::vector<uint64_t> &words() const { return words_; }

 private:
  uintptr_t base_ = 0;
  size_t pages_ = 0;
  std::vector<uint64_t> words_;
};

}  // namespace dunegc::paging
