// AVX2/FMA/F16C dot kernels: the arithmetic of dot_scalar.cpp with 8-lane vectors. The integer
// lane sums use maddubs on |w| and sign(a, w), which cannot saturate (|w| <= 128, |a| <= 127).
// Headers come before the target pragma so that no shared inline code is compiled for AVX2.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/block_layout.h"
#include "kernels/cpu/dot_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace alspec::kernels {
namespace {

inline float half_to_float(const uint8_t* p) { return _cvtsh_ss(load_u16(p)); }

// Canonical pairwise sum of 8 lanes: (k, k+4), then (k, k+2), then (0, 1).
inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Lane k = sum of w[e]*a[e] over bytes 4k..4k+3 (signed w).
inline __m256i lane_dot(__m256i w, __m256i a) {
  const __m256i p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(a, w));
  return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}
// Same for unsigned w <= 15.
inline __m256i lane_dot_u4(__m256i w, __m256i a) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1));
}

inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// L2 prefetches for a loop step that reads kStep bytes from p, kPrefetchBytes ahead (see
// dot_kernels.h): lines 64 bytes apart so that the steps together touch every line. Integer
// arithmetic: the address may lie past the matrix.
template <int kStep>
inline void prefetch_step(const uint8_t* p) {
#pragma GCC unroll 8
  for (int o = 0; o < kStep; o += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) + kPrefetchBytes + o), _MM_HINT_T1);
  }
}

inline __m256 fma_lanes(__m256i lanes, __m256 scale, __m256 acc) {
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(lanes), scale, acc);
}

inline __m256i q4_0_weights(const uint8_t* p) {
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
  const __m128i m = _mm_set1_epi8(0x0F);
  const __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(x, 4), m), _mm_and_si128(x, m));
  return _mm256_sub_epi8(q, _mm256_set1_epi8(8));
}

// Canonical combination of the 4 block-group accumulators: (g0 + g2) + (g1 + g3), then hsum8.
inline float reduce_groups(const __m256* g) {
  return hsum8(_mm256_add_ps(_mm256_add_ps(g[0], g[2]), _mm256_add_ps(g[1], g[3])));
}

template <int kBytes, __m256i (*Weights)(const uint8_t*)>
float dot_32(const uint8_t* row, const ActivationRow& a) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t b = 0;
  for (; b + 3 < a.blocks; b += 4) {
    prefetch_step<4 * kBytes>(row + kBytes * b);
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const uint8_t* p = row + kBytes * (b + j);
      const __m256 s = _mm256_set1_ps(half_to_float(p) * a.d[b + j]);
      acc[j] = fma_lanes(lane_dot(Weights(p), load32(a.q + 32 * (b + j))), s, acc[j]);
    }
  }
  for (int j = 0; b + j < a.blocks; ++j) {  // at most 3 blocks, groups 0..2
    const uint8_t* p = row + kBytes * (b + j);
    const __m256 s = _mm256_set1_ps(half_to_float(p) * a.d[b + j]);
    acc[j] = fma_lanes(lane_dot(Weights(p), load32(a.q + 32 * (b + j))), s, acc[j]);
  }
  return reduce_groups(acc);
}

inline __m256i q8_0_weights(const uint8_t* p) { return load32(p + 2); }

// 16 bytes of packed nibbles -> bytes 0..15 the low nibbles, 16..31 the high ones (unsigned).
inline __m256i nibbles(const uint8_t* qs) {
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m = _mm_set1_epi8(0x0F);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(x, 4), m), _mm_and_si128(x, m));
}

// Q5_0: byte j = nibble j | (bit j of qh) << 4, minus 16. With the bit clear that is the nibble
// with the top four bits set (nibble - 16 in two's complement); with it set, the nibble itself.
inline __m256i q5_0_weights(const uint8_t* p) {
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(load_u32(p + 2))),
      _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_or_si256(nibbles(p + 6), _mm256_andnot_si256(set, _mm256_set1_epi8(static_cast<char>(0xF0))));
}

// Q4_1: unsigned nibbles times activations with scale d*dx in the block-group lanes; the min
// term m*dx*sum(a) of block b goes to lane b % 8 of `mins` (scalar fused multiply-adds).
inline void q4_1_block(const uint8_t* row, const ActivationRow& a, int64_t b, __m256& acc, float* mins) {
  const uint8_t* p = row + kQ4_1Bytes * b;
  const float dx = a.d[b];
  const __m256 s = _mm256_set1_ps(half_to_float(p) * dx);
  acc = fma_lanes(lane_dot_u4(nibbles(p + 4), load32(a.q + 32 * b)), s, acc);
  float& slot = mins[b % 8];
  slot = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(static_cast<float>(a.sum[b])), _mm_set_ss(half_to_float(p + 2) * dx),
                                    _mm_set_ss(slot)));
}

float dot_q4_1(const uint8_t* row, const ActivationRow& a) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  alignas(32) float mins[8] = {};
  int64_t b = 0;
  for (; b + 3 < a.blocks; b += 4) {
    prefetch_step<4 * kQ4_1Bytes>(row + kQ4_1Bytes * b);
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) q4_1_block(row, a, b + j, acc[j], mins);
  }
  for (int j = 0; b + j < a.blocks; ++j) q4_1_block(row, a, b + j, acc[j], mins);
  return reduce_groups(acc) + hsum8(_mm256_load_ps(mins));
}

// Q4_K/Q6_K on the super-block activations (matmul.h): the exact int32 sums of a super-block
// from maddubs (unsigned weights <= 63 times |a| <= 127: pair sums <= 16002, no saturation) and
// madd with the broadcast sub-block scale, summed across lanes; then the scalar float steps of
// dot_scalar.cpp.
inline float fma_ss(float a, float b, float c) {
  return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}
inline int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// kT tokens (acts[t], out[t * stride]) with one weight row: the weights of a super-block are
// unpacked once for all of them; each token's integer and float steps are those of kT == 1.
template <int kT>
void q4_k_tokens(const uint8_t* row, const ActivationRow* acts, float* out, int64_t stride) {
  float acc[kT], macc[kT];
  for (int t = 0; t < kT; ++t) acc[t] = macc[t] = 0.0f;
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (int64_t sb = 0; sb < acts[0].super_blocks; ++sb) {
    const uint8_t* p = row + kQ4_KBytes * sb;
    prefetch_step<kQ4_KBytes>(p);
    // The 8 scales and mins at once (GGML's get_scale_min_k4 for every j, as llama.cpp does it).
    uint32_t utmp[4];
    std::memcpy(utmp, p + kQ4_KScales, 12);
    utmp[3] = ((utmp[2] >> 4) & 0x0F0F0F0F) | (((utmp[1] >> 6) & 0x03030303) << 4);
    const uint32_t mins_lo = utmp[1] & 0x3F3F3F3F;
    utmp[1] = (utmp[2] & 0x0F0F0F0F) | (((utmp[0] >> 6) & 0x03030303) << 4);
    utmp[2] = mins_lo;
    utmp[0] &= 0x3F3F3F3F;
    uint8_t sc[8];
    std::memcpy(sc, utmp, 8);
    // Words 2j, 2j+1: m_j, against the 16-element sums 2j, 2j+1 (msum in one madd).
    const __m256i mpair = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(
        _mm_loadl_epi64(reinterpret_cast<const __m128i*>(utmp + 2)),
        _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7)));
    __m256i u[8], s[8];
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {  // sub-blocks 2c (low nibbles) and 2c+1 (high)
      const __m256i qs = load32(p + kQ4_KQs + 32 * c);
      u[2 * c] = _mm256_and_si256(qs, low4);
      u[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(qs, 4), low4);
    }
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) s[j] = _mm256_set1_epi16(static_cast<short>(sc[j]));
    const float d = half_to_float(p), dmin = half_to_float(p + 2);
#pragma GCC unroll 4
    for (int t = 0; t < kT; ++t) {
      const int8_t* q = acts[t].kq + 256 * sb;
      const int32_t msum = hsum_epi32(_mm256_madd_epi16(mpair, load32(acts[t].ksum + 16 * sb)));
      __m256i iacc = _mm256_setzero_si256();
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {
        iacc = _mm256_add_epi32(iacc, _mm256_madd_epi16(_mm256_maddubs_epi16(u[j], load32(q + 32 * j)), s[j]));
      }
      const float da = acts[t].kd[sb];
      acc[t] = fma_ss(static_cast<float>(hsum_epi32(iacc)), d * da, acc[t]);
      macc[t] = fma_ss(static_cast<float>(msum), -(dmin * da), macc[t]);
    }
  }
  for (int t = 0; t < kT; ++t) out[t * stride] = acc[t] + macc[t];
}

template <int kT>
void q6_k_tokens(const uint8_t* row, const ActivationRow* acts, float* out, int64_t stride) {
  float acc[kT];
  for (int t = 0; t < kT; ++t) acc[t] = 0.0f;
  const __m256i low4 = _mm256_set1_epi8(0x0F), low2 = _mm256_set1_epi8(3);
  for (int64_t sb = 0; sb < acts[0].super_blocks; ++sb) {
    const uint8_t* p = row + kQ6_KBytes * sb;
    prefetch_step<kQ6_KBytes>(p);
    const auto* sc = reinterpret_cast<const int8_t*>(p + kQ6_KScales);
    // The offset -32: -32 * sum_i sc_i * ksum_i (|ksum| <= 2032, |sc| <= 128: exact in madd).
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
    __m256i u[8], s[8];
    for (int half = 0; half < 2; ++half) {
      const __m256i ql0 = load32(p + 64 * half), ql1 = load32(p + 64 * half + 32);
      const __m256i qh = load32(p + kQ6_KQh + 32 * half);
      const __m256i lo[4] = {_mm256_and_si256(ql0, low4), _mm256_and_si256(ql1, low4),
                             _mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4),
                             _mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4)};
#pragma GCC unroll 4
      for (int quarter = 0; quarter < 4; ++quarter) {  // elements 32*jb.., sub-blocks 2jb, 2jb+1
        const int jb = 4 * half + quarter;
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * quarter), low2);
        u[jb] = _mm256_or_si256(lo[quarter], _mm256_slli_epi16(hi, 4));
        s[jb] = _mm256_set_m128i(_mm_set1_epi16(sc[2 * jb + 1]), _mm_set1_epi16(sc[2 * jb]));
      }
    }
    const float d = half_to_float(p + kQ6_KD);
#pragma GCC unroll 4
    for (int t = 0; t < kT; ++t) {
      const int8_t* q = acts[t].kq + 256 * sb;
      __m256i iacc = _mm256_sub_epi32(_mm256_setzero_si256(),
                                      _mm256_slli_epi32(_mm256_madd_epi16(sc16, load32(acts[t].ksum + 16 * sb)), 5));
#pragma GCC unroll 8
      for (int jb = 0; jb < 8; ++jb) {
        iacc = _mm256_add_epi32(iacc, _mm256_madd_epi16(_mm256_maddubs_epi16(u[jb], load32(q + 32 * jb)), s[jb]));
      }
      acc[t] = fma_ss(static_cast<float>(hsum_epi32(iacc)), d * acts[t].kd[sb], acc[t]);
    }
  }
  for (int t = 0; t < kT; ++t) out[t * stride] = acc[t];
}

float dot_q4_k(const uint8_t* row, const ActivationRow& a) {
  float out;
  q4_k_tokens<1>(row, &a, &out, 1);
  return out;
}

float dot_q6_k(const uint8_t* row, const ActivationRow& a) {
  float out;
  q6_k_tokens<1>(row, &a, &out, 1);
  return out;
}

// n tokens in groups of 4 (then 2, 1).
template <void (*K4)(const uint8_t*, const ActivationRow*, float*, int64_t),
          void (*K2)(const uint8_t*, const ActivationRow*, float*, int64_t),
          void (*K1)(const uint8_t*, const ActivationRow*, float*, int64_t)>
void dot_tokens(const uint8_t* row, const ActivationRow* acts, int64_t n, float* out, int64_t stride) {
  int64_t t = 0;
  for (; t + 4 <= n; t += 4) K4(row, acts + t, out + t * stride, stride);
  for (; t + 2 <= n; t += 2) K2(row, acts + t, out + t * stride, stride);
  for (; t < n; ++t) K1(row, acts + t, out + t * stride, stride);
}

inline __m256 load8_f32(const uint8_t* w, int64_t e) {
  return _mm256_loadu_ps(reinterpret_cast<const float*>(w) + e);
}
inline __m256 load8_f16(const uint8_t* w, int64_t e) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * e)));
}
inline __m256 load8_bf16(const uint8_t* w, int64_t e) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * e));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// Lane e % 64 in 8 accumulators; the tail is padded into a buffer and blended so that unused
// lanes are left untouched (exactly as the scalar loop leaves them).
template <__m256 (*Load8)(const uint8_t*, int64_t), int kElemBytes>
float float_dot(const uint8_t* w, const float* x, int64_t k) {
  __m256 acc[8];
  for (auto& v : acc) v = _mm256_setzero_ps();
  int64_t e = 0;
  for (; e + 64 <= k; e += 64) {
    prefetch_step<64 * kElemBytes>(w + kElemBytes * e);
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) acc[j] = _mm256_fmadd_ps(Load8(w, e + 8 * j), _mm256_loadu_ps(x + e + 8 * j), acc[j]);
  }
  if (e < k) {
    const int rem = static_cast<int>(k - e);
    alignas(32) uint8_t wt[64 * 4] = {};
    alignas(32) float xt[64] = {};
    std::memcpy(wt, w + kElemBytes * e, static_cast<size_t>(rem) * kElemBytes);
    std::memcpy(xt, x + e, static_cast<size_t>(rem) * sizeof(float));
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      const __m256 mask = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(rem - 8 * j), idx));
      const __m256 next = _mm256_fmadd_ps(Load8(wt, 8 * j), _mm256_load_ps(xt + 8 * j), acc[j]);
      acc[j] = _mm256_blendv_ps(acc[j], next, mask);
    }
  }
  for (int j = 0; j < 4; ++j) acc[j] = _mm256_add_ps(acc[j], acc[j + 4]);  // lane i += lane i+32
  acc[0] = _mm256_add_ps(acc[0], acc[2]);                                    // += i+16
  acc[1] = _mm256_add_ps(acc[1], acc[3]);
  return hsum8(_mm256_add_ps(acc[0], acc[1]));                               // += i+8, ...
}

}  // namespace

const DotKernels& dot_kernels_avx2() {
  static const DotKernels k{float_dot<load8_f32, 4>,
                            float_dot<load8_f16, 2>,
                            float_dot<load8_bf16, 2>,
                            dot_32<kQ8_0Bytes, q8_0_weights>,
                            dot_32<kQ4_0Bytes, q4_0_weights>,
                            dot_q4_k,
                            dot_q6_k,
                            dot_q4_1,
                            dot_32<kQ5_0Bytes, q5_0_weights>,
                            false,
                            nullptr,
                            dot_tokens<q4_k_tokens<4>, q4_k_tokens<2>, q4_k_tokens<1>>,
                            dot_tokens<q6_k_tokens<4>, q6_k_tokens<2>, q6_k_tokens<1>>};
  return k;
}

}  // namespace alspec::kernels

#pragma GCC pop_options
