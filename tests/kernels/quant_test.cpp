// Dequantisers vs gguf-py (bitwise, vectors from gen_quant_vectors.py) and quantise->dequantise
// error bounds per type.
#include "alspec/kernels/quant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "alspec/core/error.h"

namespace alspec {
namespace {

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path;
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

class DequantizeVsGgufPy : public ::testing::TestWithParam<DType> {};

TEST_P(DequantizeVsGgufPy, BitExact) {
  const DType t = GetParam();
  const std::string base = std::string(ALSPEC_SOURCE_DIR) + "/tests/kernels/data/dequant_" + std::string(dtype_name(t));
  const auto blocks = read_file(base + ".bin");
  const auto expected = read_file(base + ".f32");
  const auto& info = dtype_info(t);
  ASSERT_EQ(blocks.size() % info.type_size, 0u);
  const int64_t n = static_cast<int64_t>(blocks.size() / info.type_size * info.block_size);
  ASSERT_EQ(expected.size(), static_cast<size_t>(n) * sizeof(float));
  std::vector<float> got(static_cast<size_t>(n));
  dequantize_row(t, blocks.data(), got.data(), n);
  int64_t mismatches = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (std::memcmp(&got[i], expected.data() + 4 * i, 4) != 0 && ++mismatches <= 5) {
      float e;
      std::memcpy(&e, expected.data() + 4 * i, 4);
      ADD_FAILURE() << dtype_name(t) << " element " << i << ": got " << got[i] << " expected " << e;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

INSTANTIATE_TEST_SUITE_P(Types, DequantizeVsGgufPy,
                         ::testing::Values(DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1,
                                           DType::Q5_0, DType::Q4_K, DType::Q6_K),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

struct RoundTripCase {
  DType type;
  double max_nmse;  // normalised MSE sum((x-x')^2)/sum(x^2) on N(0,1) data, measured with margin
};

class QuantizeRoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(QuantizeRoundTrip, ErrorWithinBound) {
  const auto [t, max_nmse] = GetParam();
  const int64_t n = 256 * 64;
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(n), y(n);
  for (auto& v : x) v = dist(rng);
  std::vector<uint8_t> q(row_bytes(t, n));
  quantize_row(t, x.data(), q.data(), n);
  dequantize_row(t, q.data(), y.data(), n);
  double err = 0, ref = 0;
  for (int64_t i = 0; i < n; ++i) {
    err += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    ref += double(x[i]) * x[i];
  }
  EXPECT_LE(err / ref, max_nmse) << dtype_name(t);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", err / ref);
  RecordProperty("nmse", buf);
  // Per-element bound for the 32-element absmax formats (plus the fp16 rounding of the scale):
  // Q8_0 half a step; Q4_0/Q5_0 a full step, because their 16/32 levels reach only 7/15 steps on
  // the side opposite the largest-magnitude element.
  const auto& info = dtype_info(t);
  if (t == DType::Q8_0 || t == DType::Q4_0 || t == DType::Q5_0) {
    const float bound_steps = t == DType::Q8_0 ? 0.5f / 127.0f : t == DType::Q4_0 ? 1.0f / 8.0f : 1.0f / 16.0f;
    for (int64_t b = 0; b < n / info.block_size; ++b) {
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * b + j]));
      for (int j = 0; j < 32; ++j) {
        ASSERT_LE(std::fabs(x[32 * b + j] - y[32 * b + j]), bound_steps * amax * 1.01f + amax * 1e-3f)
            << dtype_name(t) << " block " << b << " element " << j;
      }
    }
  }
  // Q4_1: half a step (max-min)/15, plus the fp16 rounding of d (up to 15 steps) and of m.
  if (t == DType::Q4_1) {
    for (int64_t b = 0; b < n / info.block_size; ++b) {
      float lo = x[32 * b], hi = x[32 * b], amax = 0;
      for (int j = 0; j < 32; ++j) {
        lo = std::min(lo, x[32 * b + j]);
        hi = std::max(hi, x[32 * b + j]);
        amax = std::max(amax, std::fabs(x[32 * b + j]));
      }
      for (int j = 0; j < 32; ++j) {
        ASSERT_LE(std::fabs(x[32 * b + j] - y[32 * b + j]), 0.5f * (hi - lo) / 15.0f * 1.01f + amax * 2e-3f)
            << "Q4_1 block " << b << " element " << j;
      }
    }
  }
  // Zero input round-trips exactly.
  std::vector<float> zeros(n, 0.0f);
  quantize_row(t, zeros.data(), q.data(), n);
  dequantize_row(t, q.data(), y.data(), n);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(std::fabs(y[i]), 0.0f);
}

INSTANTIATE_TEST_SUITE_P(Types, QuantizeRoundTrip,
                         ::testing::Values(RoundTripCase{DType::F32, 0.0}, RoundTripCase{DType::F16, 1e-7},
                                           RoundTripCase{DType::BF16, 1e-5}, RoundTripCase{DType::Q8_0, 5e-5},
                                           RoundTripCase{DType::Q4_0, 1.5e-2}, RoundTripCase{DType::Q4_1, 1e-2},
                                           RoundTripCase{DType::Q5_0, 5e-3}, RoundTripCase{DType::Q4_K, 1e-2},
                                           RoundTripCase{DType::Q6_K, 1e-3}),
                         [](const auto& info) { return std::string(dtype_name(info.param.type)); });

TEST(Quant, RejectsPartialBlocksAndOtherTypes) {
  std::vector<float> x(64);
  std::vector<uint8_t> q(1024);
  EXPECT_THROW(quantize_row(DType::Q8_0, x.data(), q.data(), 33), Error);
  EXPECT_THROW(dequantize_row(DType::Q4_K, q.data(), x.data(), 32), Error);
  EXPECT_THROW(dequantize_row(DType::Q5_K, q.data(), x.data(), 256), Error);
  EXPECT_FALSE(is_compute_type(DType::Q5_K));
  EXPECT_TRUE(is_compute_type(DType::Q6_K));
  EXPECT_TRUE(is_compute_type(DType::Q4_1));
  EXPECT_TRUE(is_compute_type(DType::Q5_0));
  EXPECT_FALSE(is_compute_type(DType::Q5_1));
}

}  // namespace
}  // namespace alspec
