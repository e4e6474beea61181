// GCC 12 reports bogus (maybe-)uninitialized warnings inside its own AVX-512 intrinsic headers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "kernels/cpu/quantized_activation.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "alspec/kernels/cpu_features.h"

namespace alspec::kernels {
namespace {

// AVX-512 twin of quantize_block_scalar: the same float operations in the same order per element
// (max/min with the scalar's NaN choices: vmaxps/vminps return the second operand on NaN), so the
// results are bitwise equal; the block maximum is order-free.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq"))) void quantize_blocks_avx512(const float* x, int64_t blocks,
                                                                                         int8_t* q, float* d,
                                                                                         int32_t* sum) {
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
  const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f), magic = _mm512_set1_ps(12582912.0f);
  for (int64_t b = 0; b < blocks; ++b) {
    const __m512 x0 = _mm512_loadu_ps(x + 32 * b), x1 = _mm512_loadu_ps(x + 32 * b + 16);
    // max(|x|, acc): a NaN |x| leaves acc, as std::max(amax, fabs(x)) does.
    __m512 m = _mm512_max_ps(_mm512_and_ps(x0, abs_mask), _mm512_setzero_ps());
    m = _mm512_max_ps(_mm512_and_ps(x1, abs_mask), m);
    const float amax = _mm512_reduce_max_ps(m);
    const float dd = amax / 127.0f;
    const float id = dd != 0.0f ? 1.0f / dd : 0.0f;
    const __m512 vid = _mm512_set1_ps(id);
    __m512i qi[2];
    for (int h = 0; h < 2; ++h) {
      // std::max(-127, v) keeps -127 for NaN v (vmaxps returns its second operand), then std::min(127, .).
      const __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(h ? x1 : x0, vid), lo), hi);
      const __m512 r = _mm512_sub_ps(_mm512_add_ps(v, magic), magic);
      qi[h] = _mm512_cvttps_epi32(r);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 32 * b + 16 * h), _mm512_cvtepi32_epi8(qi[h]));
    }
    d[b] = dd;
    sum[b] = _mm512_reduce_add_epi32(_mm512_add_epi32(qi[0], qi[1]));
  }
}

// AVX2 pieces shared by the 32-element and the super-block quantisers.
__attribute__((target("avx2,fma"))) inline int32_t hsum_epi32_avx2(__m256i v) {
  __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
  return _mm_cvtsi128_si32(s4);
}

// The largest of 8 lanes (order-free; vmaxps keeps its second operand on NaN, as everywhere here).
__attribute__((target("avx2,fma"))) inline float hmax_ps_avx2(__m256 m) {
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  return _mm_cvtss_f32(m4);
}

// 32 values x[0..3] times vid, clamped to [-127, 127] and rounded half to even as
// quantize_block_scalar, into qi and as bytes into q.
__attribute__((target("avx2,fma"))) inline void quantize32_avx2(const __m256 x[4], __m256 vid, int8_t* q,
                                                                  __m256i qi[4]) {
  const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f), magic = _mm256_set1_ps(12582912.0f);
  for (int i = 0; i < 4; ++i) {
    const __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(x[i], vid), lo), hi);
    qi[i] = _mm256_cvttps_epi32(_mm256_sub_ps(_mm256_add_ps(v, magic), magic));
  }
  // |q| <= 127: the saturating packs are exact; they interleave 128-bit lanes, the permute undoes it.
  const __m256i p16 = _mm256_packs_epi32(qi[0], qi[1]), p16b = _mm256_packs_epi32(qi[2], qi[3]);
  const __m256i p8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p16, p16b), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), p8);
}

// AVX2 twin of quantize_block_scalar, as quantize_blocks_avx512 (vmaxps/vminps pick the second
// operand on NaN in both widths), so the results are bitwise equal.
__attribute__((target("avx2,fma"))) void quantize_blocks_avx2(const float* x, int64_t blocks, int8_t* q, float* d,
                                                               int32_t* sum) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  for (int64_t b = 0; b < blocks; ++b) {
    __m256 xv[4];
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) {
      xv[i] = _mm256_loadu_ps(x + 32 * b + 8 * i);
      m = _mm256_max_ps(_mm256_and_ps(xv[i], abs_mask), m);
    }
    const float dd = hmax_ps_avx2(m) / 127.0f;
    const float id = dd != 0.0f ? 1.0f / dd : 0.0f;
    __m256i qi[4];
    quantize32_avx2(xv, _mm256_set1_ps(id), q + 32 * b, qi);
    d[b] = dd;
    sum[b] = hsum_epi32_avx2(_mm256_add_epi32(_mm256_add_epi32(qi[0], qi[1]), _mm256_add_epi32(qi[2], qi[3])));
  }
}

// The super-block form (Q4_K/Q6_K products): the same operations as the 32-element blocks over
// 256 elements, and the exact sums of each 16 quantised values. AVX-512 twin of
// quantize_super_scalar (bitwise equal, as quantize_blocks_avx512).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq"))) void quantize_super_avx512(const float* x, int64_t sbs,
                                                                                        int8_t* q, float* d,
                                                                                        int16_t* sum) {
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
  const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f), magic = _mm512_set1_ps(12582912.0f);
  for (int64_t s = 0; s < sbs; ++s) {
    const float* xs = x + 256 * s;
    __m512 m = _mm512_setzero_ps();
    for (int i = 0; i < 16; ++i) m = _mm512_max_ps(_mm512_and_ps(_mm512_loadu_ps(xs + 16 * i), abs_mask), m);
    const float amax = _mm512_reduce_max_ps(m);
    const float dd = amax / 127.0f;
    const float id = dd != 0.0f ? 1.0f / dd : 0.0f;
    const __m512 vid = _mm512_set1_ps(id);
    for (int i = 0; i < 16; ++i) {
      const __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_loadu_ps(xs + 16 * i), vid), lo), hi);
      const __m512i qi = _mm512_cvttps_epi32(_mm512_sub_ps(_mm512_add_ps(v, magic), magic));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 256 * s + 16 * i), _mm512_cvtepi32_epi8(qi));
      sum[16 * s + i] = static_cast<int16_t>(_mm512_reduce_add_epi32(qi));
    }
    d[s] = dd;
  }
}

// AVX2 twin of quantize_super_scalar.
__attribute__((target("avx2,fma"))) void quantize_super_avx2(const float* x, int64_t sbs, int8_t* q, float* d,
                                                              int16_t* sum) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  for (int64_t s = 0; s < sbs; ++s) {
    const float* xs = x + 256 * s;
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < 32; ++i) m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(xs + 8 * i), abs_mask), m);
    const float dd = hmax_ps_avx2(m) / 127.0f;
    const float id = dd != 0.0f ? 1.0f / dd : 0.0f;
    const __m256 vid = _mm256_set1_ps(id);
    for (int c = 0; c < 8; ++c) {  // 32 elements at a time
      const __m256 xv[4] = {_mm256_loadu_ps(xs + 32 * c), _mm256_loadu_ps(xs + 32 * c + 8),
                            _mm256_loadu_ps(xs + 32 * c + 16), _mm256_loadu_ps(xs + 32 * c + 24)};
      __m256i qi[4];
      quantize32_avx2(xv, vid, q + 256 * s + 32 * c, qi);
      sum[16 * s + 2 * c] = static_cast<int16_t>(hsum_epi32_avx2(_mm256_add_epi32(qi[0], qi[1])));
      sum[16 * s + 2 * c + 1] = static_cast<int16_t>(hsum_epi32_avx2(_mm256_add_epi32(qi[2], qi[3])));
    }
    d[s] = dd;
  }
}

void quantize_super_scalar(const float* x, int64_t sbs, int8_t* q, float* d, int16_t* sum) {
  for (int64_t s = 0; s < sbs; ++s) {
    const float* xs = x + 256 * s;
    float amax = 0.0f;
    for (int j = 0; j < 256; ++j) amax = std::max(amax, std::fabs(xs[j]));
    const float dd = amax / 127.0f;
    const float id = dd != 0.0f ? 1.0f / dd : 0.0f;
    for (int i = 0; i < 16; ++i) {
      int32_t acc = 0;
      for (int j = 16 * i; j < 16 * i + 16; ++j) {
        const float v = std::min(127.0f, std::max(-127.0f, xs[j] * id));
        const float r = (v + 12582912.0f) - 12582912.0f;  // round half to even, as quantize_row_scalar
        q[256 * s + j] = static_cast<int8_t>(r);
        acc += q[256 * s + j];
      }
      sum[16 * s + i] = static_cast<int16_t>(acc);
    }
    d[s] = dd;
  }
}

}  // namespace

void QuantizedActivations::prepare(int64_t n, int64_t k, bool with_groups, bool with_super_blocks,
                                   bool with_blocks) {
  blocks_ = k / 32;
  super_ = with_super_blocks;
  blocks_on_ = with_blocks || with_groups;
  if (super_) {
    kq_.resize(static_cast<size_t>(n * (k / 256) * 256));
    kd_.resize(static_cast<size_t>(n * (k / 256)));
    ksum_.resize(static_cast<size_t>(n * (k / 256) * 16));
  }
  q_.resize(static_cast<size_t>(n * k));
  d_.resize(static_cast<size_t>(n * blocks_));
  sum_.resize(static_cast<size_t>(n * blocks_));
  groups_.assign(with_groups ? static_cast<size_t>(n * groups_per_row() * kGroupBytes) : 0, 0);
}

void QuantizedActivations::quantize_row(int64_t t, const float* x) {
  const int64_t sbs = blocks_ / 8;
  if (simd_level() >= SimdLevel::kAvx512) {
    if (blocks_on_) {
      quantize_blocks_avx512(x, blocks_, q_.data() + t * blocks_ * 32, d_.data() + t * blocks_, sum_.data() + t * blocks_);
    }
    if (super_) quantize_super_avx512(x, sbs, kq_.data() + t * sbs * 256, kd_.data() + t * sbs, ksum_.data() + t * sbs * 16);
  } else if (simd_level() >= SimdLevel::kAvx2) {
    if (blocks_on_) {
      quantize_blocks_avx2(x, blocks_, q_.data() + t * blocks_ * 32, d_.data() + t * blocks_, sum_.data() + t * blocks_);
    }
    if (super_) quantize_super_avx2(x, sbs, kq_.data() + t * sbs * 256, kd_.data() + t * sbs, ksum_.data() + t * sbs * 16);
  } else {
    quantize_row_scalar(t, x);
  }
  if (!groups_.empty()) build_groups(t);
}

void QuantizedActivations::quantize_row_scalar(int64_t t, const float* x) {
  for (int64_t b = t * blocks_; blocks_on_ && b < (t + 1) * blocks_; ++b) {
    const float* xb = x + 32 * (b - t * blocks_);
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int8_t* qb = q_.data() + 32 * b;
    int32_t s = 0;
    for (int j = 0; j < 32; ++j) {
      // Round to nearest even by adding and removing 1.5*2^23 (exact for |v| < 2^22, like
      // nearbyint but without a library call); the clamp guards the last ulp of |x*id| <= 127.
      const float v = std::min(127.0f, std::max(-127.0f, xb[j] * id));
      const float r = (v + 12582912.0f) - 12582912.0f;
      qb[j] = static_cast<int8_t>(r);
      s += qb[j];
    }
    d_[static_cast<size_t>(b)] = d;
    sum_[static_cast<size_t>(b)] = s;
  }
  if (super_) {
    const int64_t sbs = blocks_ / 8;
    quantize_super_scalar(x, sbs, kq_.data() + t * sbs * 256, kd_.data() + t * sbs, ksum_.data() + t * sbs * 16);
  }
}

void QuantizedActivations::build_groups(int64_t t) {
  const int64_t gpr = groups_per_row();
  {
    for (int64_t g = 0; g < gpr; ++g) {
      uint8_t* out = groups_.data() + (t * gpr + g) * kGroupBytes;
      int32_t init_lo[16] = {}, init_hi[16] = {};
      float dx[16] = {};
      for (int j = 0; j < 4 && 4 * g + j < blocks_; ++j) {
        const int64_t b = t * blocks_ + 4 * g + j;
        const int8_t* q = q_.data() + 32 * b;
        std::memcpy(out + 16 * j, q, 16);
        std::memcpy(out + 64 + 16 * j, q + 16, 16);
        for (int i = 0; i < 4; ++i) {
          for (int e = 0; e < 4; ++e) {
            init_lo[4 * j + i] -= 8 * q[4 * i + e];
            init_hi[4 * j + i] -= 8 * q[16 + 4 * i + e];
          }
          dx[4 * j + i] = d_[static_cast<size_t>(b)];
        }
      }
      std::memcpy(out + 128, init_lo, 64);
      std::memcpy(out + 192, init_hi, 64);
      std::memcpy(out + 256, dx, 64);
    }
  }
}

}  // namespace alspec::kernels
