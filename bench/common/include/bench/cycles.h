// Cycle timing for micro-benchmarks: serialised rdtsc reads and overhead calibration.
//
// Usage: uint64_t t0 = bench::cycles_begin(); op(); uint64_t t1 = bench::cycles_end();
// then subtract bench::timer_overhead() (the median cost of an empty begin/end pair).
// The TSC is invariant on every machine we measure (constant_tsc, nonstop_tsc): cycles
// here are TSC ticks, which equal core cycles only at the nominal frequency.
#pragma once

#include <x86intrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace bench {

// lfence before rdtsc: earlier instructions have completed before the read.
inline uint64_t cycles_begin() {
  _mm_lfence();
  uint64_t t = __rdtsc();
  _mm_lfence();
  return t;
}

// rdtscp waits for earlier instructions; lfence keeps later ones from starting early.
inline uint64_t cycles_end() {
  unsigned aux;
  uint64_t t = __rdtscp(&aux);
  _mm_lfence();
  return t;
}

// Median cost of an empty measurement, computed once per process.
inline uint64_t timer_overhead() {
  static const uint64_t overhead = [] {
    std::vector<uint64_t> v(2001);
    for (auto &x : v) {
      uint64_t a = cycles_begin();
      uint64_t b = cycles_end();
      x = b - a;
    }
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  }();
  return overhead;
}

// One measured interval, overhead-corrected and clamped at zero.
inline uint64_t corrected(uint64_t begin, uint64_t end) {
  uint64_t d = end - begin, o = timer_overhead();
  return d > o ? d - o : 0;
}

}  // namespace bench
