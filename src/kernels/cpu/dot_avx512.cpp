// AVX-512 (F/BW/VL/VNNI/VBMI) dot kernels: the arithmetic of dot_scalar.cpp, with vpdpbusd for
// the exact integer lane sums. Q4_K/Q6_K reuse the AVX2 kernels (the integer super-block form,
// whose float part is scalar: the same at every level).
// Headers come before the target pragma so that no shared inline code is compiled for AVX-512.
// GCC 12 reports bogus (maybe-)uninitialized warnings inside its own AVX-512 intrinsic headers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/block_layout.h"
#include "kernels/cpu/dot_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,avx512vbmi")

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

// L2 prefetch of the line kPrefetchBytes + offset past p (integer arithmetic: that address may
// lie past the matrix).
inline void prefetch_l2(const uint8_t* p, int offset) {
  _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) + kPrefetchBytes + offset), _MM_HINT_T1);
}
// Prefetches for a loop step that reads kStep bytes from p: lines 64 bytes apart, so that the
// steps together touch every line.
template <int kStep>
inline void prefetch_step(const uint8_t* p) {
#pragma GCC unroll 8
  for (int o = 0; o < kStep; o += 64) prefetch_l2(p, o);
}

inline __m512i q8_0_pair(const uint8_t* p) { return join(load32(p + 2), load32(p + 2 + kQ8_0Bytes)); }
// A lone block: only its 32 bytes are read.
inline __m512i q8_0_single(const uint8_t* p) { return _mm512_castsi256_si512(load32(p + 2)); }
// Q8_0: two accumulators, [group 0 | group 1] and [group 2 | group 3] (8 lanes per group);
// their sum is (g0 + g2 | g1 + g3), as the canonical combination requires.
float dot_q8_0(const uint8_t* row, const ActivationRow& a) {
  __m512 acc01 = _mm512_setzero_ps(), acc23 = _mm512_setzero_ps();
  const __m512i idx01 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const __m512i idx23 = _mm512_add_epi32(idx01, _mm512_set1_epi32(2));
  constexpr int kB = kQ8_0Bytes;
  int64_t b = 0;
  for (; b + 3 < a.blocks; b += 4) {
    const uint8_t* p = row + kB * b;
    prefetch_step<4 * kB>(p);
    const __m128i h = _mm_setr_epi16(static_cast<short>(load_u16(p)), static_cast<short>(load_u16(p + kB)),
                                     static_cast<short>(load_u16(p + 2 * kB)),
                                     static_cast<short>(load_u16(p + 3 * kB)), 0, 0, 0, 0);
    const __m512 s4 = _mm512_castps128_ps512(_mm_mul_ps(_mm_cvtph_ps(h), _mm_loadu_ps(a.d + b)));
    const __m512i l01 = lane_dot(q8_0_pair(p), _mm512_loadu_si512(a.q + 32 * b));
    const __m512i l23 = lane_dot(q8_0_pair(p + 2 * kB), _mm512_loadu_si512(a.q + 32 * b + 64));
    acc01 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(l01), _mm512_permutexvar_ps(idx01, s4), acc01);
    acc23 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(l23), _mm512_permutexvar_ps(idx23, s4), acc23);
  }
  const int64_t rem = a.blocks - b;  // 0..3 blocks, groups 0, 1, 2
  const uint8_t* p = row + kB * b;
  if (rem >= 2) {
    const __m512 s = scale_pair(half_to_float(p) * a.d[b], half_to_float(p + kB) * a.d[b + 1]);
    acc01 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lane_dot(q8_0_pair(p), _mm512_loadu_si512(a.q + 32 * b))), s, acc01);
  }
  if (rem == 1 || rem == 3) {
    const int64_t bl = b + rem - 1;
    const uint8_t* pl = row + kB * bl;
    const __m512 s = _mm512_set1_ps(half_to_float(pl) * a.d[bl]);
    const __m512i l = lane_dot(q8_0_single(pl), _mm512_castsi256_si512(load32(a.q + 32 * bl)));
    if (rem == 1) {
      acc01 = _mm512_mask3_fmadd_ps(_mm512_cvtepi32_ps(l), s, acc01, 0x00FF);
    } else {
      acc23 = _mm512_mask3_fmadd_ps(_mm512_cvtepi32_ps(l), s, acc23, 0x00FF);
    }
  }
  return hsum16(_mm512_add_ps(acc01, acc23));
}

// Q4_1/Q5_0: 16 bytes of nibbles per block; two blocks per vector, elements 0..31 of block
// b in bytes 0..31 (low nibbles, then high ones), block b+1 in bytes 32..63.
struct Q4_1Format {
  static constexpr int kBytes = kQ4_1Bytes, kQs = 4;
  static constexpr bool kHasMin = true;
};
struct Q5_0Format {
  static constexpr int kBytes = kQ5_0Bytes, kQs = 6;
  static constexpr bool kHasMin = false;
};

// x0 (block b) and x1 (block b+1) -> [x0 & 15, x0 >> 4, x1 & 15, x1 >> 4] in 128-bit lanes.
inline __m512i spread_nibbles(__m128i x0, __m128i x1) {
  const __m512i x = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3),
                                             _mm512_castsi256_si512(_mm256_set_m128i(x1, x0)));
  return _mm512_and_si512(_mm512_srlv_epi64(x, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4)), _mm512_set1_epi8(0x0F));
}

// Integer weights of blocks at p and p1 (p1 == nullptr: a lone block, upper half unused), and
// the exact lane sums with the activations: Q4_1 unsigned nibbles; Q5_0 nibble | qh bit << 4,
// minus 16, i.e. the nibble where the bit is set and nibble | 0xF0 where it is clear.
template <class F>
inline __m512i nibble_lanes(const uint8_t* p, const uint8_t* p1, __m512i a) {
  const __m128i x0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + F::kQs));
  const __m128i x1 = p1 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(p1 + F::kQs)) : _mm_setzero_si128();
  const __m512i nib = spread_nibbles(x0, x1);
  if constexpr (F::kHasMin) {
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), nib, a);
  } else {
    const uint64_t bits = load_u32(p + 2) | (p1 ? static_cast<uint64_t>(load_u32(p1 + 2)) << 32 : 0);
    const __m512i w = _mm512_mask_mov_epi8(_mm512_or_si512(nib, _mm512_set1_epi8(static_cast<char>(0xF0))),
                                           static_cast<__mmask64>(bits), nib);
    return lane_dot(w, a);
  }
}

// fp16 field at byte offset `off` of blocks b..b+3, as floats in lanes 0..3.
template <class F>
inline __m128 four_halves(const uint8_t* p, int off) {
  constexpr int kB = F::kBytes;
  return _mm_cvtph_ps(_mm_setr_epi16(static_cast<short>(load_u16(p + off)), static_cast<short>(load_u16(p + kB + off)),
                                     static_cast<short>(load_u16(p + 2 * kB + off)),
                                     static_cast<short>(load_u16(p + 3 * kB + off)), 0, 0, 0, 0));
}

// The arithmetic of dot_q8_0 (groups 0|1 and 2|3 in two accumulators); Q4_1 also accumulates
// m*dx*sum(a) of block b into lane b % 8 of mins (lanes 0..3 in mins[0], 4..7 in mins[1]).
template <class F>
float dot_nibble(const uint8_t* row, const ActivationRow& a) {
  __m512 acc01 = _mm512_setzero_ps(), acc23 = _mm512_setzero_ps();
  __m128 mins[2] = {_mm_setzero_ps(), _mm_setzero_ps()};
  const __m512i idx01 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const __m512i idx23 = _mm512_add_epi32(idx01, _mm512_set1_epi32(2));
  constexpr int kB = F::kBytes;
  int64_t b = 0;
  for (; b + 3 < a.blocks; b += 4) {
    const uint8_t* p = row + kB * b;
    prefetch_step<4 * kB>(p);
    const __m128 dx = _mm_loadu_ps(a.d + b);
    const __m512 s4 = _mm512_castps128_ps512(_mm_mul_ps(four_halves<F>(p, 0), dx));
    const __m512i l01 = nibble_lanes<F>(p, p + kB, _mm512_loadu_si512(a.q + 32 * b));
    const __m512i l23 = nibble_lanes<F>(p + 2 * kB, p + 3 * kB, _mm512_loadu_si512(a.q + 32 * b + 64));
    acc01 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(l01), _mm512_permutexvar_ps(idx01, s4), acc01);
    acc23 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(l23), _mm512_permutexvar_ps(idx23, s4), acc23);
    if constexpr (F::kHasMin) {
      __m128& m = mins[(b / 4) % 2];
      const __m128 sums = _mm_cvtepi32_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.sum + b)));
      m = _mm_fmadd_ps(sums, _mm_mul_ps(four_halves<F>(p, 2), dx), m);
    }
  }
  const int64_t rem = a.blocks - b;  // 0..3 blocks, groups 0, 1, 2
  const uint8_t* p = row + kB * b;
  if (rem >= 2) {
    const __m512 s = scale_pair(half_to_float(p) * a.d[b], half_to_float(p + kB) * a.d[b + 1]);
    const __m512i l = nibble_lanes<F>(p, p + kB, _mm512_loadu_si512(a.q + 32 * b));
    acc01 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(l), s, acc01);
  }
  if (rem == 1 || rem == 3) {
    const int64_t bl = b + rem - 1;
    const uint8_t* pl = row + kB * bl;
    const __m512 s = _mm512_set1_ps(half_to_float(pl) * a.d[bl]);
    const __m512i l = nibble_lanes<F>(pl, nullptr, _mm512_castsi256_si512(load32(a.q + 32 * bl)));
    if (rem == 1) {
      acc01 = _mm512_mask3_fmadd_ps(_mm512_cvtepi32_ps(l), s, acc01, 0x00FF);
    } else {
      acc23 = _mm512_mask3_fmadd_ps(_mm512_cvtepi32_ps(l), s, acc23, 0x00FF);
    }
  }
  const float dot = hsum16(_mm512_add_ps(acc01, acc23));
  if constexpr (!F::kHasMin) {
    return dot;
  } else {
    if (rem > 0) {  // blocks b..b+rem-1 into lanes 0..rem-1 of mins[(b/4) % 2]; nothing else read
      alignas(16) float ms[4] = {}, sums[4] = {}, dx[4] = {};
      for (int j = 0; j < rem; ++j) {
        ms[j] = half_to_float(p + kB * j + 2);
        sums[j] = static_cast<float>(a.sum[b + j]);
        dx[j] = a.d[b + j];
      }
      __m128& m = mins[(b / 4) % 2];
      m = _mm_mask3_fmadd_ps(_mm_load_ps(sums), _mm_mul_ps(_mm_load_ps(ms), _mm_load_ps(dx)), m,
                             static_cast<__mmask8>((1u << rem) - 1));
    }
    return dot + hsum8(_mm256_set_m128(mins[1], mins[0]));
  }
}

// Byte i of a 4-block Q4_0 group's nibbles: block i/16, byte i%16 (offset 18*(i/16) + 2 + i%16).
struct NibbleIndex {
  alignas(64) uint8_t bytes[64];
  alignas(64) uint16_t words[32];  // word 4j+i: the fp16 d of block j (word offset 9j)
  constexpr NibbleIndex() : bytes(), words() {
    for (int i = 0; i < 64; ++i) bytes[i] = static_cast<uint8_t>(18 * (i / 16) + 2 + i % 16);
    for (int w = 0; w < 16; ++w) words[w] = static_cast<uint16_t>(9 * (w / 4));
  }
};
constexpr NibbleIndex kNibbleIndex;

// Q4_0 on the 4-block group layout: lane 4j+i of the lo/hi accumulators is lane i (resp. 4+i)
// of group j. Unsigned nibbles times activations, started from -8*sum(a) (exact integers).
// kRows rows at once share the activation loads; each row's operations are those of kRows == 1.
// Whole groups run unmasked (a full mask changes nothing); a last partial group is masked.
template <int kRows>
void q4_0_groups_rows(const uint8_t* const* rows, const ActivationRow& a, float* out) {
  const __m512i nib_idx = _mm512_load_si512(kNibbleIndex.bytes);
  const __m512i d_idx = _mm512_load_si512(kNibbleIndex.words);
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  __m512 acc_lo[kRows], acc_hi[kRows];
  for (int r = 0; r < kRows; ++r) acc_lo[r] = acc_hi[r] = _mm512_setzero_ps();
  // One group of every row; z0/z1 hold each row's 72 group bytes (z1: bytes 64..71).
  auto group = [&](int64_t g, const __m512i* z0, const __m512i* z1, __mmask16 m) {
    const uint8_t* act = a.groups + kGroupBytes * g;
    const __m512i a_lo = _mm512_loadu_si512(act), a_hi = _mm512_loadu_si512(act + 64);
    const __m512i init_lo = _mm512_loadu_si512(act + 128), init_hi = _mm512_loadu_si512(act + 192);
    const __m512 dx = _mm512_loadu_ps(act + 256);
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) {
      const __m512i q = _mm512_permutex2var_epi8(z0[r], nib_idx, z1[r]);
      const __m512i lo = _mm512_and_si512(q, low4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
      const __m512i l_lo = _mm512_dpbusd_epi32(init_lo, lo, a_lo);
      const __m512i l_hi = _mm512_dpbusd_epi32(init_hi, hi, a_hi);
      const __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(d_idx, z0[r])));
      const __m512 s = _mm512_mul_ps(dw, dx);
      acc_lo[r] = _mm512_mask3_fmadd_ps(_mm512_cvtepi32_ps(l_lo), s, acc_lo[r], m);
      acc_hi[r] = _mm512_mask3_fmadd_ps(_mm512_cvtepi32_ps(l_hi), s, acc_hi[r], m);
    }
  };
  const int64_t full = a.blocks / 4;
  for (int64_t g = 0; g < full; ++g) {
    __m512i z0[kRows], z1[kRows];
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) {
      const uint8_t* p = rows[r] + 4 * kQ4_0Bytes * g;
      prefetch_step<4 * kQ4_0Bytes>(p);
      z0[r] = _mm512_loadu_si512(p);
      z1[r] = _mm512_castsi128_si512(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 64)));
    }
    group(g, z0, z1, 0xFFFF);
  }
  if (const int64_t nblk = a.blocks - 4 * full; nblk > 0) {  // at most 54 bytes; nothing past the row is read
    __m512i z0[kRows], z1[kRows];
    for (int r = 0; r < kRows; ++r) {
      z0[r] = _mm512_maskz_loadu_epi8((__mmask64{1} << (kQ4_0Bytes * nblk)) - 1, rows[r] + 4 * kQ4_0Bytes * full);
      z1[r] = _mm512_setzero_si512();
    }
    group(full, z0, z1, static_cast<__mmask16>((1u << (4 * nblk)) - 1));
  }
  // Per 128-bit lane j (group j): (g0 + g2) + (g1 + g3), then r[k] + r[k+4], +2, +1.
  auto combine = [](__m512 v) {
    const __m512 x = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm512_castps512_ps128(_mm512_add_ps(x, _mm512_shuffle_f32x4(x, x, _MM_SHUFFLE(2, 3, 0, 1))));
  };
  for (int r = 0; r < kRows; ++r) {
    __m128 v = _mm_add_ps(combine(acc_lo[r]), combine(acc_hi[r]));
    v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    v = _mm_add_ss(v, _mm_movehdup_ps(v));
    out[r] = _mm_cvtss_f32(v);
  }
}

float dot_q4_0_groups(const uint8_t* row, const ActivationRow& a) {
  float out;
  q4_0_groups_rows<1>(&row, a, &out);
  return out;
}

void dot2_q4_0_groups(const uint8_t* row0, const uint8_t* row1, const ActivationRow& a, float* out) {
  const uint8_t* rows[2] = {row0, row1};
  q4_0_groups_rows<2>(rows, a, out);
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
    prefetch_step<64 * kElemBytes>(w + kElemBytes * e);
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
                            dot_q8_0,
                            dot_q4_0_groups,
                            avx2.q4_k,
                            avx2.q6_k,
                            dot_nibble<Q4_1Format>,
                            dot_nibble<Q5_0Format>,
                            true,
                            dot2_q4_0_groups,
                            avx2.q4_k_tokens,
                            avx2.q6_k_tokens};
  return k;
}

}  // namespace alspec::kernels

#pragma GCC pop_options
