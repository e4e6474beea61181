// AVX-512 GEMM kernels (gemm_microkernel.inc) in 256-bit vectors with the 32 registers of
// AVX-512VL: 4 rows x 4 tokens per tile, integer lane sums with one vpdpbusd each (unsigned
// offset weights times signed activations, started from -offset * the lane's activation sum;
// exact, no saturation).
// GCC 12 reports bogus (maybe-)uninitialized warnings inside its own AVX-512 intrinsic headers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstdint>
#include <vector>

#include "kernels/cpu/block_layout.h"
#include "kernels/cpu/gemm_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512dq")

namespace alspec::kernels {
namespace {

struct Isa {
  static constexpr bool kQ5_0ScalarScale = true;
  static __m256i q5_0_high_bits(const uint8_t* qh) {  // the 32 bits as a byte mask
    return _mm256_maskz_mov_epi8(_cvtu32_mask32(load_u32(qh)), _mm256_set1_epi8(0x10));
  }
  template <int kOffset>
  static __m256i weights(__m256i u) {
    return u;
  }
  template <int kOffset>
  static __m256i init(const int32_t* neg_sum4) {
    if constexpr (kOffset == 0) {
      return _mm256_setzero_si256();
    } else {
      return _mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(neg_sum4)), __builtin_ctz(kOffset));
    }
  }
  template <int kOffset>
  static __m256i lane_dot(__m256i w, __m256i a, __m256i init) {
    return _mm256_dpbusd_epi32(init, w, a);
  }
};

#include "kernels/cpu/gemm_microkernel.inc"

constexpr int kRows = 4, kTokens = 4;

// Q4_K/Q6_K: 16 tokens per 512-bit vector; per sub-block vpdpbusd, then one vpmulld by its scale.
namespace wide {
struct KIsa {
  using VI = __m512i;
  using VF = __m512;
  static constexpr int kTokens = 16;
  static constexpr bool kVnni = true;
  static VI zero() { return _mm512_setzero_si512(); }
  static VI dpbusd(VI acc, const uint8_t* u4, VI a) {
    return _mm512_dpbusd_epi32(acc, _mm512_set1_epi32(static_cast<int>(load_u32(u4))), a);
  }
  static VI mul_add(VI acc, VI x, int32_t s) { return _mm512_add_epi32(acc, _mm512_mullo_epi32(x, _mm512_set1_epi32(s))); }
  static VI load(const void* p) { return _mm512_loadu_si512(p); }
  static VI dot4(VI acc, const uint8_t* u4, VI a, int32_t s2) {
    const VI u = _mm512_set1_epi32(static_cast<int>(load_u32(u4)));
    return _mm512_dpwssd_epi32(acc, _mm512_maddubs_epi16(u, a), _mm512_set1_epi32(s2));
  }
  static VI madd(VI acc, VI x, int32_t w2) { return _mm512_dpwssd_epi32(acc, x, _mm512_set1_epi32(w2)); }
  static VF cvt(VI v) { return _mm512_cvtepi32_ps(v); }
  static VF loadf(const float* p) { return _mm512_loadu_ps(p); }
  static VF set1(float v) { return _mm512_set1_ps(v); }
  static VF zerof() { return _mm512_setzero_ps(); }
  static VF mul(VF a, VF b) { return _mm512_mul_ps(a, b); }
  static VF add(VF a, VF b) { return _mm512_add_ps(a, b); }
  static VF fmadd(VF a, VF b, VF c) { return _mm512_fmadd_ps(a, b, c); }
  static void storef(float* p, VF v) { _mm512_store_ps(p, v); }
};

#include "kernels/cpu/gemm_kquant.inc"
}  // namespace wide

// The same in 256-bit vectors (AVX-512VL), 8 tokens per tile, for products of at most 8 tokens:
// Zen 4 runs a 512-bit operation as two 256-bit halves, so a full narrow tile computes as fast
// as a full wide one, and a pass of 8 sequences wastes no half.
namespace narrow {
struct KIsa {
  using VI = __m256i;
  using VF = __m256;
  static constexpr int kTokens = 8;
  static constexpr bool kVnni = true;
  static VI zero() { return _mm256_setzero_si256(); }
  static VI dpbusd(VI acc, const uint8_t* u4, VI a) {
    return _mm256_dpbusd_epi32(acc, _mm256_set1_epi32(static_cast<int>(load_u32(u4))), a);
  }
  static VI mul_add(VI acc, VI x, int32_t s) { return _mm256_add_epi32(acc, _mm256_mullo_epi32(x, _mm256_set1_epi32(s))); }
  static VI load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
  static VI dot4(VI acc, const uint8_t* u4, VI a, int32_t s2) {
    const VI u = _mm256_set1_epi32(static_cast<int>(load_u32(u4)));
    return _mm256_dpwssd_epi32(acc, _mm256_maddubs_epi16(u, a), _mm256_set1_epi32(s2));
  }
  static VI madd(VI acc, VI x, int32_t w2) { return _mm256_dpwssd_epi32(acc, x, _mm256_set1_epi32(w2)); }
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
}  // namespace narrow

constexpr int kKRows = 8;
// The narrow tile's rows: 8 rows would need 32 vector registers for the sub-block parts, the
// super-block sums and the two float accumulators per row (GCC then shuffles and spills them in
// the inner loop); 4 rows leave room for the activations and the broadcast weights.
constexpr int kKNarrowRows = 4;

}  // namespace

const GemmKernels& gemm_kernels_avx512() {
  static const GemmKernels k{gemm<Q8_0Type, kRows, kTokens>,
                             gemm<Q4_0Type, kRows, kTokens>,
                             gemm<Q5_0Type, kRows, kTokens>,
                             wide::kgemm<wide::Q4_KKind, kKRows>,
                             wide::kgemm<wide::Q6_KKind, kKRows>,
                             "4x4 rows x tokens, vpdpbusd; Q4_K/Q6_K 8x16 (4x8 for 3-8 tokens), vpdpbusd+vpmulld",
                             wide::KIsa::kTokens,
                             narrow::kgemm<narrow::Q4_KKind, kKNarrowRows>,
                             narrow::kgemm<narrow::Q6_KKind, kKNarrowRows>,
                             narrow::KIsa::kTokens};
  return k;
}

}  // namespace alspec::kernels

#pragma GCC pop_options
