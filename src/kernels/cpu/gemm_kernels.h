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
};

// Fills neg_sum4 (blocks*8 int32) for one activation row.
void lane_sums_negated(const ActivationRow& a, int32_t* neg_sum4);

// y[t*ldy + r] for r < rows, t < n: row r of the weights (rows of row_bytes from w) with token t.
using QuantGemm = void (*)(const uint8_t* w, size_t row_bytes, int64_t rows, const GemmActivations& a, int64_t n,
                           float* y, int64_t ldy);

// nullptr where a level has no GEMM for a type (matmul then runs the dot kernels per token).
struct GemmKernels {
  QuantGemm q8_0, q4_0, q5_0, q4_k, q6_k;
  const char* tile;  // e.g. "4x4 rows x tokens, vpdpbusd", for reports
};

const GemmKernels& gemm_kernels_avx2();    // requires AVX2, FMA, F16C
const GemmKernels& gemm_kernels_avx512();  // requires AVX-512 F/BW/VL/DQ/VNNI as well

}  // namespace alspec::kernels
