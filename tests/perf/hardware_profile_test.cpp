// Profile parsing: valid profiles, and clear errors naming the field for malformed ones.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "alspec/core/error.h"
#include "alspec/perf/hardware_profile.h"
#include "perf/perf_fixtures.h"
#include "repo_paths.h"

namespace alspec::perf {
namespace {

using nlohmann::json;

std::string parse_error(const json& j) {
  try {
    parse_profile(j, "p.json");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    return e.what();
  }
  ADD_FAILURE() << "expected an error for " << j.dump();
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(HardwareProfile, ParsesAndRoundTrips) {
  const HardwareProfile p = testing::tiny_profile();
  EXPECT_EQ(p.name, "tiny-hw");
  EXPECT_EQ(p.kind, ProfileKind::kDevices);
  EXPECT_DOUBLE_EQ(p.device.mem_bw_gbps.value, 100);
  EXPECT_EQ(p.device.mem_bw_gbps.source, "test");
  EXPECT_DOUBLE_EQ(p.device.attention_rate_gbps(), 100);  // no efficiency given: the memory bandwidth
  ASSERT_TRUE(p.collectives.tp_link.has_value());
  EXPECT_DOUBLE_EQ(p.collectives.tp_link->latency_us.value, 2);
  const HardwareProfile q = parse_profile(profile_to_json(p), "again");
  EXPECT_EQ(profile_to_json(q), profile_to_json(p));
}

TEST(HardwareProfile, NumberWithoutSource) {
  json j = testing::tiny_profile_json();
  j["device"]["mem_bw_gbps"] = {{"value", 100}};
  const std::string e = parse_error(j);
  EXPECT_TRUE(contains(e, "profile p.json: $.device.mem_bw_gbps: missing \"source\"")) << e;
  j["device"]["mem_bw_gbps"] = 100;
  EXPECT_TRUE(contains(parse_error(j), "$.device.mem_bw_gbps: expected {\"value\": number")) << parse_error(j);
}

TEST(HardwareProfile, MissingRequiredAndBadValues) {
  json j = testing::tiny_profile_json();
  j["device"].erase("peak_tflops");
  EXPECT_TRUE(contains(parse_error(j), "$.device.peak_tflops: required field missing"));
  j = testing::tiny_profile_json();
  j["device"]["mem_bw_gbps"]["value"] = -3;
  EXPECT_TRUE(contains(parse_error(j), "$.device.mem_bw_gbps: value must be > 0"));
  j = testing::tiny_profile_json();
  j["device"]["mem_bw_gbpz"] = testing::num(1);
  EXPECT_TRUE(contains(parse_error(j), "$.device.mem_bw_gbpz: unknown field"));
  j = testing::tiny_profile_json();
  j["kind"] = "gpu";
  EXPECT_TRUE(contains(parse_error(j), "$.kind: unknown kind 'gpu'"));
  j = testing::tiny_profile_json();
  j["collectives"]["algorithm"] = "butterfly";
  EXPECT_TRUE(contains(parse_error(j), "$.collectives.algorithm: unknown algorithm 'butterfly'"));
  j = testing::tiny_profile_json();
  j["collectives"]["tp_link"].erase("bandwidth_gbps");
  EXPECT_TRUE(contains(parse_error(j), "$.collectives.tp_link.bandwidth_gbps: required field missing"));
}

TEST(HardwareProfile, CpuThreadsProfile) {
  json rates = testing::tiny_profile_json()["device"];
  json j{{"name", "cpu"}, {"kind", "cpu-threads"}, {"threads", {{"1", rates}, {"2", rates}}}};
  const HardwareProfile p = parse_profile(j, "cpu.json");
  EXPECT_DOUBLE_EQ(p.rates(2).mem_bw_gbps.value, 100);
  try {
    p.rates(4);
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "no rates for 4 thread(s); calibrated: 1, 2")) << e.what();
  }
  j["threads"]["two"] = rates;
  EXPECT_TRUE(contains(parse_error(j), "$.threads.two: key must be a thread count"));
}

TEST(HardwareProfile, FileErrors) {
  try {
    load_profile("/nonexistent/profile.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
  }
  const std::string path = ::testing::TempDir() + "/malformed_profile.json";
  std::ofstream(path) << "{\"name\": \"x\", ";
  try {
    load_profile(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_TRUE(contains(e.what(), "malformed JSON")) << e.what();
  }
}

TEST(HardwareProfile, CommittedProfilesParse) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::string(ALSPEC_SOURCE_DIR) + "/profiles")) {
    if (e.path().extension() != ".json") continue;
    ++n;
    EXPECT_NO_THROW(load_profile(e.path().string())) << e.path();
  }
  EXPECT_GE(n, 5);
}

}  // namespace
}  // namespace alspec::perf

namespace alspec::perf {
namespace {

TEST(HardwareProfile, AttentionEfficiencyByKvHeadsInterpolatesInLogHeads) {
  json j = testing::tiny_profile_json();
  j["device"]["attention_efficiency_by_kv_heads"] = {{"1", testing::num(0.2)}, {"8", testing::num(0.8)}};
  const HardwareProfile p = parse_profile(j, "p.json");
  EXPECT_DOUBLE_EQ(p.device.attention_rate_gbps(1), 20);
  EXPECT_DOUBLE_EQ(p.device.attention_rate_gbps(8), 80);
  EXPECT_DOUBLE_EQ(p.device.attention_rate_gbps(16), 80);  // clamped
  EXPECT_NEAR(p.device.attention_rate_gbps(2), 100 * (0.2 + 0.6 / 3), 1e-9);  // log2(2) / log2(8) = 1/3
  j["device"]["attention_efficiency_by_kv_heads"] = {{"zero", testing::num(0.2)}};
  EXPECT_TRUE(contains(parse_error(j), "attention_efficiency_by_kv_heads.zero: key must be a head count")) << parse_error(j);
}

// Per-shape rates from `--calibrate --models`: round trip, lookup, interpolation, bad keys.
TEST(HardwareProfile, PerShapeTablesRoundTripAndInterpolate) {
  json j = testing::tiny_profile_json();
  j["device"]["matvec_shape_gbps"] = {{"F16 1024x1024", testing::num(25)}};
  j["device"]["attention_shape_us"] = {{"4/2/64/f16", {{"64", testing::num(10)}, {"1024", testing::num(106)}}}};
  j["device"]["concurrent_factor"] = testing::num(0.9);
  j["collectives"]["tp_link"]["wait_fraction"] = testing::num(0.05);
  const HardwareProfile p = parse_profile(j, "p.json");
  EXPECT_EQ(matvec_shape_key("F16", 1024, 1024), "F16 1024x1024");
  EXPECT_EQ(attention_shape_key(4, 2, 64, "f16"), "4/2/64/f16");
  EXPECT_DOUBLE_EQ(p.device.matvec_rate_gbps("F16", "F16 1024x1024", false), 25);
  EXPECT_DOUBLE_EQ(p.device.matvec_rate_gbps("F16", "F16 512x1024", false), 100);  // no such shape: mem_bw
  EXPECT_DOUBLE_EQ(p.device.matvec_rate_gbps("F16", "F16 1024x1024", true), 100);  // cache-resident: not the DRAM shape rate
  const std::string k = "4/2/64/f16";
  EXPECT_DOUBLE_EQ(*p.device.attention_shape_time_us(k, 32), 10);      // below the first count: its time
  EXPECT_DOUBLE_EQ(*p.device.attention_shape_time_us(k, 544), 58);     // 10 + 480 x 96 / 960
  EXPECT_DOUBLE_EQ(*p.device.attention_shape_time_us(k, 1024), 106);
  EXPECT_DOUBLE_EQ(*p.device.attention_shape_time_us(k, 2048), 208.4);  // along the last segment: 0.1 us per row
  EXPECT_FALSE(p.device.attention_shape_time_us("8/8/128/f16", 100).has_value());
  EXPECT_DOUBLE_EQ(p.device.concurrent_factor->value, 0.9);
  EXPECT_DOUBLE_EQ(p.collectives.tp_link->wait(), 0.05);
  const HardwareProfile back = parse_profile(profile_to_json(p), "back");
  EXPECT_EQ(profile_to_json(back), profile_to_json(p));
  j["device"]["attention_shape_us"] = {{"4/2/64/f16", {{"many", testing::num(1)}}}};
  EXPECT_TRUE(contains(parse_error(j), "attention_shape_us.4/2/64/f16.many: key must be a row count")) << parse_error(j);
  j["device"]["attention_shape_us"] = {{"4/2/64/f16", {{"64", testing::num(1, "")}}}};
  EXPECT_TRUE(contains(parse_error(j), "missing \"source\"")) << parse_error(j);
}

}  // namespace
}  // namespace alspec::perf
