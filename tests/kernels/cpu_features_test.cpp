#include "alspec/kernels/cpu_features.h"

#include <gtest/gtest.h>

#include <string>

#include "alspec/core/dtype.h"
#include "alspec/kernels/attention.h"
#include "alspec/kernels/matmul.h"

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

TEST(CpuFeatures, ReportNamesTheCpuAndTheKernelsInUse) {
  EXPECT_FALSE(cpu_model_name().empty());
  EXPECT_EQ(cpu_model_name().find_first_of('\0'), std::string::npos);
  const std::string features = cpu_feature_list();
  EXPECT_EQ(features.find("avx2") != std::string::npos, cpu_features().avx2);
  // The variants start with the level they run at and follow the cap.
  set_simd_level(SimdLevel::kScalar);
  EXPECT_EQ(matmul_kernel_variant().rfind("scalar", 0), 0u);
  EXPECT_EQ(attention_kernel_variant(DType::F16, 128, false).rfind("scalar", 0), 0u);
  if (set_simd_level(SimdLevel::kAvx2) == SimdLevel::kAvx2) {
    EXPECT_EQ(matmul_kernel_variant().rfind("avx2", 0), 0u);
    EXPECT_EQ(attention_kernel_variant(DType::F16, 128, true), "avx2 fused, pipelined, K in key blocks");
    EXPECT_EQ(attention_kernel_variant(DType::F16, 40, false), "avx2 tiles decoded to float");
  }
  set_simd_level(SimdLevel::kAvx512);
}

}  // namespace
}  // namespace alspec
