// AVX2 GEMM kernels (gemm_microkernel.inc): integer lane sums with maddubs, 4 rows x 2 tokens
// per tile (8 accumulators of the 16 registers). 4 x 2 rather than 2 x 4: each activation block
// serves 4 rows and the 4-row panel stays in L1 while the token pairs stream past it; on the Zen 4
// VM (AVX2 forced, one thread, 64 tokens) Q5_0 went 35 -> 43 GMAC/s and Q6_K 25 -> 36, Q4_K
// +4%, Q8_0 unchanged (3 x 4, 4 x 3, 5 x 2 and 6 x 2 were no better; neither were the scale
// products of 4 rows in one multiply, nor shifts instead of madd for the pair sums).
// maddubs multiplies unsigned by signed bytes and saturates its 16-bit pair sums: the offset
// weights of Q4_0/Q5_0/Q4_K/Q6_K (u <= 63) cannot reach the limit, Q8_0 keeps signed weights and
// moves their sign onto the activation instead.
// Headers come before the target pragma so that no shared inline code is compiled for AVX2.
#include <immintrin.h>

#include <cstdint>
#include <vector>

#include "kernels/cpu/block_layout.h"
#include "kernels/cpu/gemm_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace alspec::kernels {
namespace {

struct Isa {
  template <int kOffset>
  static __m256i weights(__m256i u) {  // Q8_0: back to the signed weight u - 128
    return kOffset == 128 ? _mm256_xor_si256(u, _mm256_set1_epi8(static_cast<char>(0x80))) : u;
  }
  template <int kOffset>
  static __m256i init(const int32_t* neg_sum4) {
    if constexpr (kOffset == 0 || kOffset == 128) {
      return _mm256_setzero_si256();
    } else {
      return _mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(neg_sum4)), __builtin_ctz(kOffset));
    }
  }
  template <int kOffset>
  static __m256i lane_dot(__m256i w, __m256i a, __m256i init) {
    const __m256i ones = _mm256_set1_epi16(1);
    if constexpr (kOffset == 128) {
      return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(a, w)), ones);
    } else if constexpr (kOffset == 0) {
      return _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), ones);
    } else {
      return _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(w, a), ones), init);
    }
  }
};

#include "kernels/cpu/gemm_microkernel.inc"

constexpr int kRows = 4, kTokens = 2;

}  // namespace

const GemmKernels& gemm_kernels_avx2() {
  static const GemmKernels k{gemm<Q8_0Type, kRows, kTokens>, gemm<Q4_0Type, kRows, kTokens>,
                             gemm<Q5_0Type, kRows, kTokens>, gemm<Q4_KType, kRows, kTokens>,
                             gemm<Q6_KType, kRows, kTokens>, "4x2 rows x tokens, maddubs"};
  return k;
}

}  // namespace alspec::kernels

#pragma GCC pop_options
