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
  static constexpr bool kQ5_0ScalarScale = false;  // per-lane scales: faster on AVX2 (4x2)
  static __m256i q5_0_high_bits(const uint8_t* qh) {  // bit j to byte j: spread, test, select
    const __m256i spread_idx = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2,
                                                2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL));
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(load_u32(qh))), spread_idx);
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
  }
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

// Q4_K/Q6_K: 8 tokens per 256-bit vector; maddubs, madd with the broadcast scale, add.
struct KIsa {
  using VI = __m256i;
  using VF = __m256;
  static constexpr int kTokens = 8;
  static constexpr bool kVnni = false;
  static VI dpbusd(VI acc, const uint8_t*, VI) { return acc; }  // unused (kVnni false)
  static VI mul_add(VI acc, VI, int32_t) { return acc; }
  static VI zero() { return _mm256_setzero_si256(); }
  static VI load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
  static VI dot4(VI acc, const uint8_t* u4, VI a, int32_t s2) {
    const VI u = _mm256_set1_epi32(static_cast<int>(load_u32(u4)));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, a), _mm256_set1_epi32(s2)));
  }
  static VI madd(VI acc, VI x, int32_t w2) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(x, _mm256_set1_epi32(w2)));
  }
  static VF cvt(VI v) { return _mm256_cvtepi32_ps(v); }
  static VF loadf(const float* p) { return _mm256_loadu_ps(p); }
  static VF set1(float v) { return _mm256_set1_ps(v); }
  static VF zerof() { return _mm256_setzero_ps(); }
  static VF mul(VF a, VF b) { return _mm256_mul_ps(a, b); }
  static VF add(VF a, VF b) { return _mm256_add_ps(a, b); }
  static VF fmadd(VF a, VF b, VF c) { return _mm256_fmadd_ps(a, b, c); }
  static void storef(float* p, VF v) { _mm256_store_ps(p, v); }
};

#include "kernels/cpu/gemm_kquant.inc"

constexpr int kKRows = 4;

}  // namespace

const GemmKernels& gemm_kernels_avx2() {
  static const GemmKernels k{gemm<Q8_0Type, kRows, kTokens>, gemm<Q4_0Type, kRows, kTokens>,
                             gemm<Q5_0Type, kRows, kTokens>, kgemm<Q4_KKind, kKRows>,
                             kgemm<Q6_KKind, kKRows>,
                             "4x2 rows x tokens, maddubs; Q4_K/Q6_K 4x8, maddubs+madd",
                             KIsa::kTokens};
  return k;
}

}  // namespace alspec::kernels

#pragma GCC pop_options
