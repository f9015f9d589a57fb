// AccuracySpread: how one figure is spread over devices — the mean, the 10th percentile (the worst-served tenth)
// and the median — as personalization papers report per-client accuracy. Percentiles interpolate linearly between
// order statistics (numpy's default), so small cohorts give stable figures. No LibTorch.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace sotto::ml {

struct AccuracySpread {
  double mean = 0.0;
  double p10 = 0.0;
  double median = 0.0;
};

// The q-quantile (q in [0, 1]) of `sorted` (ascending, not empty).
inline double quantile_of_sorted(const std::vector<double>& sorted, double q) {
  const double at = q * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(at));
  const std::size_t above = std::min(below + 1, sorted.size() - 1);
  return sorted[below] + (at - static_cast<double>(below)) * (sorted[above] - sorted[below]);
}

// Zeros for no values.
inline AccuracySpread spread_of(std::vector<double> values) {
  AccuracySpread s;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  double sum = 0;
  for (double v : values) sum += v;
  s.mean = sum / static_cast<double>(values.size());
  s.p10 = quantile_of_sorted(values, 0.1);
  s.median = quantile_of_sorted(values, 0.5);
  return s;
}

}  // namespace sotto::ml
