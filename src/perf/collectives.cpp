#include "alspec/perf/collectives.h"

#include <cmath>

#include "alspec/core/error.h"

namespace alspec::perf {

namespace {
CollectiveCost finish(const Link& link, int steps, double link_bytes) {
  CollectiveCost c{steps, link_bytes, 0};
  c.us = link.fixed() + steps * link.latency_us.value + link_bytes / (link.bandwidth_gbps.value * 1e9) * 1e6;
  return c;
}
void check(int n) {
  if (n < 1) throw_invalid_argument("collective over " + std::to_string(n) + " devices");
}
}  // namespace

CollectiveCost all_reduce(const Link& link, CollectiveAlgorithm alg, int n, double bytes) {
  check(n);
  if (n == 1) return {};
  if (alg == CollectiveAlgorithm::kRing) return finish(link, 2 * (n - 1), 2.0 * (n - 1) / n * bytes);
  const int depth = static_cast<int>(std::ceil(std::log2(static_cast<double>(n))));
  return finish(link, 2 * depth, 2.0 * depth * bytes);
}

CollectiveCost all_gather(const Link& link, int n, double total_bytes) {
  check(n);
  if (n == 1) return {};
  return finish(link, n - 1, static_cast<double>(n - 1) / n * total_bytes);
}

CollectiveCost p2p(const Link& link, double bytes) {
  CollectiveCost c{1, bytes, 0};
  c.us = link.latency_us.value + bytes / (link.bandwidth_gbps.value * 1e9) * 1e6;
  return c;
}

}  // namespace alspec::perf
