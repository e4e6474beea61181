// AVX2 row kernel (head_dim % 8 == 0): the AVX-512 kernel's structure at 8 lanes, for CPUs
// without AVX-512.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "alspec/core/half.h"
#include "alspec/kernels/attention_state.h"
#include "kernels/cpu/attention_rows.h"

#define ALSPEC_TARGET_AVX2 __attribute__((target("avx2,f16c,fma")))

namespace alspec::attention_detail {
namespace {

// e^x for x <= 0 (Cephes expf polynomial, ~2 ulp); exactly 1 at 0. Inputs below -87.3 give ~0.
ALSPEC_TARGET_AVX2 inline __m256 exp_ps(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
  x = _mm256_min_ps(x, _mm256_set1_ps(88.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), r);
  y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
  // 2^n built in the exponent field; n is in [-126, 127] after the clamps.
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

ALSPEC_TARGET_AVX2 inline float reduce_add(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

// Decodes nt rows into dst [nt][d]; returns the float rows to use (F32 rows are used in place).
ALSPEC_TARGET_AVX2 const float* decode_tile(DType type, const uint8_t* src, size_t row_bytes, int nt, int d,
                                            float* dst) {
  switch (type) {
    case DType::F32:
      return reinterpret_cast<const float*>(src);
    case DType::F16:
      for (int t = 0; t < nt; ++t) {
        const uint8_t* row = src + static_cast<size_t>(t) * row_bytes;
        float* out = dst + static_cast<size_t>(t) * d;
        for (int j = 0; j < d; j += 8) {
          _mm256_storeu_ps(out + j, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * j))));
        }
      }
      return dst;
    case DType::BF16:
      for (int t = 0; t < nt; ++t) {
        const uint8_t* row = src + static_cast<size_t>(t) * row_bytes;
        float* out = dst + static_cast<size_t>(t) * d;
        for (int j = 0; j < d; j += 8) {
          const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * j)));
          _mm256_storeu_ps(out + j, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
        }
      }
      return dst;
    case DType::Q8_0:
      for (int t = 0; t < nt; ++t) {
        const uint8_t* row = src + static_cast<size_t>(t) * row_bytes;
        float* out = dst + static_cast<size_t>(t) * d;
        for (int b = 0; b < d / 32; ++b) {
          const uint8_t* block = row + 34 * b;
          uint16_t dh;
          std::memcpy(&dh, block, 2);
          const __m256 scale = _mm256_set1_ps(fp16_to_fp32(dh));
          for (int i = 0; i < 4; ++i) {
            const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(block + 2 + 8 * i)));
            _mm256_storeu_ps(out + 32 * b + 8 * i, _mm256_mul_ps(scale, _mm256_cvtepi32_ps(q)));
          }
        }
      }
      return dst;
    default:
      return dst;  // rejected before dispatch
  }
}

// acc[j .. j + 8*NV) += sum_t p[t] * v[t][j ..]
template <int NV>
ALSPEC_TARGET_AVX2 inline void pv_block(float* acc, const float* p, const float* v, int nt, int d) {
  __m256 a[NV];
  for (int i = 0; i < NV; ++i) a[i] = _mm256_loadu_ps(acc + 8 * i);
  for (int t = 0; t < nt; ++t) {
    const __m256 pt = _mm256_set1_ps(p[t]);
    const float* vt = v + static_cast<size_t>(t) * d;
    for (int i = 0; i < NV; ++i) a[i] = _mm256_fmadd_ps(pt, _mm256_loadu_ps(vt + 8 * i), a[i]);
  }
  for (int i = 0; i < NV; ++i) _mm256_storeu_ps(acc + 8 * i, a[i]);
}

}  // namespace

ALSPEC_TARGET_AVX2 void accumulate_rows_avx2(const GroupRows& g, int64_t begin, int64_t end, GroupState s,
                                             float* scratch) {
  const int d = g.head_dim;
  constexpr int T = kAttentionTileRows;
  static_assert(T % 8 == 0);
  float* kbuf = scratch;
  float* vbuf = kbuf + static_cast<size_t>(T) * d;
  float* p = vbuf + static_cast<size_t>(T) * d;
  for (int64_t r0 = begin; r0 < end; r0 += T) {
    const int nt = static_cast<int>(std::min<int64_t>(T, end - r0));
    const float* kf = kbuf;
    if (g.k_blocks) {
      load_key_tile(g, r0, nt, kbuf);
    } else {
      kf = decode_tile(g.type, g.k + static_cast<size_t>(r0) * g.row_bytes, g.row_bytes, nt, d, kbuf);
    }
    for (int h = 0; h < g.n_rep; ++h) {
      const float* q = g.q + static_cast<size_t>(h) * d;
      float* ph = p + static_cast<size_t>(h) * T;
      for (int t = 0; t < nt; ++t) {
        const float* k = kf + static_cast<size_t>(t) * d;
        __m256 a0 = _mm256_setzero_ps();
        __m256 a1 = _mm256_setzero_ps();
        int j = 0;
        for (; j + 16 <= d; j += 16) {
          a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + j), _mm256_loadu_ps(k + j), a0);
          a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + j + 8), _mm256_loadu_ps(k + j + 8), a1);
        }
        if (j < d) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + j), _mm256_loadu_ps(k + j), a0);
        ph[t] = reduce_add(_mm256_add_ps(a0, a1)) * g.scale;
      }
      for (int t = nt; t < T; ++t) ph[t] = 0.0f;
    }
    const float* vf = decode_tile(g.type, g.v + static_cast<size_t>(r0) * g.row_bytes, g.row_bytes, nt, d, vbuf);
    for (int h = 0; h < g.n_rep; ++h) {
      float* ph = p + static_cast<size_t>(h) * T;
      float tile_max = kEmptyStateMax;
      for (int t = 0; t < nt; ++t) tile_max = std::max(tile_max, ph[t]);
      const float m_old = s.m[h];
      const float m_new = std::max(m_old, tile_max);
      const __m256 mv = _mm256_set1_ps(m_new);
      for (int t = 0; t < T; t += 8) {
        _mm256_storeu_ps(ph + t, exp_ps(_mm256_sub_ps(_mm256_loadu_ps(ph + t), mv)));
      }
      float sum = 0.0f;
      for (int t = 0; t < nt; ++t) sum += ph[t];
      float alpha = 0.0f;
      if (m_old != kEmptyStateMax) {
        alignas(32) float tmp[8] = {m_old - m_new};
        _mm256_store_ps(tmp, exp_ps(_mm256_load_ps(tmp)));
        alpha = tmp[0];
      }
      float* acc = s.acc + static_cast<size_t>(h) * d;
      if (alpha != 1.0f) {
        const __m256 av = _mm256_set1_ps(alpha);
        for (int j = 0; j < d; j += 8) _mm256_storeu_ps(acc + j, _mm256_mul_ps(av, _mm256_loadu_ps(acc + j)));
      }
      s.l[h] = s.l[h] * alpha + sum;
      s.m[h] = m_new;
      int j = 0;
      for (; j + 32 <= d; j += 32) pv_block<4>(acc + j, ph, vf + j, nt, d);
      switch ((d - j) / 8) {
        case 3: pv_block<3>(acc + j, ph, vf + j, nt, d); break;
        case 2: pv_block<2>(acc + j, ph, vf + j, nt, d); break;
        case 1: pv_block<1>(acc + j, ph, vf + j, nt, d); break;
        default: break;
      }
    }
  }
}

}  // namespace alspec::attention_detail
