// The cost model on hand-computed cases.
#include <gtest/gtest.h>

#include "alspec/perf/op_cost.h"
#include "alspec/core/error.h"
#include "alspec/perf/projection.h"
#include "alspec/perf/tp_split.h"
#include "perf/perf_fixtures.h"

namespace alspec::perf {
namespace {

using testing::tiny_profile;
using testing::tiny_shape;

TEST(OpCost, MatvecIsBytesOverBandwidthPlusOverhead) {
  const DeviceRates r = tiny_profile().device;
  const MatrixShape m = testing::f16(1024, 1024);  // 2 MiB at 100 GB/s = 20.97152 us; 2 MFLOP at 1 TFLOP/s = 2.1 us
  const OpCost c = matvec_cost(r, "m", {&m});
  EXPECT_NEAR(c.us, 5.0 + 2097152.0 / 100e9 * 1e6, 1e-9);
  EXPECT_EQ(c.bound, "memory");
}

TEST(OpCost, ComputeBoundWhenFlopsDominate) {
  DeviceRates r = tiny_profile().device;
  r.peak_tflops.value = 0.001;  // 1 GFLOP/s: 2 MFLOP take 2097.152 us
  const MatrixShape m = testing::f16(1024, 1024);
  const OpCost c = matvec_cost(r, "m", {&m});
  EXPECT_NEAR(c.us, 5.0 + 2.0 * 1024 * 1024 / 1e9 * 1e6, 1e-6);
  EXPECT_EQ(c.bound, "compute");
}

TEST(OpCost, PerTypeMatvecRateAndAttentionEfficiency) {
  DeviceRates r = tiny_profile().device;
  r.matvec_gbps["F16"] = {50, "test"};
  r.attention_efficiency = Sourced{0.5, "test"};
  const MatrixShape m = testing::f16(1024, 1024);
  EXPECT_NEAR(matvec_cost(r, "m", {&m}).us, 5.0 + 2097152.0 / 50e9 * 1e6, 1e-9);
  const ModelShape s = tiny_shape();
  // 1000 rows x 512 bytes at 50 GB/s = 10.24 us.
  EXPECT_NEAR(attention_cost(r, s, 1000).us, 5.0 + 512000.0 / 50e9 * 1e6, 1e-9);
}

// One layer on one device: time = (weights + KV bytes) / bandwidth + 7 dispatched ops x 5 us
// (qkv, attention, o, gate_up, swiglu, down, lm_head); element-wise ops are free in this profile.
TEST(OpCost, OneLayerOneDeviceByHand) {
  const ModelShape s = tiny_shape();
  const HardwareProfile hw = tiny_profile();
  ProjectionOptions o;
  const auto res = project(s, hw, o, {999}, Decisions::from_hit_rate(0, 1));  // L = 1000 rows
  ASSERT_EQ(res.size(), 1u);
  const double bytes = 1691648.0 + 1000 * 512.0;
  EXPECT_NEAR(res[0].exact.ms_per_token, (bytes / 100e9 * 1e6 + 7 * 5.0) / 1e3, 1e-9);
  EXPECT_NEAR(res[0].exact.breakdown_ms.at("attention"), (5.0 + 512000.0 / 100e9 * 1e6) / 1e3, 1e-12);
  // Attention overhead: the same token without the 1000 KV rows.
  EXPECT_NEAR(res[0].exact_attention_overhead_ms, 512000.0 / 100e9 * 1e3, 1e-12);
  EXPECT_FALSE(res[0].alspec.has_value());
}

TEST(OpCost, TensorParallelSplitsBytesAndAddsAllReduces) {
  const HardwareProfile hw = tiny_profile();
  const ModelShape rank = shard(tiny_shape(), 2);
  EXPECT_EQ(rank.n_head, 2);
  EXPECT_EQ(rank.n_head_kv, 1);
  const TokenOps t = token_ops(rank, hw.device, hw.collectives, 2, 1000, 128);
  EXPECT_DOUBLE_EQ(t.layers[0].pre[1].bytes, (131072.0 + 65536 + 65536) / 2);  // fused QKV, half the rows
  EXPECT_DOUBLE_EQ(t.layers[0].attention.bytes, 1000 * 256.0);                   // one KV head of two
  // Two all-reduces of 256 x 2 bytes per layer: ring over 2 = 2 steps x 2 us + 512 bytes / 10 GB/s.
  int all_reduces = 0;
  for (const auto& op : t.layers[0].post) {
    if (op.kind == OpKind::kCollective) {
      ++all_reduces;
      EXPECT_NEAR(op.us, 2 * 2.0 + 512.0 / 10e9 * 1e6, 1e-9);
    }
  }
  EXPECT_EQ(all_reduces, 2);
  // Logits all-gather: 1000 x 2 bytes, ring over 2 = 1 step, half the bytes on the link.
  EXPECT_EQ(t.end.back().name, "all_gather_logits");
  EXPECT_NEAR(t.end.back().us, 2.0 + 1000.0 / 10e9 * 1e6, 1e-9);
}

TEST(OpCost, TensorParallelMustDivideHeads) {
  try {
    shard(tiny_shape(), 4);  // 2 KV heads
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("does not divide the KV heads (2) of tiny"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace alspec::perf
