// AVX2 row kernel (head_dim % 8 == 0) for CPUs without AVX-512: the AVX-512 kernel's techniques
// at 8 lanes. head_dim 64 and 128 run fused (K and V decoded in registers): software-pipelined
// (q·k of tile j interleaved with p·V of tile j - 1, each step prefetching K of tile j + 1 and V of
// tile j), the softmax step of 4 heads at once, the accumulator rescale deferred to the next p·V
// load, K in key blocks (F32/F16/BF16: 16 scores per pair of vertical FMA chains, no horizontal
// reductions) or in rows (any type). Other head dims decode 32-row tiles to float in L1 first.
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

// ---- Fused kernels for head_dim 64 and 128 ---------------------------------------------------------

constexpr int TR = kAttentionTileRows;
static_assert(TR == 32, "the masks and reductions below assume 32-row tiles");

// Lanes t < nt of a 32-lane tile, as 4 vector masks.
ALSPEC_TARGET_AVX2 inline void tile_masks(int nt, __m256* mk) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i n = _mm256_set1_epi32(nt);
  for (int k = 0; k < 4; ++k) {
    mk[k] = _mm256_castsi256_ps(_mm256_cmpgt_epi32(n, _mm256_add_epi32(idx, _mm256_set1_epi32(8 * k))));
  }
}

ALSPEC_TARGET_AVX2 inline float reduce_max(__m256 v) {
  __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  a = _mm_max_ps(a, _mm_movehl_ps(a, a));
  return _mm_cvtss_f32(_mm_max_ss(a, _mm_movehdup_ps(a)));
}

// e^x of one float through exp_ps (the same polynomial as the vector lanes).
ALSPEC_TARGET_AVX2 inline float exp1(float x) { return _mm256_cvtss_f32(exp_ps(_mm256_set1_ps(x))); }

// Online-softmax step of one head over a tile: p[0..nt) holds the scaled scores on entry and
// e^(s - m_new) on exit (lanes >= nt: 0); l is rescaled to the new running max and the factor for
// the accumulator, e^(m_old - m_new) (0 for an empty state), is returned for the next p·V load.
ALSPEC_TARGET_AVX2 inline float softmax_probs(float* p, int nt, float* m, float* l) {
  __m256 mk[4];
  tile_masks(nt, mk);
  const __m256 ninf = _mm256_set1_ps(kEmptyStateMax);
  __m256 s[4];
  for (int k = 0; k < 4; ++k) s[k] = _mm256_blendv_ps(ninf, _mm256_loadu_ps(p + 8 * k), mk[k]);
  const float tile_max = reduce_max(_mm256_max_ps(_mm256_max_ps(s[0], s[1]), _mm256_max_ps(s[2], s[3])));
  const float m_old = *m;
  const float m_new = std::max(m_old, tile_max);
  const __m256 mv = _mm256_set1_ps(m_new);
  __m256 e[4];
  for (int k = 0; k < 4; ++k) {
    e[k] = _mm256_and_ps(mk[k], exp_ps(_mm256_sub_ps(s[k], mv)));
    _mm256_storeu_ps(p + 8 * k, e[k]);
  }
  const float sum = reduce_add(_mm256_add_ps(_mm256_add_ps(e[0], e[1]), _mm256_add_ps(e[2], e[3])));
  const float alpha = m_old != kEmptyStateMax ? exp1(m_old - m_new) : 0.0f;
  *l = *l * alpha + sum;
  *m = m_new;
  return alpha;
}

// Lane h of the result is op over all lanes of v[h] (op = max or add): one shuffle tree for 4 heads.
template <bool kMax>
ALSPEC_TARGET_AVX2 inline __m128 reduce4(const __m256* v) {
  auto op = [](__m256 a, __m256 b) __attribute__((target("avx2"))) {
    if constexpr (kMax) {
      return _mm256_max_ps(a, b);
    } else {
      return _mm256_add_ps(a, b);
    }
  };
  const __m256 t0 = op(_mm256_unpacklo_ps(v[0], v[1]), _mm256_unpackhi_ps(v[0], v[1]));
  const __m256 t1 = op(_mm256_unpacklo_ps(v[2], v[3]), _mm256_unpackhi_ps(v[2], v[3]));
  const __m256 u = op(_mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(t0), _mm256_castps_pd(t1))),
                      _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(t0), _mm256_castps_pd(t1))));
  const __m128 lo = _mm256_castps256_ps128(u);
  const __m128 hi = _mm256_extractf128_ps(u, 1);
  if constexpr (kMax) {
    return _mm_max_ps(lo, hi);
  } else {
    return _mm_add_ps(lo, hi);
  }
}

// softmax_probs for 4 heads at once (p: 4 rows of TR scores): the tile maxima, the rescale
// factors and the sums of the 4 heads through one shuffle tree / one exp each.
ALSPEC_TARGET_AVX2 inline void softmax_probs4(float* p, int nt, float* m, float* l, float* alpha) {
  __m256 mk[4];
  tile_masks(nt, mk);
  const __m256 ninf = _mm256_set1_ps(kEmptyStateMax);
  __m256 mx[4];
  for (int h = 0; h < 4; ++h) {
    const float* ph = p + h * TR;
    const __m256 a = _mm256_max_ps(_mm256_blendv_ps(ninf, _mm256_loadu_ps(ph), mk[0]),
                                   _mm256_blendv_ps(ninf, _mm256_loadu_ps(ph + 8), mk[1]));
    const __m256 b = _mm256_max_ps(_mm256_blendv_ps(ninf, _mm256_loadu_ps(ph + 16), mk[2]),
                                   _mm256_blendv_ps(ninf, _mm256_loadu_ps(ph + 24), mk[3]));
    mx[h] = _mm256_max_ps(a, b);
  }
  const __m128 m_old = _mm_loadu_ps(m);
  const __m128 m_new = _mm_max_ps(m_old, reduce4<true>(mx));
  // e^(m_old - m_new), 0 for empty states (m_old = -inf).
  const __m128 live = _mm_cmpneq_ps(m_old, _mm_set1_ps(kEmptyStateMax));
  const __m256 d4 = _mm256_set_m128(_mm_setzero_ps(), _mm_sub_ps(m_old, m_new));
  const __m128 a4 = _mm_and_ps(live, _mm256_castps256_ps128(exp_ps(d4)));
  alignas(16) float mn[4];
  _mm_store_ps(mn, m_new);
  __m256 e[4];
  for (int h = 0; h < 4; ++h) {
    float* ph = p + h * TR;
    const __m256 mv = _mm256_set1_ps(mn[h]);
    __m256 sum = _mm256_setzero_ps();
    __m256 part[4];
    for (int k = 0; k < 4; ++k) {
      const __m256 sk = _mm256_blendv_ps(ninf, _mm256_loadu_ps(ph + 8 * k), mk[k]);
      part[k] = _mm256_and_ps(mk[k], exp_ps(_mm256_sub_ps(sk, mv)));
      _mm256_storeu_ps(ph + 8 * k, part[k]);
    }
    sum = _mm256_add_ps(_mm256_add_ps(part[0], part[1]), _mm256_add_ps(part[2], part[3]));
    e[h] = sum;
  }
  _mm_storeu_ps(l, _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(l), a4), reduce4<false>(e)));
  _mm_storeu_ps(m, m_new);
  _mm_storeu_ps(alpha, a4);
}

// The softmax step of every head of a group (4 at a time, then one by one).
ALSPEC_TARGET_AVX2 inline void softmax_all_heads(int n_rep, float* p, int nt, GroupState s, float* alpha) {
  int h = 0;
  for (; h + 4 <= n_rep; h += 4) softmax_probs4(p + h * TR, nt, s.m + h, s.l + h, alpha + h);
  for (; h < n_rep; ++h) alpha[h] = softmax_probs(p + h * TR, nt, s.m + h, s.l + h);
}

// 8 elements [j, j + 8) of a cache row (or of a key block) as floats, decoded in registers (the
// values of dequantize_row: F16/BF16 exact, Q8_0 d * q).
template <DType T>
ALSPEC_TARGET_AVX2 inline __m256 load8(const uint8_t* row, int j) {
  if constexpr (T == DType::F32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + j);
  } else if constexpr (T == DType::F16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * j)));
  } else if constexpr (T == DType::BF16) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * j)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  } else {
    static_assert(T == DType::Q8_0);
    const uint8_t* block = row + 34 * (j / 32);
    uint16_t dh;
    std::memcpy(&dh, block, 2);
    const __m256 scale = _mm256_set1_ps(_mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(dh))));
    const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(block + 2 + j % 32)));
    return _mm256_mul_ps(scale, _mm256_cvtepi32_ps(q));
  }
}

// Bytes of one cache row of head_dim D.
template <DType T, int D>
constexpr size_t kRowBytes = T == DType::F32 ? 4 * D : T == DType::Q8_0 ? 34 * (D / 32) : 2 * D;

// Asks for one row; the last byte too, as Q8_0 rows do not start on a cache line.
template <size_t RB, int Hint = _MM_HINT_T0>
ALSPEC_TARGET_AVX2 inline void prefetch_row(const uint8_t* p) {
  for (size_t off = 0; off < RB; off += 64) _mm_prefetch(reinterpret_cast<const char*>(p + off), static_cast<_mm_hint>(Hint));
  if (RB % 64 != 0) _mm_prefetch(reinterpret_cast<const char*>(p + RB - 1), static_cast<_mm_hint>(Hint));
}

// r[i] = horizontal sum of v[i] for 8 vectors (one add tree).
ALSPEC_TARGET_AVX2 inline __m256 reduce8(const float* dots) {
  __m256 v[8];
  for (int i = 0; i < 8; ++i) v[i] = _mm256_loadu_ps(dots + 8 * i);
  const __m256 u0 = _mm256_hadd_ps(v[0], v[1]);
  const __m256 u1 = _mm256_hadd_ps(v[2], v[3]);
  const __m256 u2 = _mm256_hadd_ps(v[4], v[5]);
  const __m256 u3 = _mm256_hadd_ps(v[6], v[7]);
  const __m256 w0 = _mm256_hadd_ps(u0, u1);
  const __m256 w1 = _mm256_hadd_ps(u2, u3);
  return _mm256_add_ps(_mm256_permute2f128_ps(w0, w1, 0x20), _mm256_permute2f128_ps(w0, w1, 0x31));
}

// acc[HB heads][D] += sum_t p[h][t] v[t], two 8-wide columns at a time (2 x HB FMA chains); acc
// first rescaled by alpha[h] (the deferred factor; x * 1 = x).
template <DType T, int D, int HB>
ALSPEC_TARGET_AVX2 inline void pv_heads(const uint8_t* v, const float* p, int nt, float* acc, const float* alpha) {
  constexpr size_t RB = kRowBytes<T, D>;
  for (int i = 0; i < D; i += 16) {
    __m256 a[HB], b[HB];
    for (int h = 0; h < HB; ++h) {
      const __m256 ah = _mm256_set1_ps(alpha[h]);
      a[h] = _mm256_mul_ps(ah, _mm256_loadu_ps(acc + h * D + i));
      b[h] = _mm256_mul_ps(ah, _mm256_loadu_ps(acc + h * D + i + 8));
    }
    for (int t = 0; t < nt; ++t) {
      const uint8_t* row = v + static_cast<size_t>(t) * RB;
      const __m256 x = load8<T>(row, i);
      const __m256 y = load8<T>(row, i + 8);
      for (int h = 0; h < HB; ++h) {
        const __m256 ph = _mm256_set1_ps(p[h * TR + t]);
        a[h] = _mm256_fmadd_ps(ph, x, a[h]);
        b[h] = _mm256_fmadd_ps(ph, y, b[h]);
      }
    }
    for (int h = 0; h < HB; ++h) {
      _mm256_storeu_ps(acc + h * D + i, a[h]);
      _mm256_storeu_ps(acc + h * D + i + 8, b[h]);
    }
  }
}

// p·V of the heads [h0, n_rep) of a tile (blocks of 4, then the rest).
template <DType T, int D>
ALSPEC_TARGET_AVX2 inline void pv_tile(int n_rep, const uint8_t* vrows, const float* p, int nt, float* acc,
                                       const float* alpha, int h0) {
  int h = h0;
  for (; h + 4 <= n_rep; h += 4) pv_heads<T, D, 4>(vrows, p + h * TR, nt, acc + h * D, alpha + h);
  switch (n_rep - h) {
    case 3: pv_heads<T, D, 3>(vrows, p + h * TR, nt, acc + h * D, alpha + h); break;
    case 2: pv_heads<T, D, 2>(vrows, p + h * TR, nt, acc + h * D, alpha + h); break;
    case 1: pv_heads<T, D, 1>(vrows, p + h * TR, nt, acc + h * D, alpha + h); break;
    default: break;
  }
}

// One p·V unit of the pipelined loops: 4 heads x one 8-wide column i of a tile, accumulators in
// registers between row steps. load() applies the deferred factors, rows() adds rows [r0, r1) in
// ascending order, store() writes back: per element bitwise what pv_heads<T, D, 4> computes.
template <DType T, int D>
struct PvUnit {
  float* acc = nullptr;      // acc + i of the first of the 4 heads
  const float* p = nullptr;  // probabilities [4][TR]
  int i = 0;
  __m256 a[4];

  ALSPEC_TARGET_AVX2 __attribute__((always_inline)) void load(const float* alpha) {
    for (int h = 0; h < 4; ++h) a[h] = _mm256_mul_ps(_mm256_set1_ps(alpha[h]), _mm256_loadu_ps(acc + h * D));
  }
  ALSPEC_TARGET_AVX2 __attribute__((always_inline)) void rows(const uint8_t* v, int r0, int r1) {
    for (int r = r0; r < r1; ++r) {
      const __m256 x = load8<T>(v + static_cast<size_t>(r) * kRowBytes<T, D>, i);
      for (int h = 0; h < 4; ++h) a[h] = _mm256_fmadd_ps(_mm256_set1_ps(p[h * TR + r]), x, a[h]);
    }
  }
  ALSPEC_TARGET_AVX2 __attribute__((always_inline)) void store() {
    for (int h = 0; h < 4; ++h) _mm256_storeu_ps(acc + h * D, a[h]);
  }
};

// ---- K in rows -----------------------------------------------------------------------------------

// Chains per head for NH heads scoring one K row together (8 chains in all where possible).
constexpr int row_chains(int nh) { return nh <= 2 ? 4 : nh <= 4 ? 2 : 1; }

// Unreduced q·k of one K row against NH query heads: dots[h][t][8] (h relative to q).
template <DType T, int D, int NH>
ALSPEC_TARGET_AVX2 inline void qk_row(const float* q, const uint8_t* row, float* dots, int t) {
  constexpr int CH = row_chains(NH);
  constexpr int NV = D / 8;
  static_assert(NV % CH == 0);
  __m256 a[NH][CH];
  for (int c = 0; c < CH; ++c) {
    const __m256 k = load8<T>(row, 8 * c);
    for (int h = 0; h < NH; ++h) a[h][c] = _mm256_mul_ps(_mm256_loadu_ps(q + h * D + 8 * c), k);
  }
  for (int i = CH; i < NV; i += CH) {
    for (int c = 0; c < CH; ++c) {
      const __m256 k = load8<T>(row, 8 * (i + c));
      for (int h = 0; h < NH; ++h) a[h][c] = _mm256_fmadd_ps(_mm256_loadu_ps(q + h * D + 8 * (i + c)), k, a[h][c]);
    }
  }
  for (int h = 0; h < NH; ++h) {
    __m256 sum = a[h][0];
    for (int c = 1; c < CH; ++c) sum = _mm256_add_ps(sum, a[h][c]);
    _mm256_storeu_ps(dots + (h * TR + t) * 8, sum);
  }
}

// qk_row for every head of the group: up to 8 in one pass, more in passes of 4 (then the rest).
template <DType T, int D>
ALSPEC_TARGET_AVX2 inline void qk_row_all_heads(const GroupRows& g, const uint8_t* row, float* dots, int t) {
  switch (g.n_rep) {
    case 1: return qk_row<T, D, 1>(g.q, row, dots, t);
    case 2: return qk_row<T, D, 2>(g.q, row, dots, t);
    case 3: return qk_row<T, D, 3>(g.q, row, dots, t);
    case 4: return qk_row<T, D, 4>(g.q, row, dots, t);
    case 5: return qk_row<T, D, 5>(g.q, row, dots, t);
    case 6: return qk_row<T, D, 6>(g.q, row, dots, t);
    case 7: return qk_row<T, D, 7>(g.q, row, dots, t);
    case 8: return qk_row<T, D, 8>(g.q, row, dots, t);
    default: break;
  }
  int h = 0;
  for (; h + 4 <= g.n_rep; h += 4) qk_row<T, D, 4>(g.q + h * D, row, dots + h * TR * 8, t);
  for (; h < g.n_rep; ++h) qk_row<T, D, 1>(g.q + h * D, row, dots + h * TR * 8, t);
}

// Scaled scores of rows [t0, t0 + 8) of a tile for every head, from the unreduced dots (rows >= nt
// hold stale sums; the softmax step masks them).
ALSPEC_TARGET_AVX2 inline void reduce_scores(const GroupRows& g, const float* dots, float* p, int t0) {
  const __m256 scale = _mm256_set1_ps(g.scale);
  for (int h = 0; h < g.n_rep; ++h) {
    _mm256_storeu_ps(p + h * TR + t0, _mm256_mul_ps(reduce8(dots + (h * TR + t0) * 8), scale));
  }
}

// q·k of a full tile interleaved with p·V of the previous full tile for the heads in blocks of 4
// (4 <= NH <= 8): the p·V work is cut into units (block of 4 heads, 8-wide column), every q·k row
// is followed by `units` p·V rows of one unit. Each accumulator adds its rows in ascending order.
template <DType T, int D, int NH>
ALSPEC_TARGET_AVX2 __attribute__((noinline)) void qk_rows_with_pv(const float* q, const uint8_t* krows,
                                                                 const uint8_t* vrows, int next,
                                                                 const uint8_t* prev_v, const float* p_prev,
                                                                 const float* alpha, float* acc, float* dots) {
  constexpr size_t RB = kRowBytes<T, D>;
  constexpr int units = (NH / 4) * (D / 8);
  static_assert(units > 0 && TR % units == 0);
  constexpr int qk_per_unit = TR / units;
  int t = 0;
  for (int u = 0; u < units; ++u) {
    const int blk = u / (D / 8);
    const int i = 8 * (u % (D / 8));
    PvUnit<T, D> pv{acc + blk * 4 * D + i, p_prev + blk * 4 * TR, i, {}};
    pv.load(alpha + blk * 4);
    for (int j = 0; j < qk_per_unit; ++j, ++t) {
      if (t < next) prefetch_row<RB>(krows + static_cast<size_t>(TR + t) * RB);
      prefetch_row<RB>(vrows + static_cast<size_t>(t) * RB);
      qk_row<T, D, NH>(q, krows + static_cast<size_t>(t) * RB, dots, t);
      pv.rows(prev_v, j * units, (j + 1) * units);
    }
    pv.store();
  }
}

// Fused kernel, K in rows: q·k rows of tile j interleaved with p·V of tile j - 1 (GQA 4-8), each
// row prefetching K of tile j + 1 and V of tile j; softmax step of 4 heads at once, rescale deferred.
template <DType T, int D>
ALSPEC_TARGET_AVX2 void accumulate_fused(const GroupRows& g, const RowRange* ranges, int n_ranges, GroupState s,
                                         float* scratch) {
  constexpr size_t RB = kRowBytes<T, D>;
  float* p = scratch;                       // [n_rep][TR] scores, then probabilities
  float* dots = p + g.n_rep * TR;           // [n_rep][TR][8]
  float* alpha = dots + g.n_rep * TR * 8;   // [n_rep] deferred rescale of acc
  // The first tile has nothing before it to prefetch it: request all of it (into L2) up front.
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
  const bool interleave = g.n_rep >= 4 && g.n_rep <= 8;
  const int first_rest = (g.n_rep / 4) * 4;
  const uint8_t* prev_v = nullptr;
  int prev_nt = 0;
  for (; !walk.done(); walk.advance()) {
    const int64_t r0 = walk.row();
    const int nt = walk.rows();
    if (const RowRange* later = walk.next_range()) request_tile(*later);
    const uint8_t* krows = g.k + static_cast<size_t>(r0) * RB;
    const uint8_t* vrows = g.v + static_cast<size_t>(r0) * RB;
    const int next = walk.next_rows();
    if (interleave && prev_v != nullptr && nt == TR && prev_nt == TR) {
      switch (g.n_rep) {
        case 4: qk_rows_with_pv<T, D, 4>(g.q, krows, vrows, next, prev_v, p, alpha, s.acc, dots); break;
        case 5: qk_rows_with_pv<T, D, 5>(g.q, krows, vrows, next, prev_v, p, alpha, s.acc, dots); break;
        case 6: qk_rows_with_pv<T, D, 6>(g.q, krows, vrows, next, prev_v, p, alpha, s.acc, dots); break;
        case 7: qk_rows_with_pv<T, D, 7>(g.q, krows, vrows, next, prev_v, p, alpha, s.acc, dots); break;
        default: qk_rows_with_pv<T, D, 8>(g.q, krows, vrows, next, prev_v, p, alpha, s.acc, dots); break;
      }
      pv_tile<T, D>(g.n_rep, prev_v, p, TR, s.acc, alpha, first_rest);
    } else {
      if (prev_v != nullptr) pv_tile<T, D>(g.n_rep, prev_v, p, prev_nt, s.acc, alpha, 0);
      for (int t = 0; t < nt; ++t) {
        if (t < next) prefetch_row<RB>(krows + static_cast<size_t>(nt + t) * RB);
        prefetch_row<RB>(vrows + static_cast<size_t>(t) * RB);
        qk_row_all_heads<T, D>(g, krows + static_cast<size_t>(t) * RB, dots, t);
      }
    }
    for (int t0 = 0; t0 < nt; t0 += 8) reduce_scores(g, dots, p, t0);
    softmax_all_heads(g.n_rep, p, nt, s, alpha);
    prev_v = vrows;
    prev_nt = nt;
  }
  if (prev_v != nullptr) pv_tile<T, D>(g.n_rep, prev_v, p, prev_nt, s.acc, alpha, 0);
}

// ---- K in key blocks (kKeyBlockRows rows, [head_dim][16] elements per block) ----------------------

// Chains per head (each a pair of vectors for the block's 16 rows) for NH heads scored together:
// 8 vectors in all (6 at NH = 3).
constexpr int block_chains(int nh) { return nh == 1 ? 4 : nh == 2 ? 2 : 1; }

// The q·k chains of NH heads against one key block, advanced by dims [j0, j1): per dim one pair
// of K vectors (rows 0-7, 8-15) and one FMA per head and vector, CH dims interleaved.
template <DType T, int NH, int CH>
ALSPEC_TARGET_AVX2 __attribute__((always_inline)) inline void block_dims(const float* q, int d, const uint8_t* block,
                                                                         int j0, int j1, __m256 (&c)[NH][CH][2]) {
  for (int j = j0; j < j1; j += CH) {
    for (int k = 0; k < CH; ++k) {
      const __m256 k0 = load8<T>(block, 16 * (j + k));
      const __m256 k1 = load8<T>(block, 16 * (j + k) + 8);
      for (int h = 0; h < NH; ++h) {
        const __m256 qh = _mm256_set1_ps(q[h * d + j + k]);
        c[h][k][0] = _mm256_fmadd_ps(qh, k0, c[h][k][0]);
        c[h][k][1] = _mm256_fmadd_ps(qh, k1, c[h][k][1]);
      }
    }
  }
}

// Sums the chains of each head: the block's 16 unscaled scores, times `scale`, to dst[h * stride].
template <int NH, int CH>
ALSPEC_TARGET_AVX2 __attribute__((always_inline)) inline void block_sums(const __m256 (&c)[NH][CH][2], __m256 scale,
                                                                         float* dst, int stride) {
  for (int h = 0; h < NH; ++h) {
    __m256 s0 = c[h][0][0], s1 = c[h][0][1];
    for (int k = 1; k < CH; ++k) {
      s0 = _mm256_add_ps(s0, c[h][k][0]);
      s1 = _mm256_add_ps(s1, c[h][k][1]);
    }
    _mm256_storeu_ps(dst + h * stride, _mm256_mul_ps(s0, scale));
    _mm256_storeu_ps(dst + h * stride + 8, _mm256_mul_ps(s1, scale));
  }
}

template <int NH, int CH>
ALSPEC_TARGET_AVX2 __attribute__((always_inline)) inline void zero_chains(__m256 (&c)[NH][CH][2]) {
  for (int h = 0; h < NH; ++h)
    for (int k = 0; k < CH; ++k) c[h][k][0] = c[h][k][1] = _mm256_setzero_ps();
}

// Scores (times `scale`) of one key block for NH heads, to dst[h * stride].
template <DType T, int D, int NH>
ALSPEC_TARGET_AVX2 inline void score_block(const float* q, const uint8_t* block, __m256 scale, float* dst,
                                           int stride) {
  constexpr int CH = block_chains(NH);
  __m256 c[NH][CH][2];
  zero_chains<NH, CH>(c);
  block_dims<T, NH, CH>(q, D, block, 0, D, c);
  block_sums<NH, CH>(c, scale, dst, stride);
}

// Every head of the group against one key block, in groups of 4 heads then the rest (the grouping
// and chains the pipelined loop uses, so every tile sums in the same order).
template <DType T, int D>
ALSPEC_TARGET_AVX2 inline void score_block_all_heads(const GroupRows& g, const uint8_t* block, __m256 scale,
                                                     float* dst, int stride) {
  int h = 0;
  for (; h + 4 <= g.n_rep; h += 4) score_block<T, D, 4>(g.q + h * D, block, scale, dst + h * stride, stride);
  switch (g.n_rep - h) {
    case 3: score_block<T, D, 3>(g.q + h * D, block, scale, dst + h * stride, stride); break;
    case 2: score_block<T, D, 2>(g.q + h * D, block, scale, dst + h * stride, stride); break;
    case 1: score_block<T, D, 1>(g.q + h * D, block, scale, dst + h * stride, stride); break;
    default: break;
  }
}

// Scaled scores p[h][t] of rows [r0, r0 + nt) (nt <= 32), any alignment of the rows to the blocks:
// the (up to 3) blocks covering them are scored into tmp [n_rep][48], then the rows' lanes copied
// out. Lanes t >= nt of p hold junk; the softmax step masks them.
template <DType T, int D>
ALSPEC_TARGET_AVX2 inline void qk_tile_blocks(const GroupRows& g, int64_t r0, int nt, float* p, float* tmp) {
  constexpr size_t RB = kRowBytes<T, D>;
  constexpr int KB = kKeyBlockRows;
  const int64_t pr0 = r0 + g.k_first;
  const int64_t fb = pr0 / KB;
  const int64_t lb = (pr0 + nt - 1) / KB;
  const int o = static_cast<int>(pr0 % KB);
  const __m256 scale = _mm256_set1_ps(g.scale);
  for (int64_t b = fb; b <= lb; ++b) {
    score_block_all_heads<T, D>(g, g.k + static_cast<size_t>(b) * KB * RB, scale, tmp + (b - fb) * KB, 48);
  }
  for (int h = 0; h < g.n_rep; ++h) {
    for (int k = 0; k < 4; ++k) _mm256_storeu_ps(p + h * TR + 8 * k, _mm256_loadu_ps(tmp + h * 48 + o + 8 * k));
  }
}

// Step `step` of `steps`'s share of the prefetches of a pipelined tile: K rows of the next tile
// (those before `next`) and V rows of this one.
template <size_t RB, int steps>
ALSPEC_TARGET_AVX2 __attribute__((always_inline)) inline void prefetch_share(const uint8_t* krows, const uint8_t* vrows,
                                                                             int next, int step) {
  static_assert(steps % TR == 0 || TR % steps == 0);
  static_assert(RB % 64 == 0, "key blocks: F32/F16/BF16 rows are whole cache lines");
  // Written out: through prefetch_row (as the row kernels do) GCC 12 dropped these prefetches.
  auto one = [&](int r) __attribute__((always_inline, target("avx2,f16c,fma"))) {
    const char* k = reinterpret_cast<const char*>(krows + static_cast<size_t>(TR + r) * RB);
    const char* v = reinterpret_cast<const char*>(vrows + static_cast<size_t>(r) * RB);
    for (size_t off = 0; off < RB; off += 64) {
      if (r < next) _mm_prefetch(k + off, _MM_HINT_T0);
      _mm_prefetch(v + off, _MM_HINT_T0);
    }
  };
  if constexpr (steps <= TR) {
    for (int r = step * (TR / steps); r < (step + 1) * (TR / steps); ++r) one(r);
  } else {
    if (step % (steps / TR) == 0) one(step / (steps / TR));
  }
}

// Pipelined step loop of one full, block-aligned tile j (2 key blocks), NH = n_rep <= 8: q·k of
// tile j in steps of 8 dims of one block for one group of (up to) 4 heads, scores to p_next,
// interleaved with p·V of tile j - 1 for the heads in whole blocks of 4 (units of 4 heads x one
// 8-wide column, rows ascending, deferred factor applied at load: per element bitwise pv_heads;
// the caller does the other heads' p·V), each step prefetching its share of K of tile j + 1 and
// V of tile j. Scores bitwise those of score_block_all_heads (same groups, chains and order).
template <DType T, int D, int NH>
ALSPEC_TARGET_AVX2 __attribute__((noinline)) void qk_blocks_with_pv(const GroupRows& g, const uint8_t* krows,
                                                                   const uint8_t* vrows, int next,
                                                                   const uint8_t* prev_v, const float* p_prev,
                                                                   const float* alpha, float* acc, float* p_next) {
  constexpr size_t RB = kRowBytes<T, D>;
  constexpr int KB = kKeyBlockRows;
  constexpr int NF = NH / 4;  // full groups of 4 heads
  constexpr int R = NH % 4;   // heads of the last, partial group
  constexpr int HG = NF + (R > 0 ? 1 : 0);
  constexpr int G = D / 8;  // steps per (block, head group)
  constexpr int steps = 2 * HG * G;
  constexpr int units = NF * (D / 8);
  static_assert(TR == 2 * KB);
  static_assert(units == 0 || steps % units == 0);
  constexpr int steps_per_unit = units > 0 ? steps / units : steps;
  static_assert(TR % steps_per_unit == 0);
  constexpr int pv_rows = TR / steps_per_unit;
  const __m256 scale = _mm256_set1_ps(g.scale);
  // The work after each q·k step: its share of the prefetches (K of tile j + 1, V of tile j), then
  // p·V rows of the current unit. (A struct, not a lambda: GCC 12 dropped the prefetches from
  // the inlined lambda.)
  struct Tail {
    const uint8_t *krows, *vrows, *prev_v;
    int next;
    const float *p_prev, *alpha;
    float* acc;
    PvUnit<T, D> pv;
    int step = 0, u = 0, js = 0;
    ALSPEC_TARGET_AVX2 __attribute__((always_inline)) void operator()() {
      ++step;
      if constexpr (units > 0) {
        if (js == 0) {
          const int blk = u / (D / 8);
          pv.i = 8 * (u % (D / 8));
          pv.acc = acc + blk * 4 * D + pv.i;
          pv.p = p_prev + blk * 4 * TR;
          pv.load(alpha + blk * 4);
        }
        pv.rows(prev_v, js * pv_rows, (js + 1) * pv_rows);
        if (++js == steps_per_unit) {
          pv.store();
          js = 0;
          ++u;
        }
      }
    }
  } tail{krows, vrows, prev_v, next, p_prev, alpha, acc, {}};
  for (int kb = 0; kb < 2; ++kb) {
    const uint8_t* block = krows + static_cast<size_t>(kb) * KB * RB;
    for (int hg = 0; hg < NF; ++hg) {
      constexpr int CH = block_chains(4);
      __m256 c[4][CH][2];
      zero_chains<4, CH>(c);
      for (int gs = 0; gs < G; ++gs) {
        block_dims<T, 4, CH>(g.q + hg * 4 * D, D, block, 8 * gs, 8 * gs + 8, c);
        prefetch_share<RB, steps>(krows, vrows, next, tail.step);
        tail();
      }
      block_sums<4, CH>(c, scale, p_next + hg * 4 * TR + kb * KB, TR);
    }
    if constexpr (R > 0) {
      constexpr int CH = block_chains(R);
      __m256 c[R][CH][2];
      zero_chains<R, CH>(c);
      for (int gs = 0; gs < G; ++gs) {
        block_dims<T, R, CH>(g.q + NF * 4 * D, D, block, 8 * gs, 8 * gs + 8, c);
        prefetch_share<RB, steps>(krows, vrows, next, tail.step);
        tail();
      }
      block_sums<R, CH>(c, scale, p_next + NF * 4 * TR + kb * KB, TR);
    }
  }
}

template <DType T, int D>
ALSPEC_TARGET_AVX2 inline void qk_blocks_with_pv_any(const GroupRows& g, const uint8_t* krows, const uint8_t* vrows,
                                                     int next, const uint8_t* prev_v, const float* p_prev,
                                                     const float* alpha, float* acc, float* p_next) {
  switch (g.n_rep) {
    case 1: return qk_blocks_with_pv<T, D, 1>(g, krows, vrows, next, prev_v, p_prev, alpha, acc, p_next);
    case 2: return qk_blocks_with_pv<T, D, 2>(g, krows, vrows, next, prev_v, p_prev, alpha, acc, p_next);
    case 3: return qk_blocks_with_pv<T, D, 3>(g, krows, vrows, next, prev_v, p_prev, alpha, acc, p_next);
    case 4: return qk_blocks_with_pv<T, D, 4>(g, krows, vrows, next, prev_v, p_prev, alpha, acc, p_next);
    case 5: return qk_blocks_with_pv<T, D, 5>(g, krows, vrows, next, prev_v, p_prev, alpha, acc, p_next);
    case 6: return qk_blocks_with_pv<T, D, 6>(g, krows, vrows, next, prev_v, p_prev, alpha, acc, p_next);
    case 7: return qk_blocks_with_pv<T, D, 7>(g, krows, vrows, next, prev_v, p_prev, alpha, acc, p_next);
    case 8: return qk_blocks_with_pv<T, D, 8>(g, krows, vrows, next, prev_v, p_prev, alpha, acc, p_next);
    default: return;  // not pipelined (accumulate_fused_blocks checks)
  }
}

// Fused kernel for K in key blocks (F32/F16/BF16): as accumulate_fused, with the scores computed
// vertically per block. Probabilities double-buffered: the loop writes tile j's scores while p·V
// reads tile j - 1's.
template <DType T, int D>
ALSPEC_TARGET_AVX2 void accumulate_fused_blocks(const GroupRows& g, const RowRange* ranges, int n_ranges, GroupState s,
                                                float* scratch) {
  constexpr size_t RB = kRowBytes<T, D>;
  float* p_buf[2] = {scratch, scratch + g.n_rep * TR};  // [n_rep][TR] each
  float* alpha = p_buf[1] + g.n_rep * TR;               // [n_rep]
  float* tmp = alpha + g.n_rep;                         // [n_rep][48] block scores
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
  const int first_rest = (g.n_rep / 4) * 4;
  const uint8_t* prev_v = nullptr;
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
      qk_blocks_with_pv_any<T, D>(g, krows, vrows, next, prev_v, p_prev, alpha, s.acc, p);
      pv_tile<T, D>(g.n_rep, prev_v, p_prev, TR, s.acc, alpha, first_rest);
    } else {
      if (prev_v != nullptr) pv_tile<T, D>(g.n_rep, prev_v, p_prev, prev_nt, s.acc, alpha, 0);
      for (int t = 0; t < nt; ++t) {
        if (t < next) prefetch_row<RB>(krows + static_cast<size_t>(TR + t) * RB);
        prefetch_row<RB>(vrows + static_cast<size_t>(t) * RB);
      }
      qk_tile_blocks<T, D>(g, r0, nt, p, tmp);
    }
    softmax_all_heads(g.n_rep, p, nt, s, alpha);
    prev_v = vrows;
    prev_nt = nt;
  }
  if (prev_v != nullptr) pv_tile<T, D>(g.n_rep, prev_v, p_buf[cur ^ 1], prev_nt, s.acc, alpha, 0);
}

template <int D>
ALSPEC_TARGET_AVX2 void accumulate_fused_any_type(const GroupRows& g, const RowRange* ranges, int n_ranges, GroupState s,
                                                  float* scratch) {
  if (g.k_blocks) {
    switch (g.type) {
      case DType::F32: accumulate_fused_blocks<DType::F32, D>(g, ranges, n_ranges, s, scratch); break;
      case DType::F16: accumulate_fused_blocks<DType::F16, D>(g, ranges, n_ranges, s, scratch); break;
      case DType::BF16: accumulate_fused_blocks<DType::BF16, D>(g, ranges, n_ranges, s, scratch); break;
      default: break;  // rejected before dispatch
    }
    return;
  }
  switch (g.type) {
    case DType::F32: accumulate_fused<DType::F32, D>(g, ranges, n_ranges, s, scratch); break;
    case DType::F16: accumulate_fused<DType::F16, D>(g, ranges, n_ranges, s, scratch); break;
    case DType::BF16: accumulate_fused<DType::BF16, D>(g, ranges, n_ranges, s, scratch); break;
    case DType::Q8_0: accumulate_fused<DType::Q8_0, D>(g, ranges, n_ranges, s, scratch); break;
    default: break;  // rejected before dispatch
  }
}

}  // namespace

// Other head dims: tiles decoded to float first, one range.
static ALSPEC_TARGET_AVX2 void accumulate_rows_decoded(const GroupRows& g, int64_t begin, int64_t end, GroupState s,
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

ALSPEC_TARGET_AVX2 void accumulate_ranges_avx2(const GroupRows& g, const RowRange* r, int n, GroupState s,
                                           float* scratch) {
  // The common head dims run fused (one pipeline across the ranges); others decode tiles to float first.
  if (g.head_dim == 128) return accumulate_fused_any_type<128>(g, r, n, s, scratch);
  if (g.head_dim == 64) return accumulate_fused_any_type<64>(g, r, n, s, scratch);
  for (int i = 0; i < n; ++i) accumulate_rows_decoded(g, r[i].begin, r[i].end, s, scratch);
}

ALSPEC_TARGET_AVX2 void accumulate_rows_avx2(const GroupRows& g, int64_t begin, int64_t end, GroupState s, float* scratch) {
  const RowRange r{begin, end};
  accumulate_ranges_avx2(g, &r, 1, s, scratch);
}

}  // namespace alspec::attention_detail
