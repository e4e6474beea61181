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

}  // namespace
}  // namespace alspec::kernels
