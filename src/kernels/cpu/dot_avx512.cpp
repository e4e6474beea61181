// AVX-512 (F/BW/VL/VNNI) dot kernels: the arithmetic of dot_scalar.cpp with two 32-element blocks
// per 16-lane vector (lanes 0-7 the even block, 8-15 the odd one, matching the canonical even/odd
// accumulator split) and vpdpbusd for the exact integer lane sums. Q4_K/Q6_K reuse the AVX2
// kernels, whose arithmetic is the same.
// Headers come before the target pragma so that no shared inline code is compiled for AVX-512.
// GCC 12 reports bogus (maybe-)uninitialized warnings inside its own AVX-512 intrinsic headers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/block_layout.h"
#include "kernels/cpu/dot_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512dq")

namespace alspec::kernels {
namespace {

inline float half_to_float(const uint8_t* p) { return _cvtsh_ss(load_u16(p)); }

inline float hsum8(__m256 v) {  // (k, k+4), (k, k+2), (0, 1)
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float hsum16(__m512 v) {  // (k, k+8), then hsum8
  return hsum8(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
}

// Lane k = sum over bytes 4k..4k+3 of w*a, w and a signed (|a| <= 127).
inline __m512i lane_dot(__m512i w, __m512i a) {
  const __m512i as = _mm512_mask_sub_epi8(a, _mm512_movepi8_mask(w), _mm512_setzero_si512(), a);
  return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(w), as);
}

inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m512i join(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }
// [s0 x8 | s1 x8]
inline __m512 scale_pair(float s0, float s1) {
  return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(s0)), _mm256_set1_ps(s1), 1);
}

inline __m512i q8_0_pair(const uint8_t* p) { return join(load32(p + 2), load32(p + 2 + kQ8_0Bytes)); }
inline __m512i q4_0_pair(const uint8_t* p) {
  const __m256i x = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 + kQ4_0Bytes)),
                                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2)));
  const __m256i m = _mm256_set1_epi8(0x0F);
  const __m512i z = join(_mm256_and_si256(x, m), _mm256_and_si256(_mm256_srli_epi16(x, 4), m));
  // 128-bit lanes [lo_b, lo_b1, hi_b, hi_b1] -> [lo_b, hi_b, lo_b1, hi_b1]
  return _mm512_sub_epi8(_mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0)), _mm512_set1_epi8(8));
}
// A lone last block (even index): only its 32 bytes are read.
inline __m512i q8_0_single(const uint8_t* p) { return _mm512_castsi256_si512(load32(p + 2)); }
inline __m512i q4_0_single(const uint8_t* p) {
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
  const __m128i m = _mm_set1_epi8(0x0F);
  const __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(x, 4), m), _mm_and_si128(x, m));
  return _mm512_castsi256_si512(_mm256_sub_epi8(q, _mm256_set1_epi8(8)));
}

template <int kBytes, __m512i (*Pair)(const uint8_t*), __m512i (*Single)(const uint8_t*)>
float dot_32(const uint8_t* row, const ActivationRow& a) {
  __m512 acc = _mm512_setzero_ps();
  const __m512i idx01 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const __m512i idx23 = _mm512_add_epi32(idx01, _mm512_set1_epi32(2));
  int64_t b = 0;
  for (; b + 3 < a.blocks; b += 4) {
    const uint8_t* p = row + kBytes * b;
    const __m128i h = _mm_setr_epi16(static_cast<short>(load_u16(p)), static_cast<short>(load_u16(p + kBytes)),
                                     static_cast<short>(load_u16(p + 2 * kBytes)),
                                     static_cast<short>(load_u16(p + 3 * kBytes)), 0, 0, 0, 0);
    const __m512 s4 = _mm512_castps128_ps512(_mm_mul_ps(_mm_cvtph_ps(h), _mm_loadu_ps(a.d + b)));
    const __m512i l01 = lane_dot(Pair(p), _mm512_loadu_si512(a.q + 32 * b));
    const __m512i l23 = lane_dot(Pair(p + 2 * kBytes), _mm512_loadu_si512(a.q + 32 * b + 64));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(l01), _mm512_permutexvar_ps(idx01, s4), acc);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(l23), _mm512_permutexvar_ps(idx23, s4), acc);
  }
  if (b + 1 < a.blocks) {
    const uint8_t* p = row + kBytes * b;
    const __m512 s = scale_pair(half_to_float(p) * a.d[b], half_to_float(p + kBytes) * a.d[b + 1]);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lane_dot(Pair(p), _mm512_loadu_si512(a.q + 32 * b))), s, acc);
    b += 2;
  }
  if (b < a.blocks) {
    const uint8_t* p = row + kBytes * b;
    const __m512 s = _mm512_set1_ps(half_to_float(p) * a.d[b]);
    const __m512i q = _mm512_castsi256_si512(load32(a.q + 32 * b));
    acc = _mm512_mask3_fmadd_ps(_mm512_cvtepi32_ps(lane_dot(Single(p), q)), s, acc, 0x00FF);
  }
  return hsum16(acc);
}

inline __m512 load16_f32(const uint8_t* w, __mmask16 m) {
  return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(w));
}
inline __m512 load16_f16(const uint8_t* w, __mmask16 m) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w));
}
inline __m512 load16_bf16(const uint8_t* w, __mmask16 m) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, w)), 16));
}

// Lane e % 64 in 4 accumulators; masked loads and masked FMAs leave unused lanes untouched.
template <__m512 (*Load16)(const uint8_t*, __mmask16), int kElemBytes>
float float_dot(const uint8_t* w, const float* x, int64_t k) {
  __m512 acc[4];
  for (auto& v : acc) v = _mm512_setzero_ps();
  int64_t e = 0;
  for (; e + 64 <= k; e += 64) {
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      acc[j] = _mm512_fmadd_ps(Load16(w + kElemBytes * (e + 16 * j), 0xFFFF), _mm512_loadu_ps(x + e + 16 * j), acc[j]);
    }
  }
  if (e < k) {
    const int64_t rem = k - e;
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const int64_t cnt = rem - 16 * j;
      if (cnt <= 0) break;
      const __mmask16 m = cnt >= 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << cnt) - 1);
      acc[j] = _mm512_mask3_fmadd_ps(Load16(w + kElemBytes * (e + 16 * j), m), _mm512_maskz_loadu_ps(m, x + e + 16 * j),
                                     acc[j], m);
    }
  }
  const __m512 s = _mm512_add_ps(_mm512_add_ps(acc[0], acc[2]), _mm512_add_ps(acc[1], acc[3]));
  return hsum16(s);
}

}  // namespace

const DotKernels& dot_kernels_avx512() {
  const DotKernels& avx2 = dot_kernels_avx2();
  static const DotKernels k{float_dot<load16_f32, 4>,
                            float_dot<load16_f16, 2>,
                            float_dot<load16_bf16, 2>,
                            dot_32<kQ8_0Bytes, q8_0_pair, q8_0_single>,
                            dot_32<kQ4_0Bytes, q4_0_pair, q4_0_single>,
                            avx2.q4_k,
                            avx2.q6_k};
  return k;
}

}  // namespace alspec::kernels

#pragma GCC pop_options
