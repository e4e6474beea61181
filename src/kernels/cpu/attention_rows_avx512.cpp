// AVX-512 row kernel (head_dim % 16 == 0): F16 decoded by vcvtph2ps, BF16 by shifting, Q8_0 as
// scale * int8; FMA dot products, vectorised exp, next tile prefetched. head_dim 64 and 128 decode
// K/V in registers (fused); other head dims decode tiles to float in L1 first.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "alspec/core/half.h"
#include "alspec/kernels/attention_state.h"
#include "kernels/cpu/attention_rows.h"

// GCC 12 reports the self-initialised _mm512_undefined_*() inside the intrinsics headers as
// "maybe uninitialized" when they are inlined; a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#define ALSPEC_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,f16c,fma")))

namespace alspec::attention_detail {
namespace {

// e^x for x <= 0 (Cephes expf polynomial, ~2 ulp); exactly 1 at 0. Inputs below -87.3 give ~0.
ALSPEC_TARGET_AVX512 inline __m512 exp_ps(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
  x = _mm512_min_ps(x, _mm512_set1_ps(88.3f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 y = _mm512_set1_ps(1.9875691500e-4f);
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
  y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), r);
  y = _mm512_add_ps(y, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(y, n);
}

// Decodes nt rows into dst [nt][d]; returns the float rows to use (F32 rows are used in place).
ALSPEC_TARGET_AVX512 const float* decode_tile(DType type, const uint8_t* src, size_t row_bytes, int nt, int d,
                                              float* dst) {
  switch (type) {
    case DType::F32:
      return reinterpret_cast<const float*>(src);
    case DType::F16:
      for (int t = 0; t < nt; ++t) {
        const uint8_t* row = src + static_cast<size_t>(t) * row_bytes;
        float* out = dst + static_cast<size_t>(t) * d;
        for (int j = 0; j < d; j += 16) {
          _mm512_storeu_ps(out + j, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * j))));
        }
      }
      return dst;
    case DType::BF16:
      for (int t = 0; t < nt; ++t) {
        const uint8_t* row = src + static_cast<size_t>(t) * row_bytes;
        float* out = dst + static_cast<size_t>(t) * d;
        for (int j = 0; j < d; j += 16) {
          const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * j)));
          _mm512_storeu_ps(out + j, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
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
          const __m512 scale = _mm512_set1_ps(fp16_to_fp32(dh));
          const __m512i lo = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2)));
          const __m512i hi = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 18)));
          _mm512_storeu_ps(out + 32 * b, _mm512_mul_ps(scale, _mm512_cvtepi32_ps(lo)));
          _mm512_storeu_ps(out + 32 * b + 16, _mm512_mul_ps(scale, _mm512_cvtepi32_ps(hi)));
        }
      }
      return dst;
    default:
      return dst;  // rejected before dispatch
  }
}

// acc[j .. j + 16*NV) += sum_t p[t] * v[t][j ..]
template <int NV>
ALSPEC_TARGET_AVX512 inline void pv_block(float* acc, const float* p, const float* v, int nt, int d) {
  __m512 a[NV];
  for (int i = 0; i < NV; ++i) a[i] = _mm512_loadu_ps(acc + 16 * i);
  for (int t = 0; t < nt; ++t) {
    const __m512 pt = _mm512_set1_ps(p[t]);
    const float* vt = v + static_cast<size_t>(t) * d;
    for (int i = 0; i < NV; ++i) a[i] = _mm512_fmadd_ps(pt, _mm512_loadu_ps(vt + 16 * i), a[i]);
  }
  for (int i = 0; i < NV; ++i) _mm512_storeu_ps(acc + 16 * i, a[i]);
}

// Online-softmax step of one head over a tile: p[0..nt) holds the scaled scores on entry and
// e^(s - m_new) on exit; l is rescaled to the new running max and the factor for the accumulator,
// e^(m_old - m_new) (0 for an empty state), is returned: the fused kernels apply it when they next
// load the accumulator for p·V, so the softmax step does not touch it.
ALSPEC_TARGET_AVX512 inline float softmax_probs(float* p, int nt, float* m, float* l) {
  static_assert(kAttentionTileRows == 32);
  // Lanes t >= nt are masked out of the max and the sum (vector reductions: no long scalar chains).
  const __mmask16 m0 = static_cast<__mmask16>(nt >= 16 ? 0xFFFF : (1u << nt) - 1);
  const __mmask16 m1 = static_cast<__mmask16>(nt >= 32 ? 0xFFFF : nt <= 16 ? 0 : (1u << (nt - 16)) - 1);
  const __m512 ninf = _mm512_set1_ps(kEmptyStateMax);
  const __m512 s0 = _mm512_mask_loadu_ps(ninf, m0, p);
  const __m512 s1 = _mm512_mask_loadu_ps(ninf, m1, p + 16);
  const float tile_max = _mm512_reduce_max_ps(_mm512_max_ps(s0, s1));
  const float m_old = *m;
  const float m_new = std::max(m_old, tile_max);
  const __m512 mv = _mm512_set1_ps(m_new);
  const __m512 e0 = _mm512_maskz_mov_ps(m0, exp_ps(_mm512_sub_ps(s0, mv)));
  const __m512 e1 = _mm512_maskz_mov_ps(m1, exp_ps(_mm512_sub_ps(s1, mv)));
  _mm512_storeu_ps(p, e0);
  _mm512_storeu_ps(p + 16, e1);
  const float sum = _mm512_reduce_add_ps(_mm512_add_ps(e0, e1));
  float alpha = 0.0f;
  if (m_old != kEmptyStateMax) alpha = _mm_cvtss_f32(_mm512_castps512_ps128(exp_ps(_mm512_set1_ps(m_old - m_new))));
  *l = *l * alpha + sum;
  *m = m_new;
  return alpha;
}

// Per-head results of 4 vectors reduced at once: lane h of the returned xmm is op over all lanes of
// v[h] (op = max or add), via one shuffle tree instead of four reductions.
template <bool kMax>
ALSPEC_TARGET_AVX512 inline __m128 reduce4(const __m512* v) {
  auto op = [](__m512 a, __m512 b) __attribute__((target("avx512f"))) {
    if constexpr (kMax) {
      return _mm512_max_ps(a, b);
    } else {
      return _mm512_add_ps(a, b);
    }
  };
  const __m512 t0 = op(_mm512_unpacklo_ps(v[0], v[1]), _mm512_unpackhi_ps(v[0], v[1]));
  const __m512 t1 = op(_mm512_unpacklo_ps(v[2], v[3]), _mm512_unpackhi_ps(v[2], v[3]));
  const __m512 u = op(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t0), _mm512_castps_pd(t1))),
                      _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t0), _mm512_castps_pd(t1))));
  const __m512 w = op(u, _mm512_shuffle_f32x4(u, u, _MM_SHUFFLE(1, 0, 3, 2)));
  const __m512 x = op(w, _mm512_shuffle_f32x4(w, w, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm512_castps512_ps128(x);
}

// softmax_probs for 4 heads at once (p: 4 rows of kAttentionTileRows scores): the tile maxima,
// the rescale factors and the sums of the 4 heads come from one shuffle tree / one exp each.
ALSPEC_TARGET_AVX512 inline void softmax_probs4(float* p, int nt, float* m, float* l, float* alpha) {
  constexpr int TR = kAttentionTileRows;
  const __mmask16 m0 = static_cast<__mmask16>(nt >= 16 ? 0xFFFF : (1u << nt) - 1);
  const __mmask16 m1 = static_cast<__mmask16>(nt >= 32 ? 0xFFFF : nt <= 16 ? 0 : (1u << (nt - 16)) - 1);
  const __m512 ninf = _mm512_set1_ps(kEmptyStateMax);
  __m512 s0[4], s1[4], mx[4];
  for (int h = 0; h < 4; ++h) {
    s0[h] = _mm512_mask_loadu_ps(ninf, m0, p + h * TR);
    s1[h] = _mm512_mask_loadu_ps(ninf, m1, p + h * TR + 16);
    mx[h] = _mm512_max_ps(s0[h], s1[h]);
  }
  const __m128 m_old = _mm_loadu_ps(m);
  const __m128 m_new = _mm_max_ps(m_old, reduce4<true>(mx));
  // e^(m_old - m_new), 0 for empty states (m_old = -inf: the difference would be NaN or -inf).
  const __mmask16 live = _mm512_cmp_ps_mask(_mm512_castps128_ps512(m_old), ninf, _CMP_NEQ_OQ) & 0xF;
  const __m512 a = _mm512_maskz_mov_ps(live, exp_ps(_mm512_castps128_ps512(_mm_sub_ps(m_old, m_new))));
  __m512 e[4];
  alignas(16) float mn[4];
  _mm_store_ps(mn, m_new);
  for (int h = 0; h < 4; ++h) {
    const __m512 mv = _mm512_set1_ps(mn[h]);
    const __m512 e0 = _mm512_maskz_mov_ps(m0, exp_ps(_mm512_sub_ps(s0[h], mv)));
    const __m512 e1 = _mm512_maskz_mov_ps(m1, exp_ps(_mm512_sub_ps(s1[h], mv)));
    _mm512_storeu_ps(p + h * TR, e0);
    _mm512_storeu_ps(p + h * TR + 16, e1);
    e[h] = _mm512_add_ps(e0, e1);
  }
  const __m128 a4 = _mm512_castps512_ps128(a);
  _mm_storeu_ps(l, _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(l), a4), reduce4<false>(e)));
  _mm_storeu_ps(m, m_new);
  _mm_storeu_ps(alpha, a4);
}

// The softmax step of every head of a group (4 at a time, then one by one): probabilities in
// place in p [n_rep][kAttentionTileRows], m and l updated, the deferred rescale factors in alpha.
ALSPEC_TARGET_AVX512 inline void softmax_all_heads(int n_rep, float* p, int nt, GroupState s, float* alpha) {
  constexpr int TR = kAttentionTileRows;
  int h = 0;
  for (; h + 4 <= n_rep; h += 4) softmax_probs4(p + h * TR, nt, s.m + h, s.l + h, alpha + h);
  for (; h < n_rep; ++h) alpha[h] = softmax_probs(p + h * TR, nt, s.m + h, s.l + h);
}

// As softmax_probs, then acc [d] rescaled in place (for the kernels that add p·V to acc directly).
ALSPEC_TARGET_AVX512 inline void softmax_step(float* p, int nt, float* m, float* l, float* acc, int d) {
  const float alpha = softmax_probs(p, nt, m, l);
  if (alpha != 1.0f) {
    const __m512 av = _mm512_set1_ps(alpha);
    for (int j = 0; j < d; j += 16) _mm512_storeu_ps(acc + j, _mm512_mul_ps(av, _mm512_loadu_ps(acc + j)));
  }
}

// 16 elements [j, j + 16) of a cache row as floats, decoded in registers (same values as
// dequantize_row: F16/BF16 exact, Q8_0 d * q).
template <DType T>
ALSPEC_TARGET_AVX512 inline __m512 load16(const uint8_t* row, int j) {
  if constexpr (T == DType::F32) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + j);
  } else if constexpr (T == DType::F16) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * j)));
  } else if constexpr (T == DType::BF16) {
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * j)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  } else {
    static_assert(T == DType::Q8_0);
    const uint8_t* block = row + 34 * (j / 32);
    uint16_t dh;
    std::memcpy(&dh, block, 2);
    const __m512 scale = _mm512_set1_ps(_mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(dh))));
    const __m512i q = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2 + j % 32)));
    return _mm512_mul_ps(scale, _mm512_cvtepi32_ps(q));
  }
}

// Bytes of one cache row of head_dim 16 * NV.
template <DType T, int NV>
constexpr size_t kRowBytes = T == DType::F32 ? 64 * NV : T == DType::Q8_0 ? 17 * NV : 32 * NV;

// Asks for one row (the next tile's) while this tile computes; the last byte too, as Q8_0 rows
// do not start on a cache line.
template <size_t RB, _mm_hint Hint = _MM_HINT_T0>
ALSPEC_TARGET_AVX512 inline void prefetch_row(const uint8_t* p) {
  for (size_t off = 0; off < RB; off += 64) _mm_prefetch(reinterpret_cast<const char*>(p + off), Hint);
  if (RB % 64 != 0) _mm_prefetch(reinterpret_cast<const char*>(p + RB - 1), Hint);
}

// r[i] = horizontal sum of v[i] for 16 vectors: an add/shuffle tree, ~3 operations per sum
// instead of ~10 for separate reductions.
ALSPEC_TARGET_AVX512 inline __m512 reduce16(const __m512* v) {
  __m512 u[8];
  for (int k = 0; k < 8; ++k) {
    u[k] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * k], v[2 * k + 1]), _mm512_unpackhi_ps(v[2 * k], v[2 * k + 1]));
  }
  __m512 w[4];
  for (int k = 0; k < 4; ++k) {
    const __m512d a = _mm512_castps_pd(u[2 * k]);
    const __m512d b = _mm512_castps_pd(u[2 * k + 1]);
    w[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
  }
  __m512 z[2];
  for (int k = 0; k < 2; ++k) {
    z[k] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * k], w[2 * k + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(w[2 * k], w[2 * k + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  }
  return _mm512_add_ps(_mm512_shuffle_f32x4(z[0], z[1], _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(z[0], z[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

// acc[HB heads][NV*16] += sum_t p[h][t] v[t]: two 16-wide column blocks at a time, so 2*HB
// independent FMA chains hide the FMA latency; each V element is decoded once per HB heads.
// acc is first rescaled by alpha[h] (the deferred factor of softmax_probs; x * 1 = x, so this is
// bitwise the in-place rescale).
template <DType T, int NV, int HB>
ALSPEC_TARGET_AVX512 inline void pv_heads(const uint8_t* v, size_t rb, const float* p, int nt, float* acc,
                                          const float* alpha) {
  constexpr int d = NV * 16;
  static_assert(NV % 2 == 0);
  for (int i = 0; i < NV; i += 2) {
    __m512 a[HB], b[HB];
    for (int h = 0; h < HB; ++h) {
      const __m512 ah = _mm512_set1_ps(alpha[h]);
      a[h] = _mm512_mul_ps(ah, _mm512_loadu_ps(acc + h * d + 16 * i));
      b[h] = _mm512_mul_ps(ah, _mm512_loadu_ps(acc + h * d + 16 * i + 16));
    }
    for (int t = 0; t < nt; ++t) {
      const uint8_t* row = v + static_cast<size_t>(t) * rb;
      const __m512 x = load16<T>(row, 16 * i);
      const __m512 y = load16<T>(row, 16 * i + 16);
      for (int h = 0; h < HB; ++h) {
        const __m512 ph = _mm512_set1_ps(p[h * kAttentionTileRows + t]);
        a[h] = _mm512_fmadd_ps(ph, x, a[h]);
        b[h] = _mm512_fmadd_ps(ph, y, b[h]);
      }
    }
    for (int h = 0; h < HB; ++h) {
      _mm512_storeu_ps(acc + h * d + 16 * i, a[h]);
      _mm512_storeu_ps(acc + h * d + 16 * i + 16, b[h]);
    }
  }
}

// Unreduced q·k of one K row against every query head of the group: dots[h][t][16].
template <DType T, int NV>
ALSPEC_TARGET_AVX512 inline void qk_row(const GroupRows& g, const uint8_t* row, float* dots, int t) {
  constexpr int d = NV * 16;
  __m512 k[NV];
  for (int i = 0; i < NV; ++i) k[i] = load16<T>(row, 16 * i);
  for (int h = 0; h < g.n_rep; ++h) {
    const float* q = g.q + h * d;
    __m512 a0 = _mm512_mul_ps(_mm512_loadu_ps(q), k[0]);
    __m512 a1 = _mm512_mul_ps(_mm512_loadu_ps(q + 16), k[1]);
    for (int i = 2; i < NV; i += 2) {
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + 16 * i), k[i], a0);
      a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + 16 * i + 16), k[i + 1], a1);
    }
    _mm512_storeu_ps(dots + (h * kAttentionTileRows + t) * 16, _mm512_add_ps(a0, a1));
  }
}

// Scores of rows [t0, t0 + 16) of a tile for every head, from the unreduced dots (rows >= nt hold
// stale sums; softmax_probs masks them).
ALSPEC_TARGET_AVX512 inline void reduce_scores(const GroupRows& g, const float* dots, float* p, int t0) {
  constexpr int TR = kAttentionTileRows;
  const __m512 scale = _mm512_set1_ps(g.scale);
  for (int h = 0; h < g.n_rep; ++h) {
    _mm512_storeu_ps(p + h * TR + t0,
                     _mm512_mul_ps(reduce16(reinterpret_cast<const __m512*>(dots + (h * TR + t0) * 16)), scale));
  }
}

// p·V of the heads [h0, n_rep) of a tile in one go (blocks of 4, then the rest).
template <DType T, int NV>
ALSPEC_TARGET_AVX512 inline void pv_tile(const GroupRows& g, const uint8_t* vrows, const float* p, int nt, float* acc,
                                         const float* alpha, int h0) {
  constexpr int d = NV * 16;
  constexpr int TR = kAttentionTileRows;
  constexpr size_t RB = kRowBytes<T, NV>;
  int h = h0;
  for (; h + 4 <= g.n_rep; h += 4) pv_heads<T, NV, 4>(vrows, RB, p + h * TR, nt, acc + h * d, alpha + h);
  switch (g.n_rep - h) {
    case 3: pv_heads<T, NV, 3>(vrows, RB, p + h * TR, nt, acc + h * d, alpha + h); break;
    case 2: pv_heads<T, NV, 2>(vrows, RB, p + h * TR, nt, acc + h * d, alpha + h); break;
    case 1: pv_heads<T, NV, 1>(vrows, RB, p + h * TR, nt, acc + h * d, alpha + h); break;
    default: break;
  }
}

// One p·V unit of the pipelined loops: 4 heads x one column pair i of a tile, accumulators in
// registers between its row steps. load() rescales the accumulators by the heads' deferred
// factors, rows() adds rows [r0, r1) in ascending order, store() writes them back: together
// bitwise what pv_heads<T, NV, 4> does for that column pair.
template <DType T, int NV>
struct PvUnit {
  static constexpr int d = NV * 16;
  float* acc;      // acc + 16 i of the first of the 4 heads
  const float* p;  // probabilities [4][kAttentionTileRows] of the 4 heads
  int i;
  __m512 a[4], b[4];

  ALSPEC_TARGET_AVX512 __attribute__((always_inline)) void load(const float* alpha) {
    for (int h = 0; h < 4; ++h) {
      const __m512 ah = _mm512_set1_ps(alpha[h]);
      a[h] = _mm512_mul_ps(ah, _mm512_loadu_ps(acc + h * d));
      b[h] = _mm512_mul_ps(ah, _mm512_loadu_ps(acc + h * d + 16));
    }
  }
  ALSPEC_TARGET_AVX512 __attribute__((always_inline)) void rows(const uint8_t* v, int r0, int r1) {
    for (int r = r0; r < r1; ++r) {
      const uint8_t* row = v + static_cast<size_t>(r) * kRowBytes<T, NV>;
      const __m512 x = load16<T>(row, 16 * i);
      const __m512 y = load16<T>(row, 16 * i + 16);
      for (int h = 0; h < 4; ++h) {
        const __m512 ph = _mm512_set1_ps(p[h * kAttentionTileRows + r]);
        a[h] = _mm512_fmadd_ps(ph, x, a[h]);
        b[h] = _mm512_fmadd_ps(ph, y, b[h]);
      }
    }
  }
  ALSPEC_TARGET_AVX512 __attribute__((always_inline)) void store() {
    for (int h = 0; h < 4; ++h) {
      _mm512_storeu_ps(acc + h * d, a[h]);
      _mm512_storeu_ps(acc + h * d + 16, b[h]);
    }
  }
};

// q·k of a full tile interleaved with p·V of the previous full tile (both kAttentionTileRows rows),
// for the heads in blocks of 4. The p·V work is cut into units (block of 4 heads, column pair) of
// one row each per step; every q·k row is followed by `units` p·V rows of one unit, so the memory
// stream and the arithmetic stay even. Each accumulator adds its rows in ascending order: the
// results are those of pv_heads<T, NV, 4> over each block. (Reducing the first half of the scores
// inside this loop was measured 5% slower from DRAM: it delays the prefetches.)
template <DType T, int NV>
ALSPEC_TARGET_AVX512 inline void qk_with_pv(const GroupRows& g, const uint8_t* krows, const uint8_t* vrows,
                                            int next, const uint8_t* prev_v, const float* p_prev,
                                            const float* alpha, float* acc, float* dots) {
  constexpr int d = NV * 16;
  constexpr int TR = kAttentionTileRows;
  constexpr size_t RB = kRowBytes<T, NV>;
  const int blocks = g.n_rep / 4;
  const int units = blocks * (NV / 2);
  const int qk_per_unit = TR / units;  // q·k rows per unit; units p·V rows per q·k row
  int t = 0;
  for (int u = 0; u < units; ++u) {
    const int blk = u / (NV / 2);
    const int i = 2 * (u % (NV / 2));
    PvUnit<T, NV> pv{acc + blk * 4 * d + 16 * i, p_prev + blk * 4 * TR, i, {}, {}};
    pv.load(alpha + blk * 4);
    for (int j = 0; j < qk_per_unit; ++j, ++t) {
      if (t < next) prefetch_row<RB>(krows + static_cast<size_t>(TR + t) * RB);
      prefetch_row<RB>(vrows + static_cast<size_t>(t) * RB);
      qk_row<T, NV>(g, krows + static_cast<size_t>(t) * RB, dots, t);
      pv.rows(prev_v, j * units, (j + 1) * units);
    }
    pv.store();
  }
}

// Fused kernel for head_dim = 16 * NV: K and V decoded in registers, no float copies of the tile.
// Software-pipelined: the q·k rows of tile j run interleaved with p·V of tile j - 1, and each row
// prefetches K of tile j + 1 and V of tile j. A core reaches its memory bandwidth only while its
// misses keep coming; with the phases one after the other, memory idled during p·V and the q·k
// phase stalled on a burst of prefetches. What stays outside the loop is kept short: the softmax
// step leaves the accumulator's rescale to the next p·V (one deferred factor per head; +3-4%).
template <DType T, int NV>
ALSPEC_TARGET_AVX512 void accumulate_fused(const GroupRows& g, const RowRange* ranges, int n_ranges, GroupState s,
                                           float* scratch) {
  constexpr int TR = kAttentionTileRows;
  constexpr size_t RB = kRowBytes<T, NV>;
  float* p = scratch;                        // [n_rep][TR] scores, then probabilities
  float* dots = p + g.n_rep * TR;            // [n_rep][TR][16], 64-byte aligned by the caller
  float* alpha = dots + g.n_rep * TR * 16;   // [n_rep] deferred rescale of acc
  // The first tile has no previous tile to prefetch it: request all of it (into L2) up front, so
  // its misses overlap instead of stalling row by row. When the caller's previous rows ended right
  // before `begin`, they prefetched it already and these hit.
  // With several ranges each later range's first tile is requested the same way during the
  // previous range's last tile (not contiguous with it, so the look-ahead below misses it).
  auto request_tile = [&](const RowRange& r) {
    for (int64_t i = r.begin; i < std::min<int64_t>(r.end, r.begin + TR); ++i) {
      prefetch_row<RB, _MM_HINT_T1>(g.k + static_cast<size_t>(i) * RB);
      prefetch_row<RB, _MM_HINT_T1>(g.v + static_cast<size_t>(i) * RB);
    }
  };
  TileWalk walk(ranges, n_ranges, g.prefetch_end);
  if (!walk.done()) request_tile({walk.row(), walk.row() + walk.rows()});
  const int blocks = g.n_rep / 4;
  const bool interleave = blocks > 0 && blocks * (NV / 2) <= TR && TR % (blocks * (NV / 2)) == 0;
  const uint8_t* prev_v = nullptr;  // V rows of the previous tile, whose p·V is still to do
  int prev_nt = 0;
  for (; !walk.done(); walk.advance()) {
    const int64_t r0 = walk.row();
    const int nt = walk.rows();
    if (const RowRange* later = walk.next_range()) request_tile(*later);
    const uint8_t* krows = g.k + static_cast<size_t>(r0) * RB;
    const uint8_t* vrows = g.v + static_cast<size_t>(r0) * RB;
    // K rows of the next tile, [r0 + nt, r0 + nt + next): inside this range or the caller's next rows.
    const int next = walk.next_rows();
    // p holds the previous tile's probabilities until its p·V is done.
    if (interleave && prev_v != nullptr && nt == TR && prev_nt == TR) {
      qk_with_pv<T, NV>(g, krows, vrows, next, prev_v, p, alpha, s.acc, dots);
      pv_tile<T, NV>(g, prev_v, p, TR, s.acc, alpha, blocks * 4);  // heads beyond the blocks of 4
    } else {
      if (prev_v != nullptr) pv_tile<T, NV>(g, prev_v, p, prev_nt, s.acc, alpha, 0);
      for (int t = 0; t < nt; ++t) {
        if (t < next) prefetch_row<RB>(krows + static_cast<size_t>(nt + t) * RB);
        prefetch_row<RB>(vrows + static_cast<size_t>(t) * RB);
        qk_row<T, NV>(g, krows + static_cast<size_t>(t) * RB, dots, t);
      }
    }
    for (int t0 = 0; t0 < nt; t0 += 16) reduce_scores(g, dots, p, t0);
    softmax_all_heads(g.n_rep, p, nt, s, alpha);
    prev_v = vrows;
    prev_nt = nt;
  }
  if (prev_v != nullptr) pv_tile<T, NV>(g, prev_v, p, prev_nt, s.acc, alpha, 0);
}

// ---- K in key blocks (kKeyBlockRows rows, [head_dim][16] elements per block) ----------------------

// 16 scores (the block's rows) of the heads [h0, h0 + NH) against one key block: one vertical FMA
// chain per head and CH interleaved dims (chains summed at the end), q broadcast from memory; no
// horizontal reductions. Unscaled.
template <DType T, int NV, int NH, int CH>
ALSPEC_TARGET_AVX512 inline void qk_block(const float* q, const uint8_t* block, __m512* out) {
  constexpr int d = NV * 16;
  __m512 acc[NH][CH];
  for (int h = 0; h < NH; ++h)
    for (int c = 0; c < CH; ++c) acc[h][c] = _mm512_setzero_ps();
  for (int j = 0; j < d; j += CH) {
    for (int c = 0; c < CH; ++c) {
      const __m512 kv = load16<T>(block, 16 * (j + c));
      for (int h = 0; h < NH; ++h) acc[h][c] = _mm512_fmadd_ps(_mm512_set1_ps(q[h * d + j + c]), kv, acc[h][c]);
    }
  }
  for (int h = 0; h < NH; ++h) {
    __m512 sum = acc[h][0];
    for (int c = 1; c < CH; ++c) sum = _mm512_add_ps(sum, acc[h][c]);
    out[h] = sum;
  }
}

// Chains per head for NH heads scored together: 8 chains in all (6 at NH = 3) hide the FMA latency.
constexpr int chains_for(int nh) { return nh >= 5 ? 1 : nh == 3 ? 2 : 8 / nh; }

// Scores of one key block for all n_rep heads, in tmp [n_rep][48] at lane offset `off`. Up to 8
// heads in one pass with the chains the pipelined loop uses (so every tile sums in the same order);
// more in passes of 4.
template <DType T, int NV, int NH>
ALSPEC_TARGET_AVX512 inline void score_block(const float* q, const uint8_t* block, float* dst) {
  __m512 sc[NH];
  qk_block<T, NV, NH, chains_for(NH)>(q, block, sc);
  for (int i = 0; i < NH; ++i) _mm512_storeu_ps(dst + i * 48, sc[i]);
}

template <DType T, int NV>
ALSPEC_TARGET_AVX512 inline void score_block_all_heads(const GroupRows& g, const uint8_t* block, float* dst) {
  constexpr int d = NV * 16;
  switch (g.n_rep) {
    case 1: return score_block<T, NV, 1>(g.q, block, dst);
    case 2: return score_block<T, NV, 2>(g.q, block, dst);
    case 3: return score_block<T, NV, 3>(g.q, block, dst);
    case 4: return score_block<T, NV, 4>(g.q, block, dst);
    case 5: return score_block<T, NV, 5>(g.q, block, dst);
    case 6: return score_block<T, NV, 6>(g.q, block, dst);
    case 7: return score_block<T, NV, 7>(g.q, block, dst);
    case 8: return score_block<T, NV, 8>(g.q, block, dst);
    default: break;
  }
  int h = 0;
  for (; h + 4 <= g.n_rep; h += 4) score_block<T, NV, 4>(g.q + h * d, block, dst + h * 48);
  for (; h < g.n_rep; ++h) score_block<T, NV, 1>(g.q + h * d, block, dst + h * 48);
}

// Scaled scores p[h][t] of rows [r0, r0 + nt) (nt <= 32) for every head, any alignment of the
// rows to the blocks: the (up to 3) blocks covering them are scored into tmp [n_rep][48], then
// the rows' lanes copied out. Lanes t >= nt of p hold junk; softmax_probs masks them.
template <DType T, int NV>
ALSPEC_TARGET_AVX512 inline void qk_tile_blocks(const GroupRows& g, int64_t r0, int nt, float* p, float* tmp) {
  constexpr int TR = kAttentionTileRows;
  constexpr size_t RB = kRowBytes<T, NV>;
  constexpr int KB = kKeyBlockRows;
  const int64_t pr0 = r0 + g.k_first;
  const int64_t fb = pr0 / KB;
  const int64_t lb = (pr0 + nt - 1) / KB;
  const int o = static_cast<int>(pr0 % KB);
  for (int64_t b = fb; b <= lb; ++b) {
    const uint8_t* block = g.k + static_cast<size_t>(b) * KB * RB;
    score_block_all_heads<T, NV>(g, block, tmp + (b - fb) * KB);
  }
  const __m512 scale = _mm512_set1_ps(g.scale);
  for (int h = 0; h < g.n_rep; ++h) {
    _mm512_storeu_ps(p + h * TR, _mm512_mul_ps(_mm512_loadu_ps(tmp + h * 48 + o), scale));
    _mm512_storeu_ps(p + h * TR + 16, _mm512_mul_ps(_mm512_loadu_ps(tmp + h * 48 + o + 16), scale));
  }
}

// Pipelined step loop of one full, block-aligned tile j (2 key blocks) for NH = n_rep <= 8: q·k
// of tile j in steps of 16 dims of one block (all heads; scores to p_next), interleaved with p·V
// of tile j - 1 for the heads in whole blocks of 4 (units of 4 heads x one column pair,
// `units` x 32 / steps rows per step, rows ascending, accumulator rescaled by alpha first: bitwise
// pv_heads<T, NV, 4>; the caller does the other heads' p·V), each step prefetching its share of K
// of tile j + 1 and V of tile j.
// Out of line: inlined, the eight variants made one 16 KiB function that ran 4-6% slower.
template <DType T, int NV, int NH>
ALSPEC_TARGET_AVX512 __attribute__((noinline)) void qk_blocks_with_pv(const GroupRows& g, const uint8_t* krows, const uint8_t* vrows,
                                                   int next, const uint8_t* prev_v, const float* p_prev,
                                                   const float* alpha, float* acc, float* p_next) {
  constexpr int d = NV * 16;
  constexpr int TR = kAttentionTileRows;
  constexpr size_t RB = kRowBytes<T, NV>;
  constexpr int KB = kKeyBlockRows;
  constexpr int CH = chains_for(NH);
  constexpr int G = d / 16;                  // steps per block
  constexpr int steps = 2 * G;
  constexpr int units = (NH / 4) * (NV / 2);  // p·V of the heads in blocks of 4, one column pair each
  static_assert(units == 0 || steps % units == 0);
  static_assert(TR == 2 * KB && 16 % CH == 0);
  constexpr int steps_per_unit = units > 0 ? steps / units : steps;
  constexpr int pv_rows = TR / steps_per_unit;  // p·V rows of the unit per step
  constexpr int pf_rows = TR / steps;           // rows of K and of V prefetched per step
  const __m512 scale = _mm512_set1_ps(g.scale);
  __m512 qa[NH][CH];
  int step = 0;
  for (int u = 0; u < std::max(units, 1); ++u) {
    const int blk = u / (NV / 2);
    const int i = 2 * (u % (NV / 2));
    PvUnit<T, NV> pv{acc + blk * 4 * d + 16 * i, p_prev + blk * 4 * TR, i, {}, {}};
    if constexpr (units > 0) pv.load(alpha + blk * 4);
    for (int js = 0; js < steps_per_unit; ++js, ++step) {
      for (int r = step * pf_rows; r < (step + 1) * pf_rows; ++r) {
        if (r < next) prefetch_row<RB>(krows + static_cast<size_t>(TR + r) * RB);
        prefetch_row<RB>(vrows + static_cast<size_t>(r) * RB);
      }
      // q·k: dims [16 gs, 16 gs + 16) of block kb.
      const int kb = step / G;
      const int gs = step % G;
      const uint8_t* block = krows + static_cast<size_t>(kb) * KB * RB;
      if (gs == 0) {
        for (int h = 0; h < NH; ++h)
          for (int c = 0; c < CH; ++c) qa[h][c] = _mm512_setzero_ps();
      }
      for (int j = 16 * gs; j < 16 * gs + 16; j += CH) {
        for (int c = 0; c < CH; ++c) {
          const __m512 kv = load16<T>(block, 16 * (j + c));
          for (int h = 0; h < NH; ++h) qa[h][c] = _mm512_fmadd_ps(_mm512_set1_ps(g.q[h * d + j + c]), kv, qa[h][c]);
        }
      }
      if (gs == G - 1) {
        for (int h = 0; h < NH; ++h) {
          __m512 sum = qa[h][0];
          for (int c = 1; c < CH; ++c) sum = _mm512_add_ps(sum, qa[h][c]);
          _mm512_storeu_ps(p_next + h * TR + kb * KB, _mm512_mul_ps(sum, scale));
        }
      }
      if constexpr (units > 0) pv.rows(prev_v, js * pv_rows, (js + 1) * pv_rows);  // p·V rows of this unit
    }
    if constexpr (units > 0) pv.store();
  }
}

template <DType T, int NV>
ALSPEC_TARGET_AVX512 inline void qk_blocks_with_pv_any(const GroupRows& g, const uint8_t* krows,
                                                       const uint8_t* vrows, int next, const uint8_t* prev_v,
                                                       const float* p_prev, const float* alpha, float* acc,
                                                       float* p_next) {
  switch (g.n_rep) {
    case 1: return qk_blocks_with_pv<T, NV, 1>(g, krows, vrows, next, prev_v, p_prev, alpha, acc, p_next);
    case 2: return qk_blocks_with_pv<T, NV, 2>(g, krows, vrows, next, prev_v, p_prev, alpha, acc, p_next);
    case 3: return qk_blocks_with_pv<T, NV, 3>(g, krows, vrows, next, prev_v, p_prev, alpha, acc, p_next);
    case 4: return qk_blocks_with_pv<T, NV, 4>(g, krows, vrows, next, prev_v, p_prev, alpha, acc, p_next);
    case 5: return qk_blocks_with_pv<T, NV, 5>(g, krows, vrows, next, prev_v, p_prev, alpha, acc, p_next);
    case 6: return qk_blocks_with_pv<T, NV, 6>(g, krows, vrows, next, prev_v, p_prev, alpha, acc, p_next);
    case 7: return qk_blocks_with_pv<T, NV, 7>(g, krows, vrows, next, prev_v, p_prev, alpha, acc, p_next);
    case 8: return qk_blocks_with_pv<T, NV, 8>(g, krows, vrows, next, prev_v, p_prev, alpha, acc, p_next);
    default: return;  // not pipelined (accumulate_fused_blocks checks)
  }
}

// Fused kernel for K in key blocks (F32/F16/BF16, head_dim = 16 * NV): as accumulate_fused, with
// the scores computed vertically per block (qk_block) instead of per row plus reductions.
// Probabilities double-buffered: the loop writes tile j's scores while p·V reads tile j - 1's.
template <DType T, int NV>
ALSPEC_TARGET_AVX512 void accumulate_fused_blocks(const GroupRows& g, const RowRange* ranges, int n_ranges, GroupState s,
                                                  float* scratch) {
  constexpr int TR = kAttentionTileRows;
  constexpr size_t RB = kRowBytes<T, NV>;
  float* p_buf[2] = {scratch, scratch + g.n_rep * TR};  // [n_rep][TR] each
  float* alpha = p_buf[1] + g.n_rep * TR;               // [n_rep] deferred rescale of acc
  float* tmp = alpha + g.n_rep;                         // [n_rep][48] block scores
  // K bytes of rows [r, r + TR) start at row r's block; with blocks aligned to the tile (the
  // pipelined case) they are exactly TR row-sizes, as with rows.
  auto k_at = [&](int64_t r) {
    const int64_t pr = r + g.k_first;
    return g.k + static_cast<size_t>(pr - pr % kKeyBlockRows) * RB;
  };
  auto request_tile = [&](const RowRange& r) {  // as in accumulate_fused
    for (int64_t i = r.begin; i < std::min<int64_t>(r.end, r.begin + TR); ++i) {
      prefetch_row<RB, _MM_HINT_T1>(k_at(r.begin) + static_cast<size_t>(i - r.begin) * RB);
      prefetch_row<RB, _MM_HINT_T1>(g.v + static_cast<size_t>(i) * RB);
    }
  };
  TileWalk walk(ranges, n_ranges, g.prefetch_end);
  if (!walk.done()) request_tile({walk.row(), walk.row() + walk.rows()});
  const bool pipelined_heads = g.n_rep <= 8;
  const int first_rest = (g.n_rep / 4) * 4;  // heads whose p·V runs after the loop: [first_rest, n_rep)
  const uint8_t* prev_v = nullptr;  // V rows of the previous tile, whose p·V is still to do
  int prev_nt = 0;
  int cur = 0;
  for (; !walk.done(); walk.advance(), cur ^= 1) {
    const int64_t r0 = walk.row();
    const int nt = walk.rows();
    if (const RowRange* later = walk.next_range()) request_tile(*later);
    const uint8_t* krows = k_at(r0);
    const uint8_t* vrows = g.v + static_cast<size_t>(r0) * RB;
    float* p = p_buf[cur];
    const float* p_prev = p_buf[cur ^ 1];
    const int next = walk.next_rows();
    const bool aligned = (r0 + g.k_first) % kKeyBlockRows == 0;
    if (pipelined_heads && aligned && prev_v != nullptr && nt == TR && prev_nt == TR) {
      qk_blocks_with_pv_any<T, NV>(g, krows, vrows, next, prev_v, p_prev, alpha, s.acc, p);
      pv_tile<T, NV>(g, prev_v, p_prev, TR, s.acc, alpha, first_rest);
    } else {
      if (prev_v != nullptr) pv_tile<T, NV>(g, prev_v, p_prev, prev_nt, s.acc, alpha, 0);
      for (int t = 0; t < nt; ++t) {
        if (t < next) prefetch_row<RB>(krows + static_cast<size_t>(TR + t) * RB);
        prefetch_row<RB>(vrows + static_cast<size_t>(t) * RB);
      }
      qk_tile_blocks<T, NV>(g, r0, nt, p, tmp);
    }
    softmax_all_heads(g.n_rep, p, nt, s, alpha);
    prev_v = vrows;
    prev_nt = nt;
  }
  if (prev_v != nullptr) pv_tile<T, NV>(g, prev_v, p_buf[cur ^ 1], prev_nt, s.acc, alpha, 0);
}

template <int NV>
ALSPEC_TARGET_AVX512 void accumulate_fused_any_type(const GroupRows& g, const RowRange* ranges, int n_ranges, GroupState s,
                                                    float* p) {
  if (g.k_blocks) {
    switch (g.type) {
      case DType::F32: accumulate_fused_blocks<DType::F32, NV>(g, ranges, n_ranges, s, p); break;
      case DType::F16: accumulate_fused_blocks<DType::F16, NV>(g, ranges, n_ranges, s, p); break;
      case DType::BF16: accumulate_fused_blocks<DType::BF16, NV>(g, ranges, n_ranges, s, p); break;
      default: break;  // rejected before dispatch
    }
    return;
  }
  switch (g.type) {
    case DType::F32: accumulate_fused<DType::F32, NV>(g, ranges, n_ranges, s, p); break;
    case DType::F16: accumulate_fused<DType::F16, NV>(g, ranges, n_ranges, s, p); break;
    case DType::BF16: accumulate_fused<DType::BF16, NV>(g, ranges, n_ranges, s, p); break;
    case DType::Q8_0: accumulate_fused<DType::Q8_0, NV>(g, ranges, n_ranges, s, p); break;
    default: break;  // rejected before dispatch
  }
}

// ---- query-tiled prefill kernel (key blocks, full aligned tiles) ----------------------------------

// Queries per tile. Measured (Qwen 0.5B layer, GQA 7, 64 queries, 1 thread, thread CPU time): 2
// queries 1.08-1.12x the per-query kernel, 4 queries (28 chains) 1.03-1.10x, so 2 for every NH.
constexpr int tiled_tq(int) { return 2; }

// acc[k][16 c ..] of the NP (query, head) pairs += p·V over the tile's TR rows, after the deferred
// rescale: per accumulator exactly pv_heads (alpha * acc, then the rows ascending in FMAs); the
// pairs only share the decoded V vector of each row.
template <DType T, int NV, int NP>
ALSPEC_TARGET_AVX512 inline void pv_pairs(const uint8_t* vrows, float* const* acc, const float* const* p,
                                          const float* alpha, int c) {
  constexpr int TR = kAttentionTileRows;
  constexpr size_t RB = kRowBytes<T, NV>;
  __m512 a[NP];
  for (int k = 0; k < NP; ++k) a[k] = _mm512_mul_ps(_mm512_set1_ps(alpha[k]), _mm512_loadu_ps(acc[k] + 16 * c));
  for (int t = 0; t < TR; ++t) {
    const __m512 x = load16<T>(vrows + static_cast<size_t>(t) * RB, 16 * c);
    for (int k = 0; k < NP; ++k) a[k] = _mm512_fmadd_ps(_mm512_set1_ps(p[k][t]), x, a[k]);
  }
  for (int k = 0; k < NP; ++k) _mm512_storeu_ps(acc[k] + 16 * c, a[k]);
}

// TQ queries x NH heads over full tiles of rows [begin, end), K in key blocks aligned to the tiles.
// Per tile: the q·k of both blocks for all pairs (one decoded K vector feeds TQ x NH chains; each
// chain is qk_block's for NH heads: same CH, same dims order, same final sum and scale), the
// softmax step of each query (softmax_all_heads, as the per-query kernel), then p·V per 16-column
// block for the pairs in groups of up to 8 (one decoded V vector per row and group).
template <DType T, int NV, int NH>
ALSPEC_TARGET_AVX512 void accumulate_tiled(const GroupRows* g, int64_t begin, int64_t end, const GroupState* s,
                                           float* scratch) {
  constexpr int TQ = tiled_tq(NH);
  constexpr int d = NV * 16;
  constexpr int TR = kAttentionTileRows;
  constexpr int KB = kKeyBlockRows;
  constexpr int CH = chains_for(NH);
  constexpr size_t RB = kRowBytes<T, NV>;
  constexpr int NP = TQ * NH;
  float* p = scratch;              // [TQ][NH][TR]
  float* alpha = p + NP * TR;      // [TQ][NH]
  const __m512 scale = _mm512_set1_ps(g[0].scale);
  const uint8_t* k0 = g[0].k + static_cast<size_t>(begin + g[0].k_first) * RB;  // block aligned
  const uint8_t* v0 = g[0].v + static_cast<size_t>(begin) * RB;
  float* accp[NP];
  const float* pp[NP];
  for (int q = 0; q < TQ; ++q) {
    for (int h = 0; h < NH; ++h) {
      accp[q * NH + h] = s[q].acc + h * d;
      pp[q * NH + h] = p + (q * NH + h) * TR;
    }
  }
  const float* qv[TQ];
  for (int q = 0; q < TQ; ++q) qv[q] = g[q].q;
  for (int64_t r0 = 0; r0 < end - begin; r0 += TR) {
    const uint8_t* krows = k0 + static_cast<size_t>(r0) * RB;
    const uint8_t* vrows = v0 + static_cast<size_t>(r0) * RB;
    if (r0 + TR < end - begin) {
      for (int t = 0; t < TR; ++t) {
        prefetch_row<RB>(krows + static_cast<size_t>(TR + t) * RB);
        prefetch_row<RB>(vrows + static_cast<size_t>(TR + t) * RB);
      }
    }
    for (int kb = 0; kb < TR / KB; ++kb) {
      const uint8_t* block = krows + static_cast<size_t>(kb) * KB * RB;
      __m512 acc[TQ][NH][CH];
      for (int q = 0; q < TQ; ++q)
        for (int h = 0; h < NH; ++h)
          for (int c = 0; c < CH; ++c) acc[q][h][c] = _mm512_setzero_ps();
      for (int j = 0; j < d; j += CH) {
        for (int c = 0; c < CH; ++c) {
          const __m512 kv = load16<T>(block, 16 * (j + c));
          for (int q = 0; q < TQ; ++q)
            for (int h = 0; h < NH; ++h)
              acc[q][h][c] = _mm512_fmadd_ps(_mm512_set1_ps(qv[q][h * d + j + c]), kv, acc[q][h][c]);
        }
      }
      for (int q = 0; q < TQ; ++q) {
        for (int h = 0; h < NH; ++h) {
          __m512 sum = acc[q][h][0];
          for (int c = 1; c < CH; ++c) sum = _mm512_add_ps(sum, acc[q][h][c]);
          _mm512_storeu_ps(p + (q * NH + h) * TR + kb * KB, _mm512_mul_ps(sum, scale));
        }
      }
    }
    // softmax_all_heads with n_rep = NH (the same steps: blocks of 4 heads, then one by one).
    for (int q = 0; q < TQ; ++q) {
      float* pq = p + q * NH * TR;
      float* aq = alpha + q * NH;
      for (int h = 0; h + 4 <= NH; h += 4) softmax_probs4(pq + h * TR, TR, s[q].m + h, s[q].l + h, aq + h);
      for (int h = NH / 4 * 4; h < NH; ++h) aq[h] = softmax_probs(pq + h * TR, TR, s[q].m + h, s[q].l + h);
    }
    for (int c = 0; c < NV; ++c) {
      int k = 0;
      for (; k + 8 <= NP; k += 8) pv_pairs<T, NV, 8>(vrows, accp + k, pp + k, alpha + k, c);
      switch (NP - k) {
        case 7: pv_pairs<T, NV, 7>(vrows, accp + k, pp + k, alpha + k, c); break;
        case 6: pv_pairs<T, NV, 6>(vrows, accp + k, pp + k, alpha + k, c); break;
        case 5: pv_pairs<T, NV, 5>(vrows, accp + k, pp + k, alpha + k, c); break;
        case 4: pv_pairs<T, NV, 4>(vrows, accp + k, pp + k, alpha + k, c); break;
        case 3: pv_pairs<T, NV, 3>(vrows, accp + k, pp + k, alpha + k, c); break;
        case 2: pv_pairs<T, NV, 2>(vrows, accp + k, pp + k, alpha + k, c); break;
        case 1: pv_pairs<T, NV, 1>(vrows, accp + k, pp + k, alpha + k, c); break;
        default: break;
      }
    }
  }
}

template <DType T, int NV>
ALSPEC_TARGET_AVX512 void accumulate_tiled_nh(const GroupRows* g, int64_t begin, int64_t end, const GroupState* s,
                                              float* scratch) {
  switch (g[0].n_rep) {
    case 1: return accumulate_tiled<T, NV, 1>(g, begin, end, s, scratch);
    case 2: return accumulate_tiled<T, NV, 2>(g, begin, end, s, scratch);
    case 3: return accumulate_tiled<T, NV, 3>(g, begin, end, s, scratch);
    case 4: return accumulate_tiled<T, NV, 4>(g, begin, end, s, scratch);
    case 5: return accumulate_tiled<T, NV, 5>(g, begin, end, s, scratch);
    case 6: return accumulate_tiled<T, NV, 6>(g, begin, end, s, scratch);
    case 7: return accumulate_tiled<T, NV, 7>(g, begin, end, s, scratch);
    case 8: return accumulate_tiled<T, NV, 8>(g, begin, end, s, scratch);
    default: return;  // tiled_queries_avx512 said 0
  }
}

}  // namespace

// Other head dims: tiles decoded to float first, one range.
static ALSPEC_TARGET_AVX512 void accumulate_rows_decoded(const GroupRows& g, int64_t begin, int64_t end, GroupState s,
                                                 float* scratch) {
  const int d = g.head_dim;
  constexpr int T = kAttentionTileRows;
  static_assert(T % 16 == 0);
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
    // Scores of every head of the group against the tile; padding lanes are zero (ignored below).
    for (int h = 0; h < g.n_rep; ++h) {
      const float* q = g.q + static_cast<size_t>(h) * d;
      float* ph = p + static_cast<size_t>(h) * T;
      for (int t = 0; t < nt; ++t) {
        const float* k = kf + static_cast<size_t>(t) * d;
        __m512 a0 = _mm512_setzero_ps();
        __m512 a1 = _mm512_setzero_ps();
        int j = 0;
        for (; j + 32 <= d; j += 32) {
          a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + j), _mm512_loadu_ps(k + j), a0);
          a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + j + 16), _mm512_loadu_ps(k + j + 16), a1);
        }
        if (j < d) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + j), _mm512_loadu_ps(k + j), a0);
        ph[t] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) * g.scale;
      }
    }
    const float* vf = decode_tile(g.type, g.v + static_cast<size_t>(r0) * g.row_bytes, g.row_bytes, nt, d, vbuf);
    for (int h = 0; h < g.n_rep; ++h) {
      float* ph = p + static_cast<size_t>(h) * T;
      float* acc = s.acc + static_cast<size_t>(h) * d;
      softmax_step(ph, nt, s.m + h, s.l + h, acc, d);
      int j = 0;
      for (; j + 64 <= d; j += 64) pv_block<4>(acc + j, ph, vf + j, nt, d);
      switch ((d - j) / 16) {
        case 3: pv_block<3>(acc + j, ph, vf + j, nt, d); break;
        case 2: pv_block<2>(acc + j, ph, vf + j, nt, d); break;
        case 1: pv_block<1>(acc + j, ph, vf + j, nt, d); break;
        default: break;
      }
    }
  }
}

int tiled_queries_avx512(const GroupRows& g) {
  // The fused key-block kernel's configurations whose q·k runs one chain set for all heads
  // (n_rep <= 8); head_dim 64 only for now (128 keeps the per-query kernel).
  if (!g.k_blocks || g.head_dim != 64 || g.n_rep < 1 || g.n_rep > 8) return 0;
  if (g.type != DType::F16 && g.type != DType::F32 && g.type != DType::BF16) return 0;
  return tiled_tq(g.n_rep);
}

ALSPEC_TARGET_AVX512 void accumulate_rows_tiled_avx512(const GroupRows* g, int64_t begin, int64_t end,
                                                       const GroupState* s, float* scratch) {
  switch (g[0].type) {
    case DType::F32: return accumulate_tiled_nh<DType::F32, 4>(g, begin, end, s, scratch);
    case DType::F16: return accumulate_tiled_nh<DType::F16, 4>(g, begin, end, s, scratch);
    case DType::BF16: return accumulate_tiled_nh<DType::BF16, 4>(g, begin, end, s, scratch);
    default: return;  // tiled_queries_avx512 said 0
  }
}

ALSPEC_TARGET_AVX512 void accumulate_ranges_avx512(const GroupRows& g, const RowRange* r, int n, GroupState s,
                                           float* scratch) {
  // The common head dims run fused (one pipeline across the ranges); others decode tiles to float first.
  if (g.head_dim == 128) return accumulate_fused_any_type<8>(g, r, n, s, scratch);
  if (g.head_dim == 64) return accumulate_fused_any_type<4>(g, r, n, s, scratch);
  for (int i = 0; i < n; ++i) accumulate_rows_decoded(g, r[i].begin, r[i].end, s, scratch);
}

ALSPEC_TARGET_AVX512 void accumulate_rows_avx512(const GroupRows& g, int64_t begin, int64_t end, GroupState s, float* scratch) {
  const RowRange r{begin, end};
  accumulate_ranges_avx512(g, &r, 1, s, scratch);
}

}  // namespace alspec::attention_detail
