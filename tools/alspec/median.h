// Median of a sample: what the benchmarks report, since a shared machine produces outliers.
#pragma once

#include <algorithm>
#include <vector>

namespace alspec::cli {

inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace alspec::cli
