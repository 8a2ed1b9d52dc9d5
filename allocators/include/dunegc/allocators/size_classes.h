// Size classes for small objects: the table every allocator path shares.
//
// Objects up to kMaxSmallSize bytes are rounded up to one of 32 classes and carved from
// spans of whole pages that hold only that class; larger objects get a span of their own
// (the large-object space). Class sizes are multiples of the 16-byte granule, spaced so
// internal fragmentation stays under 1/8 above 128 bytes (four classes per power of two),
// and each class's span length is the smallest that holds at least eight objects with at
// most 1/8 of the span left over at its end.
//
// Everything here is constexpr so the allocation fast path compiles to two table loads.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace dunegc::allocators {

inline constexpr size_t kPageShift = 12;
inline constexpr size_t kPageSize = size_t{1} << kPageShift;
inline constexpr size_t kGranule = 16;              // alignment of every object
inline constexpr size_t kMaxSmallSize = 8192;       // larger: one span per object
inline constexpr unsigned kNumClasses = 33;         // class 0 means "not a small size"
inline constexpr unsigned kMaxObjectsPerSpan = 512; // bounds the per-span side bitmap
inline constexpr unsigned kMinSpanBytes = 8192;

struct SizeClass {
  uint32_t size = 0;     // bytes per object
  uint32_t pages = 0;    // pages per span
  uint32_t objects = 0;  // objects per span
  // floor(2^32 / size) + 1: offset * recip >> 32 == offset / size for every offset inside
  // a span (offset * size < 2^32 there; allocators/tests check all offsets exhaustively).
  uint32_t recip = 0;
};

namespace detail {

constexpr std::array<SizeClass, kNumClasses> make_classes() {
  std::array<SizeClass, kNumClasses> t{};
  unsigned c = 1;
  for (uint32_t s = 16; s <= 128; s += 16) t[c++].size = s;
  for (uint32_t base = 128; base < kMaxSmallSize; base *= 2)
    for (uint32_t k = 1; k <= 4; k++) t[c++].size = base + k * base / 4;
  for (unsigned i = 1; i < kNumClasses; i++) {
    uint32_t s = t[i].size;
    uint32_t pages = kMinSpanBytes / kPageSize;
    for (;; pages++) {
      uint32_t bytes = pages * uint32_t(kPageSize);
      uint32_t n = bytes / s;
      if (n > kMaxObjectsPerSpan) n = kMaxObjectsPerSpan;
      if (n >= 8 && bytes - n * s <= bytes / 8) {
        t[i].objects = n;
        break;
      }
    }
    t[i].pages = pages;
    t[i].recip = uint32_t((uint64_t{1} << 32) / s + 1);
  }
  return t;
}

// Class of a size, for sizes <= 1024 in 16-byte steps and above in 128-byte steps.
constexpr std::array<uint8_t, 1024 / 16 + 1> make_lut_small(const std::array<SizeClass, kNumClasses> &t) {
  std::array<uint8_t, 1024 / 16 + 1> l{};
  unsigned c = 1;
  for (unsigned i = 0; i < l.size(); i++) {
    while (t[c].size < i * 16) c++;
    l[i] = uint8_t(c);
  }
  return l;
}
constexpr std::array<uint8_t, kMaxSmallSize / 128 + 1> make_lut_big(const std::array<SizeClass, kNumClasses> &t) {
  std::array<uint8_t, kMaxSmallSize / 128 + 1> l{};
  unsigned c = 1;
  for (unsigned i = 0; i < l.size(); i++) {
    while (t[c].size < i * 128) c++;
    l[i] = uint8_t(c);
  }
  return l;
}

}  // namespace detail

inline constexpr std::array<SizeClass, kNumClasses> kClasses = detail::make_classes();
inline constexpr auto kClassLutSmall = detail::make_lut_small(kClasses);
inline constexpr auto kClassLutBig = detail::make_lut_big(kClasses);

// Class for n bytes (1 <= n <= kMaxSmallSize); n == 0 is treated as 1.
inline unsigned size_to_class(size_t n) {
  return n <= 1024 ? kClassLutSmall[(n + 15) >> 4] : kClassLutBig[(n + 127) >> 7];
}

inline size_t class_size(unsigned cls) { return kClasses[cls].size; }

// Pages needed for a large object of n bytes.
inline size_t pages_for(size_t n) { return (n + kPageSize - 1) >> kPageShift; }

static_assert(kClasses[kNumClasses - 1].size == kMaxSmallSize, "32 classes end at 8 KiB");
static_assert(kClasses[1].objects == kMaxObjectsPerSpan, "the 16-byte class fills the bitmap");

}  // namespace dunegc::allocators
