// Summary statistics for repeated measurements: median and spread (p10/p90, min, max).
// We report medians, never means: one preempted repetition must not move the figure.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <vector>

namespace bench {

struct Summary {
  double median = 0, p10 = 0, p90 = 0, min = 0, max = 0;
  size_t reps = 0;
};

// Nearest-rank percentile with linear interpolation between neighbours, q in [0, 1].
inline double percentile_sorted(const std::vector<double> &sorted, double q) {
  if (sorted.empty()) throw std::invalid_argument("percentile of no samples");
  double pos = q * double(sorted.size() - 1);
  size_t lo = size_t(std::floor(pos)), hi = size_t(std::ceil(pos));
  double frac = pos - double(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

inline Summary summarize(std::vector<double> v) {
  Summary s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.median = percentile_sorted(v, 0.5);
  s.p10 = percentile_sorted(v, 0.1);
  s.p90 = percentile_sorted(v, 0.9);
  s.min = v.front();
  s.max = v.back();
  s.reps = v.size();
  return s;
}

template <typename T>
Summary summarize(const std::vector<T> &v) {
  return summarize(std::vector<double>(v.begin(), v.end()));
}

}  // namespace bench
