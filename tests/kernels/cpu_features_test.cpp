#include "alspec/kernels/cpu_features.h"

#include <gtest/gtest.h>

namespace alspec {
namespace {

TEST(CpuFeatures, LevelFollowsFeaturesAndCap) {
  const auto& f = cpu_features();
  const SimdLevel detected = detected_simd_level();
  EXPECT_TRUE(detected < SimdLevel::kAvx2 || (f.avx2 && f.fma && f.f16c));
  EXPECT_TRUE(detected < SimdLevel::kAvx512 || (f.avx512f && f.avx512bw && f.avx512vnni && f.avx512vbmi));
  EXPECT_LE(simd_level(), detected);
  EXPECT_EQ(set_simd_level(SimdLevel::kScalar), SimdLevel::kScalar);
  EXPECT_EQ(simd_level(), SimdLevel::kScalar);
  // A cap above what the CPU has never selects an unsupported level.
  EXPECT_LE(set_simd_level(SimdLevel::kAvx512), detected);
  EXPECT_EQ(set_simd_level(SimdLevel::kAvx512), simd_level());
  EXPECT_EQ(simd_level_name(SimdLevel::kAvx2), "avx2");
}

}  // namespace
}  // namespace alspec
