// Projection: device accounting, the shared memory bus of cpu-threads pairs, break-even.
#include <gtest/gtest.h>

#include <string>

#include "alspec/core/error.h"
#include "alspec/perf/projection.h"
#include "perf/perf_fixtures.h"

namespace alspec::perf {
namespace {

using nlohmann::json;

HardwareProfile cpu_profile() {
  json one = testing::tiny_profile_json()["device"];
  json two = one;
  one["mem_bw_gbps"] = testing::num(15);
  two["mem_bw_gbps"] = testing::num(20);
  json j{{"name", "cpu"},
         {"kind", "cpu-threads"},
         {"threads", {{"1", one}, {"2", two}}},
         {"collectives", {{"sp_link", {{"latency_us", testing::num(1)}, {"bandwidth_gbps", testing::num(10)}}}}}};
  return parse_profile(j, "cpu.json");
}

const OpCost& find(const std::vector<OpCost>& ops, const std::string& name) {
  for (const auto& o : ops) {
    if (o.name == name) return o;
  }
  throw std::runtime_error("no op " + name);
}

TEST(Projection, CpuPairSharesTheMemoryBus) {
  ProjectionOptions o;
  o.sp = 2;
  o.threads = 2;
  const auto r = project(testing::tiny_shape(), cpu_profile(), o, {999}, Decisions::from_hit_rate(0.5, 1));
  ASSERT_TRUE(r[0].alspec.has_value());
  EXPECT_EQ(r[0].exact.devices, 1);
  EXPECT_EQ(r[0].exact.threads_per_device, 2);
  EXPECT_EQ(r[0].alspec->devices, 2);
  EXPECT_EQ(r[0].alspec->threads_per_device, 1);
  // Exact at 2 threads reads at 20 GB/s; each ALSpec device at min(15, 20 / 2) = 10 GB/s.
  const double qkv_bytes = 131072.0 + 65536 + 65536;
  EXPECT_NEAR(find(r[0].exact.layer0_ops, "qkv").us, 5 + qkv_bytes / 20e9 * 1e6, 1e-9);
  EXPECT_NEAR(find(r[0].alspec->layer0_ops, "qkv").us, 5 + qkv_bytes / 10e9 * 1e6, 1e-9);
}

TEST(Projection, DevicesAndExactBaseline) {
  const HardwareProfile hw = testing::tiny_profile();
  ProjectionOptions o;
  o.tp = 1;
  o.sp = 2;
  const auto same = project(testing::tiny_shape(), hw, o, {999}, Decisions::from_hit_rate(0.5, 1));
  EXPECT_EQ(same[0].exact.devices, 2);  // exact uses both devices (TP 2)
  o.exact_tp = 1;
  const auto one = project(testing::tiny_shape(), hw, o, {999}, Decisions::from_hit_rate(0.5, 1));
  EXPECT_EQ(one[0].exact.devices, 1);
  EXPECT_GT(one[0].exact.ms_per_token, same[0].exact.ms_per_token);
  EXPECT_DOUBLE_EQ(one[0].alspec->ms_per_token, same[0].alspec->ms_per_token);
}

TEST(Projection, BreakEvenHitRateEqualisesTheTimes) {
  // Exact on one device vs ALSpec on two: attention of 100000 rows makes hits pay.
  const HardwareProfile hw = testing::tiny_profile();
  ProjectionOptions o;
  o.sp = 2;
  o.exact_tp = 1;
  o.steps = 4000;
  const auto r = project(testing::tiny_shape(4), hw, o, {100000}, Decisions::from_hit_rate(0.5, 1));
  ASSERT_TRUE(r[0].break_even_hit_rate.has_value());
  const double h = *r[0].break_even_hit_rate;
  EXPECT_GT(h, 0.0);
  EXPECT_LT(h, 1.0);
  const auto at = project(testing::tiny_shape(4), hw, o, {100000}, Decisions::from_hit_rate(h, 3));
  EXPECT_NEAR(at[0].alspec->ms_per_token / at[0].exact.ms_per_token, 1.0, 0.01);
}

TEST(Projection, RejectsImpossibleOptions) {
  ProjectionOptions o;
  o.sp = 3;
  EXPECT_THROW(project(testing::tiny_shape(), testing::tiny_profile(), o, {1}, Decisions::from_hit_rate(0, 1)), Error);
  o.sp = 2;
  o.threads = 3;
  try {
    project(testing::tiny_shape(), cpu_profile(), o, {1}, Decisions::from_hit_rate(0, 1));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("must be even"), std::string::npos) << e.what();
  }
  o.threads = 2;
  o.tp = 2;
  EXPECT_THROW(project(testing::tiny_shape(), cpu_profile(), o, {1}, Decisions::from_hit_rate(0, 1)), Error);
  o.tp = 1;
  json j = testing::tiny_profile_json();
  j["collectives"].erase("sp_link");
  try {
    project(testing::tiny_shape(), parse_profile(j, "p"), o, {1}, Decisions::from_hit_rate(0, 1));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--sp 2 needs collectives.sp_link"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace alspec::perf
