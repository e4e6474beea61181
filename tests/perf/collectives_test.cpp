// Step counts and times of the collectives (collectives.h).
#include <gtest/gtest.h>

#include "alspec/perf/collectives.h"

namespace alspec::perf {
namespace {

Link link(double lat_us, double gbps, double fixed_us = 0) {
  Link l{{lat_us, "test"}, {gbps, "test"}, std::nullopt, std::nullopt};
  if (fixed_us > 0) l.fixed_us = Sourced{fixed_us, "test"};
  return l;
}

TEST(Collectives, RingAllReduceSteps) {
  // 8 devices, 1 MB: 2(N-1) = 14 steps, 2 x 7/8 x 1e6 bytes per link at 10 GB/s = 175 us.
  const CollectiveCost c = all_reduce(link(3, 10), CollectiveAlgorithm::kRing, 8, 1e6);
  EXPECT_EQ(c.steps, 14);
  EXPECT_DOUBLE_EQ(c.link_bytes, 1.75e6);
  EXPECT_NEAR(c.us, 14 * 3 + 175.0, 1e-9);
}

TEST(Collectives, TreeAllReduceSteps) {
  // 8 devices: depth 3, reduce + broadcast = 6 steps, each moving the whole buffer.
  const CollectiveCost c = all_reduce(link(3, 10, 20), CollectiveAlgorithm::kTree, 8, 1e6);
  EXPECT_EQ(c.steps, 6);
  EXPECT_NEAR(c.us, 20 + 6 * 3 + 6e6 / 10e9 * 1e6, 1e-9);
  EXPECT_EQ(all_reduce(link(3, 10), CollectiveAlgorithm::kTree, 5, 1).steps, 6);  // ceil(log2 5) = 3
}

TEST(Collectives, AllGatherP2pAndOneDevice) {
  const CollectiveCost g = all_gather(link(2, 10), 4, 4e6);  // 3 steps, 3/4 of the total per link
  EXPECT_EQ(g.steps, 3);
  EXPECT_NEAR(g.us, 6 + 3e6 / 10e9 * 1e6, 1e-9);
  const CollectiveCost p = p2p(link(2, 10, 50), 1e4);  // fixed cost is per collective call, not per message
  EXPECT_EQ(p.steps, 1);
  EXPECT_NEAR(p.us, 2 + 1.0, 1e-9);
  EXPECT_EQ(all_reduce(link(2, 10, 50), CollectiveAlgorithm::kRing, 1, 1e6).us, 0.0);
  EXPECT_EQ(all_gather(link(2, 10), 1, 1e6).steps, 0);
}

}  // namespace
}  // namespace alspec::perf
