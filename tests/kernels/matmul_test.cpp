// matvec/matmul: every SIMD level vs the plain reference (stated tolerances), bitwise equality
// across levels, thread counts, and between matmul rows and matvec; odd shapes.
#include "alspec/kernels/matmul.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/kernels/cpu_features.h"
#include "alspec/kernels/quant.h"
#include "kernels/activation_reference.h"

namespace alspec {
namespace {

struct Matrix {
  std::vector<uint8_t> bytes;
  WeightMatrix w;
};

// Rows of N(0,1) values quantised to `type`; `pad` extra bytes between rows.
Matrix random_matrix(DType type, int64_t rows, int64_t cols, size_t pad, uint32_t seed) {
  Matrix m;
  const size_t rb = row_bytes(type, cols);
  m.bytes.assign(rb * static_cast<size_t>(rows) + pad * static_cast<size_t>(rows), 0xAB);
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& v : row) v = dist(rng);
    quantize_row(type, row.data(), m.bytes.data() + static_cast<size_t>(r) * (rb + pad), cols);
  }
  m.w = {type, m.bytes.data(), rows, cols, rb + pad};
  return m;
}

std::vector<float> random_vector(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

double nmse(const std::vector<float>& got, const std::vector<float>& ref) {
  double e = 0, r = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    e += (double(got[i]) - ref[i]) * (double(got[i]) - ref[i]);
    r += double(ref[i]) * ref[i];
  }
  return e / r;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Levels this CPU supports, up to the ALSPEC_SIMD cap if one is set.
std::vector<SimdLevel> available_levels() {
  const SimdLevel top = set_simd_level(SimdLevel::kAvx512);
  std::vector<SimdLevel> levels;
  for (SimdLevel l : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    if (l <= top) levels.push_back(l);
  }
  return levels;
}

DeviceOptions device_options(int threads) {
  DeviceOptions o;
  o.name = "test";
  o.threads = threads;
  return o;
}

// Restores the uncapped SIMD level when a test ends.
struct SimdLevelGuard {
  ~SimdLevelGuard() { set_simd_level(SimdLevel::kAvx512); }
};

struct Case {
  DType type;
  int64_t cols;     // odd number of blocks (and a partial 64-lane tail for the float types)
  double max_nmse;  // vs matvec_reference; quantised types include the 8-bit activation error
};

class MatmulTest : public ::testing::TestWithParam<Case> {};

constexpr int64_t kRows = 77;  // odd: the two-row kernels get a lone last row

TEST_P(MatmulTest, AllLevelsMatchReferenceAndEachOtherBitwise) {
  const auto c = GetParam();
  SimdLevelGuard guard;
  const Matrix m = random_matrix(c.type, kRows, c.cols, 2, 11);
  const auto x = random_vector(c.cols, 12);
  std::vector<float> ref(kRows);
  matvec_reference(m.w, x.data(), ref.data());
  Device dev(device_options(2));
  std::vector<float> first;
  for (SimdLevel level : available_levels()) {
    ASSERT_EQ(set_simd_level(level), level);
    std::vector<float> y(kRows);
    matvec(dev, m.w, x.data(), y.data());
    const double e = nmse(y, ref);
    EXPECT_LE(e, c.max_nmse) << simd_level_name(level);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", e);
    RecordProperty(std::string("nmse_") + std::string(simd_level_name(level)), buf);
    if (first.empty()) {
      first = y;
    } else {
      EXPECT_TRUE(bitwise_equal(y, first)) << simd_level_name(level) << " differs from scalar";
    }
  }
}

TEST_P(MatmulTest, ThreadCountsAndMatmulRowsBitwiseEqualMatvec) {
  const auto c = GetParam();
  const int64_t n = 37;  // several token tiles
  const Matrix m = random_matrix(c.type, kRows, c.cols, 0, 21);
  const auto x = random_vector(n * c.cols, 22);
  std::vector<float> expected(static_cast<size_t>(n * kRows));
  {
    Device dev(device_options(1));
    for (int64_t t = 0; t < n; ++t) matvec(dev, m.w, x.data() + t * c.cols, expected.data() + t * kRows);
  }
  for (int threads : {1, 2, 3}) {
    Device dev(device_options(threads));
    std::vector<float> y(static_cast<size_t>(n * kRows));
    matmul(dev, m.w, x.data(), n, y.data());
    EXPECT_TRUE(bitwise_equal(y, expected)) << threads << " threads";
    std::vector<float> v(kRows);
    matvec(dev, m.w, x.data() + 2 * c.cols, v.data());
    EXPECT_TRUE(bitwise_equal(v, std::vector<float>(expected.begin() + 2 * kRows, expected.begin() + 3 * kRows)));
  }
}

INSTANTIATE_TEST_SUITE_P(Types, MatmulTest,
                         ::testing::Values(Case{DType::F32, 4 * 64 + 13, 1e-12}, Case{DType::F16, 4 * 64 + 13, 1e-12},
                                           Case{DType::BF16, 4 * 64 + 13, 1e-12}, Case{DType::F32, 7, 1e-12},
                                           Case{DType::Q8_0, 32 * 7, 1e-4}, Case{DType::Q4_0, 32 * 7, 1e-4},
                                           Case{DType::Q8_0, 32 * 64, 1e-4}, Case{DType::Q4_0, 32 * 65, 1e-4},
                                           Case{DType::Q4_K, 256 * 3, 1e-4}, Case{DType::Q6_K, 256 * 3, 1e-4},
                                           Case{DType::Q4_1, 32 * 1, 1e-4}, Case{DType::Q4_1, 32 * 7, 1e-4},
                                           Case{DType::Q4_1, 32 * 65, 1e-4}, Case{DType::Q5_0, 32 * 1, 1e-4},
                                           Case{DType::Q5_0, 32 * 7, 1e-4}, Case{DType::Q5_0, 32 * 65, 1e-4},
                                           Case{DType::Q4_1, 32 * 10, 1e-4}, Case{DType::Q5_0, 32 * 10, 1e-4}),
                         [](const auto& info) {
                           return std::string(dtype_name(info.param.type)) + "_K" + std::to_string(info.param.cols);
                         });

using kernel_testing::activation_as_quantised;

// Q4_1 weights far from zero (N(3, 0.5)): the block minimum term m*dx*sum(a) carries most of
// each dot product, so its accumulation is exercised, not just the nibble lanes. Every row is
// then dominated by 3*sum(x), so the activation error does not average out across rows; the
// tight check is against the reference on the quantised activations (float rounding only).
TEST(Matmul, Q4_1OffsetWeightsAllLevels) {
  SimdLevelGuard guard;
  constexpr int64_t kCols = 32 * 19;
  std::mt19937 rng(31);
  std::normal_distribution<float> dist(3.0f, 0.5f);
  std::vector<uint8_t> bytes(row_bytes(DType::Q4_1, kCols) * kRows);
  std::vector<float> row(kCols);
  for (int64_t r = 0; r < kRows; ++r) {
    for (auto& v : row) v = dist(rng);
    quantize_row(DType::Q4_1, row.data(), bytes.data() + r * row_bytes(DType::Q4_1, kCols), kCols);
  }
  const WeightMatrix w{DType::Q4_1, bytes.data(), kRows, kCols, row_bytes(DType::Q4_1, kCols)};
  const auto x = random_vector(kCols, 32);
  std::vector<float> ref(kRows), ref_q(kRows);
  matvec_reference(w, x.data(), ref.data());
  matvec_reference(w, activation_as_quantised(x).data(), ref_q.data());
  Device dev(device_options(3));
  std::vector<float> first;
  for (SimdLevel level : available_levels()) {
    ASSERT_EQ(set_simd_level(level), level);
    std::vector<float> y(kRows);
    matvec(dev, w, x.data(), y.data());
    EXPECT_LE(nmse(y, ref_q), 1e-10) << simd_level_name(level);  // measured 7e-14
    EXPECT_LE(nmse(y, ref), 1e-3) << simd_level_name(level);     // measured 1.9e-4
    if (first.empty()) {
      first = y;
    } else {
      EXPECT_TRUE(bitwise_equal(y, first)) << simd_level_name(level) << " differs from scalar";
    }
  }
}

// Fused products (Q/K/V shapes scaled down, mixed types as in Q4_K_M files) equal separate matvecs
// bitwise, for 1-3 threads; the matrices span several tasks, so the task split is exercised too.
TEST(Matmul, FusedMatvecEqualsSeparateMatvecsBitwise) {
  constexpr int64_t kCols = 32 * 65;
  const Matrix q = random_matrix(DType::Q4_0, 301, kCols, 0, 41);
  const Matrix k = random_matrix(DType::Q8_0, 75, kCols, 0, 42);
  const Matrix v = random_matrix(DType::F16, 75, kCols, 0, 43);
  const Matrix e = random_matrix(DType::Q4_K, 0, kCols - 32 * 65 + 256 * 8, 0, 44);  // no rows: skipped
  ASSERT_GT(q.w.rows, 2 * matmul_rows_per_task(q.w));
  const auto x = random_vector(kCols, 45);
  std::vector<std::vector<float>> expected;
  {
    Device dev(device_options(1));
    for (const Matrix* m : {&q, &k, &v}) {
      expected.emplace_back(static_cast<size_t>(m->w.rows));
      matvec(dev, m->w, x.data(), expected.back().data());
    }
  }
  for (int threads : {1, 2, 3}) {
    Device dev(device_options(threads));
    std::vector<float> yq(q.w.rows), yk(k.w.rows), yv(v.w.rows);
    const MatvecTarget targets[] = {{&q.w, yq.data()}, {&k.w, yk.data()}, {&v.w, yv.data()}};
    matvec_fused(dev, targets, x.data());
    EXPECT_TRUE(bitwise_equal(yq, expected[0])) << threads << " threads";
    EXPECT_TRUE(bitwise_equal(yk, expected[1])) << threads << " threads";
    EXPECT_TRUE(bitwise_equal(yv, expected[2])) << threads << " threads";
  }
  Device dev(device_options(2));
  std::vector<float> y(8);
  const MatvecTarget mixed[] = {{&q.w, y.data()}, {&e.w, y.data()}};  // different cols
  EXPECT_THROW(matvec_fused(dev, mixed, x.data()), Error);
}

// Every token count of a batched decode pass (1..17: whole register tiles, narrow tail tiles,
// the K-quant GEMM's narrow and wide token tiles and the multi-token dot kernels), fused with a
// second matrix as the batched Q/K/V and gate/up run: each token's row equals the scalar twin's
// matvec bitwise, at every level, for 1 and 2 threads. Rows not a multiple of any tile.
TEST(Matmul, SmallBatchesEqualScalarMatvecBitwise) {
  SimdLevelGuard guard;
  for (DType type : {DType::Q8_0, DType::Q4_0, DType::Q5_0, DType::Q4_K, DType::Q6_K}) {
    const bool k_quant = type == DType::Q4_K || type == DType::Q6_K;
    const int64_t cols = k_quant ? 256 * 3 : 32 * 13;
    const Matrix a = random_matrix(type, 45, cols, 0, 51);
    const Matrix b = random_matrix(type, 19, cols, 0, 52);
    const auto x = random_vector(17 * cols, 53);
    std::vector<float> expected_a(static_cast<size_t>(17 * 45)), expected_b(static_cast<size_t>(17 * 19));
    ASSERT_EQ(set_simd_level(SimdLevel::kScalar), SimdLevel::kScalar);
    {
      Device dev(device_options(1));
      for (int64_t t = 0; t < 17; ++t) {
        matvec(dev, a.w, x.data() + t * cols, expected_a.data() + t * 45);
        matvec(dev, b.w, x.data() + t * cols, expected_b.data() + t * 19);
      }
    }
    for (SimdLevel level : available_levels()) {
      ASSERT_EQ(set_simd_level(level), level);
      for (int threads : {1, 2}) {
        Device dev(device_options(threads));
        for (int64_t n = 1; n <= 17; ++n) {
          std::vector<float> ya(static_cast<size_t>(n * 45)), yb(static_cast<size_t>(n * 19));
          const MatvecTarget targets[] = {{&a.w, ya.data()}, {&b.w, yb.data()}};
          matmul_fused(dev, targets, x.data(), n);
          EXPECT_TRUE(bitwise_equal(ya, std::vector<float>(expected_a.begin(), expected_a.begin() + n * 45)))
              << dtype_name(type) << " " << simd_level_name(level) << " n " << n << " threads " << threads;
          EXPECT_TRUE(bitwise_equal(yb, std::vector<float>(expected_b.begin(), expected_b.begin() + n * 19)))
              << dtype_name(type) << " " << simd_level_name(level) << " n " << n << " threads " << threads;
        }
      }
    }
  }
}

// Decode-batch sizes (2-9 tokens) on long rows: the 32-element GEMM's segments of 64 blocks, its
// lane scales of a partial last chunk of 8 blocks (141 = 17 * 8 + 5), an odd row count (a
// repeated last row), against the scalar dot kernels (the reference twin) one token at a time.
TEST(Matmul, DecodeBatchesOnLongRowsEqualScalarMatvecBitwise) {
  SimdLevelGuard guard;
  for (DType type : {DType::Q8_0, DType::Q4_0, DType::Q5_0}) {
    const int64_t cols = 32 * 141, rows = 23;
    const Matrix m = random_matrix(type, rows, cols, 2, 61);
    const auto x = random_vector(9 * cols, 62);
    std::vector<float> expected(static_cast<size_t>(9 * rows));
    ASSERT_EQ(set_simd_level(SimdLevel::kScalar), SimdLevel::kScalar);
    {
      Device dev(device_options(1));
      for (int64_t t = 0; t < 9; ++t) matvec(dev, m.w, x.data() + t * cols, expected.data() + t * rows);
    }
    for (SimdLevel level : available_levels()) {
      ASSERT_EQ(set_simd_level(level), level);
      for (int threads : {1, 2}) {
        Device dev(device_options(threads));
        for (int64_t n = 2; n <= 9; ++n) {
          std::vector<float> y(static_cast<size_t>(n * rows));
          matmul(dev, m.w, x.data(), n, y.data());
          EXPECT_TRUE(bitwise_equal(y, std::vector<float>(expected.begin(), expected.begin() + n * rows)))
              << dtype_name(type) << " " << simd_level_name(level) << " n " << n << " threads " << threads;
        }
      }
    }
  }
}

TEST(Matmul, RowsPerTaskIsEvenAndNearTheTaskBytes) {
  const WeightMatrix w{DType::Q4_0, nullptr, 8192, 2048, row_bytes(DType::Q4_0, 2048)};
  const int64_t r = matmul_rows_per_task(w);
  EXPECT_EQ(r % 2, 0);
  EXPECT_LE(static_cast<size_t>(r) * w.row_bytes, kMatmulTaskBytes);
  EXPECT_GT(static_cast<size_t>(r + 2) * w.row_bytes, kMatmulTaskBytes);
  const WeightMatrix wide{DType::F32, nullptr, 4, 1 << 20, size_t{4} << 20};  // a row above the task size
  EXPECT_EQ(matmul_rows_per_task(wide), 2);
}

TEST(Matmul, RejectsBadShapes) {
  std::vector<uint8_t> data(4096);
  std::vector<float> x(256), y(8);
  Device dev(device_options(1));
  EXPECT_THROW(matvec(dev, {DType::Q8_0, data.data(), 2, 48, 34}, x.data(), y.data()), Error);
  EXPECT_THROW(matvec(dev, {DType::Q8_0, data.data(), 2, 64, 34}, x.data(), y.data()), Error);  // stride < row
  EXPECT_THROW(matvec(dev, {DType::Q5_K, data.data(), 2, 256, 176}, x.data(), y.data()), Error);
  EXPECT_THROW(matmul(dev, {DType::F32, data.data(), 2, 4, 16}, x.data(), -1, y.data()), Error);
}

}  // namespace
}  // namespace alspec
