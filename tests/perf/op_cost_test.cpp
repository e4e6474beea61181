// The cost model on hand-computed cases.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "alspec/perf/op_cost.h"
#include "alspec/core/error.h"
#include "alspec/perf/projection.h"
#include "alspec/perf/tp_split.h"
#include "perf/perf_fixtures.h"

namespace alspec::perf {
namespace {

using testing::tiny_profile;
using testing::tiny_profile_json;
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

// alspec's MPI runtime sums o / down as an all-gather of C column chunks, then an in-order sum.
TEST(OpCost, ChunkAllGatherReductionByHand) {
  HardwareProfile hw = tiny_profile();
  hw.collectives.reduction = TpReduction::kChunkAllGather;
  hw.collectives.chunks = 4;
  hw.device.elementwise_ns_per_element = Sourced{1.0, "test"};  // 1 ns per element summed
  const TokenOps t = token_ops(shard(tiny_shape(), 2), hw.device, hw.collectives, 2, 1000, 128);
  int gathers = 0, sums = 0;
  for (const auto& op : t.layers[0].post) {
    if (op.kind == OpKind::kCollective) {
      ++gathers;
      // 4 chunks x 256 x 2 bytes gathered; ring over 2: 1 step of 2 us + half the bytes / 10 GB/s.
      EXPECT_NEAR(op.us, 2.0 + 1024.0 / 10e9 * 1e6, 1e-9) << op.name;
    }
    if (op.name.rfind("sum_chunks_", 0) == 0) {
      ++sums;
      EXPECT_NEAR(op.us, 4 * 256 * 1e-3, 1e-9);  // 1024 elements at 1 ns, no overhead in this profile
    }
  }
  EXPECT_EQ(gathers, 2);
  EXPECT_EQ(sums, 2);
}

// A shape measured by `--calibrate --models` is costed at its own rate; attention at its measured time.
TEST(OpCost, MeasuredShapeRateAndAttentionTime) {
  DeviceRates r = tiny_profile().device;
  r.matvec_shape_gbps["F16 1024x1024"] = {25, "test"};
  const MatrixShape m = testing::f16(1024, 1024);
  const OpCost c = matvec_cost(r, "m", {&m});
  EXPECT_NEAR(c.us, 5.0 + 2097152.0 / 25e9 * 1e6, 1e-9);
  EXPECT_EQ(c.flops, 0);  // the measurement includes the arithmetic: no FLOP ceiling
  r.attention_shape_us["4/2/64/f16"] = {{64, {10, "test"}}, {1024, {106, "test"}}};
  const OpCost a = attention_cost(r, tiny_shape(), 544);
  EXPECT_DOUBLE_EQ(a.us, 58);
  EXPECT_EQ(a.bound, "measured");
  // A cache-resident model does not use the cold-cache table: the roofline (5 us + 544 x 512 B / 100 GB/s).
  EXPECT_NEAR(attention_cost(r, tiny_shape(), 544, "attention", true).us, 5.0 + 544 * 512.0 / 100e9 * 1e6, 1e-9);
}

// The MPI runtime runs a rank's o and down products as C / tp column chunks: that many narrower
// matvecs, each at its own shape's rate and with its own dispatch.
TEST(OpCost, RowParallelProductsRunAsColumnChunks) {
  HardwareProfile hw = tiny_profile();
  hw.collectives.reduction = TpReduction::kChunkAllGather;
  hw.collectives.chunks = 4;
  const ModelShape rank = shard(tiny_shape(), 2, 4);
  EXPECT_EQ(rank.chunks_per_rank, 2);
  EXPECT_EQ(shard(tiny_shape(), 2).chunks_per_rank, 1);
  hw.device.matvec_shape_gbps["F16 256x64"] = {20, "test"};  // one chunk of the rank's o (256 x 128)
  const TokenOps t = token_ops(rank, hw.device, hw.collectives, 2, 1000, 128);
  const OpCost& o = t.layers[0].post[0];
  ASSERT_EQ(o.name, "o");
  EXPECT_DOUBLE_EQ(o.bytes, 256 * 128 * 2.0);
  EXPECT_NEAR(o.us, 2 * (5.0 + 256 * 64 * 2.0 / 20e9 * 1e6), 1e-9);
  const MatrixShape c = column_chunk(testing::f16(256, 512), 4);
  EXPECT_DOUBLE_EQ(c.cols, 128);
  EXPECT_DOUBLE_EQ(c.bytes, 256 * 128 * 2.0);
}

// A collective waits wait_fraction x the compute since the previous one (the ranks drift apart).
TEST(OpCost, CollectiveWaitsAShareOfTheSegmentBeforeIt) {
  HardwareProfile hw = tiny_profile();
  const ModelShape rank = shard(tiny_shape(), 2);
  const TokenOps base = token_ops(rank, hw.device, hw.collectives, 2, 1000, 128);
  hw.collectives.tp_link->wait_fraction = Sourced{0.1, "test"};
  const TokenOps t = token_ops(rank, hw.device, hw.collectives, 2, 1000, 128);
  const LayerOps& l = base.layers[0];
  // all_reduce_o: after embedding, pre, attention and o.
  const double seg_o = sum_us(base.begin) + sum_us(l.pre) + l.attention.us + l.post[0].us;
  ASSERT_EQ(t.layers[0].post[1].name, "all_reduce_o");
  EXPECT_NEAR(t.layers[0].post[1].us, l.post[1].us + 0.1 * seg_o, 1e-9);
  // all_reduce_down: after residual_ffn_norm, gate_up, swiglu, down.
  ASSERT_EQ(t.layers[0].post[6].name, "all_reduce_down");
  const double seg_down = l.post[2].us + l.post[3].us + l.post[4].us + l.post[5].us;
  EXPECT_NEAR(t.layers[0].post[6].us, l.post[6].us + 0.1 * seg_down, 1e-9);
}

// MPI ranks on one host: each of n ranks reads at most 1/n of what the host reads with all threads.
TEST(OpCost, MpiRanksShareTheHostBus) {
  nlohmann::json j = tiny_profile_json();
  j["kind"] = "cpu-threads";
  nlohmann::json one = j["device"], two = j["device"];
  one["mem_bw_gbps"] = testing::num(80);   // one thread alone
  two["mem_bw_gbps"] = testing::num(100);  // the host with two threads
  j.erase("device");
  j["threads"] = {{"1", one}, {"2", two}};
  j["collectives"]["transport"] = "mpi";
  j["collectives"]["reduction"] = "chunk-all-gather";
  const HardwareProfile hw = parse_profile(j, "tiny-mpi");
  EXPECT_EQ(hw.collectives.transport, Transport::kMpi);
  ProjectionOptions o;
  o.tp = 2;
  o.threads = 1;
  o.tp_chunks = 2;
  const auto res = project(tiny_shape(), hw, o, {999}, Decisions::from_hit_rate(0, 1));
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].exact.devices, 2);
  EXPECT_EQ(res[0].exact.threads_per_device, 1);
  // Attention on one rank: one KV head of two, 1000 rows x 256 bytes at min(80, 100 / 2) GB/s.
  EXPECT_NEAR(res[0].exact.breakdown_ms.at("attention"), (5.0 + 256000.0 / 50e9 * 1e6) / 1e3, 1e-12);
  // Without the MPI transport a cpu-threads profile refuses --tp 2, naming the way out.
  nlohmann::json k = j;
  k["collectives"]["transport"] = "in-process";
  try {
    project(tiny_shape(), parse_profile(k, "tiny-threads"), o, {999}, Decisions::from_hit_rate(0, 1));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--calibrate-mpi"), std::string::npos) << e.what();
  }
}

// The in-process ALSpec sides share the weight reads (the second reader hits the shared cache) but
// not the KV reads (each side has its own cache): only attention is scaled by the factor.
TEST(OpCost, InProcessSidesShareWeightsNotKv) {
  nlohmann::json j = tiny_profile_json();
  j["kind"] = "cpu-threads";
  nlohmann::json one = j["device"], two = j["device"];
  one["concurrent_factor"] = testing::num(0.5);
  two["mem_bw_gbps"] = testing::num(150);
  j.erase("device");
  j["threads"] = {{"1", one}, {"2", two}};
  ProjectionOptions o;
  o.sp = 2;
  o.threads = 2;
  const auto res = project(tiny_shape(), parse_profile(j, "tiny-sides"), o, {999}, Decisions::from_hit_rate(0, 1));
  ASSERT_TRUE(res[0].alspec.has_value());
  double qkv = -1, attention = -1;
  for (const auto& op : res[0].alspec->layer0_ops) {
    if (op.name == "qkv") qkv = op.us;
    if (op.name == "attention") attention = op.us;
  }
  EXPECT_NEAR(qkv, 5.0 + 262144.0 / 100e9 * 1e6, 1e-9);        // one thread's rate, not scaled
  EXPECT_NEAR(attention, 5.0 + 512000.0 / 50e9 * 1e6, 1e-9);   // 100 GB/s x 0.5
}

TEST(OpCost, UnknownTransportOrReductionIsAClearError) {
  for (const char* field : {"transport", "reduction"}) {
    nlohmann::json j = tiny_profile_json();
    j["collectives"][field] = "pigeons";
    try {
      parse_profile(j, "bad");
      FAIL() << field;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("$.collectives.") + field), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace alspec::perf
