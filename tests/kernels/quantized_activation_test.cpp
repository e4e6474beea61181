// The activation quantisation of matmul.h: the AVX-512 path against its plain scalar twin, bitwise,
// including blocks of zeros, huge and tiny values, infinities and NaNs.
#include "kernels/cpu/quantized_activation.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "alspec/kernels/cpu_features.h"

namespace alspec::kernels {
namespace {

TEST(QuantizedActivations, SimdRowEqualsScalarTwinBitwise) {
  constexpr int64_t kBlocks = 9, kCols = 32 * kBlocks, kRows = 3;
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(kRows * kCols));
  for (auto& v : x) v = dist(rng);
  for (int j = 0; j < 32; ++j) x[32 + j] = 0.0f;                 // row 0 block 1: all zero
  for (int j = 0; j < 32; ++j) x[64 + j] *= 1e30f;               // block 2: huge
  for (int j = 0; j < 32; ++j) x[96 + j] *= 1e-30f;              // block 3: tiny (subnormal steps)
  x[130] = std::numeric_limits<float>::infinity();               // block 4: +inf
  x[170] = std::numeric_limits<float>::quiet_NaN();              // block 5: NaN
  x[200] = -std::numeric_limits<float>::infinity();              // block 6: -inf and NaN
  x[201] = std::numeric_limits<float>::quiet_NaN();
  for (int j = 0; j < 32; ++j) x[224 + j] = 127.0f * (j % 2 ? 1.0f : -1.0f) * (1.0f + j / 64.0f);  // ties, clamps
  QuantizedActivations simd, scalar;
  simd.prepare(kRows, kCols, false);
  scalar.prepare(kRows, kCols, false);
  for (int64_t t = 0; t < kRows; ++t) {
    simd.quantize_row(t, x.data() + t * kCols);
    scalar.quantize_row_scalar(t, x.data() + t * kCols);
  }
  for (int64_t t = 0; t < kRows; ++t) {
    const ActivationRow a = simd.row(t), b = scalar.row(t);
    EXPECT_EQ(std::memcmp(a.q, b.q, 32 * kBlocks), 0) << "row " << t;
    EXPECT_EQ(std::memcmp(a.d, b.d, sizeof(float) * kBlocks), 0) << "row " << t;
    EXPECT_EQ(std::memcmp(a.sum, b.sum, sizeof(int32_t) * kBlocks), 0) << "row " << t;
  }
  // Spot check of the definition on an ordinary block: q = round-half-even(x / (amax / 127)).
  const ActivationRow a = scalar.row(1);
  float amax = 0;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[kCols + j]));
  const float d = amax / 127.0f;
  EXPECT_EQ(a.d[0], d);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(a.q[j], static_cast<int8_t>(std::nearbyint(x[kCols + j] * (1.0f / d))));
}

// The super-block form of Q4_K/Q6_K products: SIMD against the scalar twin, bitwise, on the
// same special values, and the definition (per 256 elements, sums of 16) spot-checked.
TEST(QuantizedActivations, SuperBlockFormEqualsScalarTwinBitwise) {
  constexpr int64_t kSuper = 3, kCols = 256 * kSuper, kRows = 2;
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(kRows * kCols));
  for (auto& v : x) v = dist(rng);
  for (int j = 0; j < 256; ++j) x[256 + j] = 0.0f;  // row 0 super-block 1: all zero
  x[600] = std::numeric_limits<float>::infinity();   // super-block 2: +inf and NaN
  x[601] = std::numeric_limits<float>::quiet_NaN();
  for (int j = 0; j < 256; ++j) x[kCols + j] *= 1e30f;                // row 1 super-block 0: huge
  for (int j = 0; j < 256; ++j) x[kCols + 256 + j] *= 1e-30f;         // super-block 1: tiny
  for (int j = 0; j < 32; ++j) x[kCols + 512 + j] = 127.0f * (j % 2 ? 1.0f : -1.0f) * (1.0f + j / 64.0f);
  QuantizedActivations simd, scalar;
  simd.prepare(kRows, kCols, false, true);
  scalar.prepare(kRows, kCols, false, true);
  for (int64_t t = 0; t < kRows; ++t) {
    simd.quantize_row(t, x.data() + t * kCols);
    scalar.quantize_row_scalar(t, x.data() + t * kCols);
  }
  for (int64_t t = 0; t < kRows; ++t) {
    const ActivationRow a = simd.row(t), b = scalar.row(t);
    ASSERT_EQ(a.super_blocks, kSuper);
    EXPECT_EQ(std::memcmp(a.kq, b.kq, 256 * kSuper), 0) << "row " << t;
    EXPECT_EQ(std::memcmp(a.kd, b.kd, sizeof(float) * kSuper), 0) << "row " << t;
    EXPECT_EQ(std::memcmp(a.ksum, b.ksum, sizeof(int16_t) * 16 * kSuper), 0) << "row " << t;
    EXPECT_EQ(std::memcmp(a.q, b.q, 32 * 8 * kSuper), 0) << "row " << t;  // the 32-blocks as well
  }
  const ActivationRow a = scalar.row(0);
  float amax = 0;
  for (int j = 0; j < 256; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  EXPECT_EQ(a.kd[0], d);
  for (int i = 0; i < 16; ++i) {
    int s = 0;
    for (int j = 16 * i; j < 16 * i + 16; ++j) {
      EXPECT_EQ(a.kq[j], static_cast<int8_t>(std::nearbyint(x[j] * (1.0f / d))));
      s += a.kq[j];
    }
    EXPECT_EQ(a.ksum[i], s);
  }
  EXPECT_EQ(a.kd[1], 0.0f);
}

}  // namespace
}  // namespace alspec::kernels
