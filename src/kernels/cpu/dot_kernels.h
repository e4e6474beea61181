// Per-SIMD-level dot-product kernels behind matvec/matmul. Every level implements the same
// arithmetic (documented in alspec/kernels/matmul.h), so their results are bitwise equal; the
// scalar table is the portable fallback and the reference twin of the others.
// This header is included by files compiled for other targets: keep it free of inline functions.
#pragma once

#include <cstdint>

namespace alspec::kernels {

// One activation row quantised to 32-element blocks: q[32*blocks] int8 in [-127,127], block
// scales d[blocks] (x ~ d*q) and block sums sum[blocks] of q. The Q4_K/Q6_K kernels read the
// super-block form instead (kq etc., nullptr unless requested): kq[256*super_blocks] int8 in
// [-127,127] with one scale kd[s] per 256 elements, and ksum[16*s + i] the exact sum of
// kq[256*s + 16*i .. +15] (|ksum| <= 2032, so int16). A product of Q4_K/Q6_K weights only
// leaves q/d/sum unfilled (QuantizedActivations::prepare without with_blocks).
struct ActivationRow {
  const int8_t* q;
  const float* d;
  const int32_t* sum;
  int64_t blocks;
  // Optional (nullptr unless requested) copy for nibble formats, per group g of 4 blocks
  // (the last group zero-padded), kGroupBytes each: lo[64] int8 = elements 0..15 of blocks
  // 4g..4g+3, hi[64] int8 = elements 16..31, init_lo[16] int32 / init_hi[16] int32 = -8 * sum of
  // the 4 activations of lane 4j+i (block 4g+j, lane i of lo resp. hi), dx[16] float = d of block
  // 4g + lane/4.
  const uint8_t* groups;
  const int8_t* kq = nullptr;
  const float* kd = nullptr;
  const int16_t* ksum = nullptr;
  int64_t super_blocks = 0;
};

inline constexpr int kGroupBytes = 64 + 64 + 64 + 64 + 64;

// The SIMD kernels prefetch weights into L2 this many bytes ahead of the block they read. Rows
// are contiguous, so this runs ahead into the following rows (matvec hands each thread a
// contiguous share of rows); without it the hardware prefetcher left a core at ~65-75% of its
// streaming bandwidth on the 1B decode. Prefetches never fault, so running past a matrix is fine.
inline constexpr int kPrefetchBytes = 8192;

// Dot of one weight row (in the table's type) with a quantised activation row.
using QuantDot = float (*)(const uint8_t* w_row, const ActivationRow& a);
// The same for two weight rows at once (out[0], out[1]); each result equals the QuantDot's.
using QuantDot2 = void (*)(const uint8_t* w_row0, const uint8_t* w_row1, const ActivationRow& a, float* out);
// Dot of one weight row with k floats.
using FloatDot = float (*)(const uint8_t* w_row, const float* x, int64_t k);

// One weight row with n activation rows (a[t], results out[t * stride]); each result equals the
// QuantDot's.
using QuantDotTokens = void (*)(const uint8_t* w_row, const ActivationRow* a, int64_t n, float* out, int64_t stride);

struct DotKernels {
  FloatDot f32, f16, bf16;
  QuantDot q8_0, q4_0, q4_k, q6_k, q4_1, q5_0;
  bool q4_0_uses_groups;  // q4_0 reads ActivationRow::groups
  QuantDot2 q4_0_x2;      // nullptr where no two-row kernel exists
  QuantDotTokens q4_k_tokens = nullptr, q6_k_tokens = nullptr;  // nullptr where none exists
};

const DotKernels& dot_kernels_scalar();
const DotKernels& dot_kernels_avx2();    // requires AVX2, FMA, F16C
const DotKernels& dot_kernels_avx512();  // requires AVX-512 F/BW/VL/DQ/VNNI/VBMI as well

}  // namespace alspec::kernels
