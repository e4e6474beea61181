#include "alspec/core/half.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "alspec/core/dtype.h"

namespace alspec {
namespace {

// Exhaustive: every binary16 value converts to float and back unchanged (NaNs stay NaN).
TEST(Half, Fp16RoundTripAllValues) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(f))));
      continue;
    }
    ASSERT_EQ(fp32_to_fp16(f), h) << "h=" << h;
  }
}

#if defined(__F16C__) || defined(__x86_64__)
// Against the compiler's own _Float16 conversion (round to nearest even) on many floats.
TEST(Half, Fp32ToFp16MatchesHardwareRounding) {
  uint32_t x = 12345;
  for (int i = 0; i < 2000000; ++i) {
    x = x * 1664525u + 1013904223u;
    float f;
    std::memcpy(&f, &x, 4);
    if (std::isnan(f)) continue;
    const _Float16 h = static_cast<_Float16>(f);
    uint16_t bits;
    std::memcpy(&bits, &h, 2);
    ASSERT_EQ(fp32_to_fp16(f), bits) << "f=" << f << " bits=" << x;
  }
}
#endif

TEST(Half, Bf16) {
  EXPECT_EQ(bf16_to_fp32(fp32_to_bf16(1.0f)), 1.0f);
  EXPECT_EQ(fp32_to_bf16(1.00390625f), 0x3f80);  // tie -> even
  EXPECT_EQ(fp32_to_bf16(1.01171875f), 0x3f82);  // tie -> even (up)
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(NAN))));
}

TEST(DType, Sizes) {
  EXPECT_EQ(row_bytes(DType::Q4_K, 512), 288u);
  EXPECT_EQ(row_bytes(DType::Q8_0, 64), 68u);
  EXPECT_FALSE(row_bytes_checked(DType::Q8_0, 33).has_value());
  EXPECT_FALSE(row_bytes_checked(DType::F32, 1ull << 62).has_value());
  EXPECT_EQ(dtype_from_name("q6_k"), DType::Q6_K);
  EXPECT_FALSE(dtype_info(4u).has_value());
  EXPECT_EQ(dtype_info(30u)->name, "BF16");
}

}  // namespace
}  // namespace alspec
