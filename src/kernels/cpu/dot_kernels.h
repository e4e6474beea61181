// Per-SIMD-level dot-product kernels behind matvec/matmul. Every level implements the same
// arithmetic (documented in alspec/kernels/matmul.h), so their results are bitwise equal; the
// scalar table is the portable fallback and the reference twin of the others.
// This header is included by files compiled for other targets: keep it free of inline code.
#pragma once

#include <cstdint>

namespace alspec::kernels {

// One activation row quantised to 32-element blocks: q[32*blocks] int8 in [-127,127], block
// scales d[blocks] (x ~ d*q) and block sums sum[blocks] of q.
struct ActivationRow {
  const int8_t* q;
  const float* d;
  const int32_t* sum;
  int64_t blocks;
};

// Dot of one weight row (in the table's type) with a quantised activation row.
using QuantDot = float (*)(const uint8_t* w_row, const ActivationRow& a);
// Dot of one weight row with k floats.
using FloatDot = float (*)(const uint8_t* w_row, const float* x, int64_t k);

struct DotKernels {
  FloatDot f32, f16, bf16;
  QuantDot q8_0, q4_0, q4_k, q6_k;
};

const DotKernels& dot_kernels_scalar();
const DotKernels& dot_kernels_avx2();    // requires AVX2, FMA, F16C
const DotKernels& dot_kernels_avx512();  // requires AVX-512 F/BW/VL/VNNI as well

}  // namespace alspec::kernels
