// Per-SIMD-level multi-token GEMM kernels behind matmul (prefill). Each output element follows
// the arithmetic of alspec/kernels/matmul.h exactly, so a GEMM row is bitwise equal to the dot
// kernels' matvec (the scalar dot kernels are the reference twin). They are register-blocked:
// a tile of weight rows x tokens accumulates in registers, each weight block is unpacked once per
// token tile into a panel and reused for every token, each activation block for every row.
// This header is included by files compiled for other targets: keep it free of inline functions.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/dot_kernels.h"

namespace alspec::kernels {

// The quantised activations of n tokens: rows[t] as for the dot kernels, and per token and
// block the 8 exact lane sums of 4 activations, negated (neg_sum4 + (t*blocks + b)*8), which
// turn a product with offset weights (w + offset, unsigned) back into one with w.
struct GemmActivations {
  const ActivationRow* rows;
  const int32_t* neg_sum4;
  // Q4_K/Q6_K: the super-block activations in token tiles of GemmKernels::k_tokens tokens
  // (build_k_panel), nullptr where no such product runs.
  const uint8_t* k_panel = nullptr;
};

// Fills neg_sum4 (blocks*8 int32) for one activation row.
void lane_sums_negated(const ActivationRow& a, int32_t* neg_sum4);

// The token-tile layout of the Q4_K/Q6_K GEMM (one token per 32-bit lane): tile i of tw tokens
// (tokens i*tw .. i*tw+tw-1 of the rows' super-block form; tokens past n are zero) and super-
// block s start at k_panel + (i * super_blocks + s) * kKPanelBytes * tw and hold
//   q:    [g = 0..63][t][4] int8, elements 4g..4g+3 of the super-block for token t;
//   sums: [i = 0..7][t][2] int16 at 256*tw, the 16-element sums ksum[2i], ksum[2i+1];
//   da:   [t] float at 288*tw.
inline constexpr int64_t kKPanelBytes = 256 + 32 + 4;
// Fills tile `tile` of the panel from rows[0..n).
void build_k_panel_tile(const ActivationRow* rows, int64_t n, int tw, int64_t tile, uint8_t* k_panel);

// y[t*ldy + r] for r < rows, t < n: row r of the weights (rows of row_bytes from w) with token t.
using QuantGemm = void (*)(const uint8_t* w, size_t row_bytes, int64_t rows, const GemmActivations& a, int64_t n,
                           float* y, int64_t ldy);

// nullptr where a level has no GEMM for a type (matmul then runs the dot kernels per token).
// q4_k/q6_k read GemmActivations::k_panel (tiles of k_tokens tokens) and compute every token
// < n in whole tiles (matmul hands them n rounded as it sees fit; tokens it leaves out go to the
// dot kernels, which give the same results).
// q4_k_narrow/q6_k_narrow: the same on token tiles of k_tokens_narrow < k_tokens tokens (a
// batched decode pass of a few sequences fills a narrow tile, where it would leave most lanes
// of a wide one empty); nullptr and 0 where a level has none.
struct GemmKernels {
  QuantGemm q8_0, q4_0, q5_0, q4_k, q6_k;
  const char* tile;  // e.g. "4x4 rows x tokens, vpdpbusd", for reports
  int k_tokens;      // tokens per tile of the Q4_K/Q6_K GEMM
  QuantGemm q4_k_narrow = nullptr, q6_k_narrow = nullptr;
  int k_tokens_narrow = 0;
};

const GemmKernels& gemm_kernels_avx2();    // requires AVX2, FMA, F16C
const GemmKernels& gemm_kernels_avx512();  // requires AVX-512 F/BW/VL/DQ/VNNI as well

}  // namespace alspec::kernels
