// Matrix-vector and matrix-matrix products with a weight matrix in any compute type.
//
// Arithmetic (identical at every SIMD level, so results are bitwise equal across levels, thread
// counts and between matvec and each matmul row):
//  - F32/F16/BF16: weights converted exactly to float; element e is fused-multiply-added into
//    accumulator lane e % 64, in increasing e; the 64 lanes are then summed pairwise
//    (lane i += lane i+32, then +16, +8, +4, +2, +1).
//  - Q8_0/Q4_0/Q4_1/Q5_0: the activation row is quantised once per 32-element block
//    (dx = amax/127, a = x*(1/dx) clamped to [-127,127], rounded half to even). For block b,
//    lane k (0..7) holds the exact integer sum over elements 4k..4k+3 of w*a (w the block's
//    integer weights: Q8_0 q, Q4_0 q-8, Q4_1 q in 0..15, Q5_0 q-16 with q = nibble | qh bit << 4).
//    It is fused-multiply-added with its float scale d*dx into accumulator lane k of group b%4;
//    the groups are combined as r[k] = (g0+g2) + (g1+g3) and the 8 lanes r[k] summed pairwise
//    (+4, +2, +1). Q4_1 adds its minimum term: for block b, lane b%8 of an 8-lane float
//    accumulator gets fma(float(sum(a)), m*dx) with sum(a) the exact integer sum of the block's
//    32 activations and m the block's fp16 minimum; those 8 lanes are summed pairwise and the
//    result is added last: dot = (pairwise sum of r) + (pairwise sum of the min lanes).
//  - Q4_K/Q6_K (integer super-blocks, as llama.cpp's Q8_K): the activation row is quantised
//    once per 256-element super-block s (da = amax/127, a as above), with the exact sums asum_i
//    of its 16-element pieces i = 0..15. Per super-block, in exact int32:
//      Q4_K: isum = sum_j sc_j * sum_{e in sub-block j of 32} u_e*a_e (u the nibble 0..15, sc_j
//            and m_j the 6-bit scale and min), msum = sum_j m_j * (asum_2j + asum_2j+1);
//      Q6_K: isum = sum_i sc_i * sum_{e in piece i} u_e*a_e - 32 * sum_i sc_i*asum_i (u the
//            6-bit value 0..63, sc_i the int8 scale of the 16 elements).
//    Bounds: |isum| <= 8*63*32*15*127 = 3.1e7 (Q4_K), 16*128*16*(63+32)*127 < 4e8 (Q6_K, partial
//    sums in any order included), |msum| <= 8*63*32*127 = 2.0e6: all within int32, so the order
//    of the integer work is free. The float part is then, in increasing s, with d (and dmin) the
//    super-block's fp16 scales as floats:
//      acc = fma(float(isum), d*da, acc);  Q4_K also: macc = fma(float(msum), -(dmin*da), macc)
//    starting from acc = macc = 0, and dot = acc (Q6_K) or acc + macc (Q4_K). (float(isum) rounds
//    to nearest even above 2^24.)
// Rows are split into tasks of matmul_rows_per_task(w) rows (about kMatmulTaskBytes of weights,
// independent of the thread count); matmul passes tiles of 16 tokens over a task's rows so that
// weights are read from memory once. Products of >= 2 tokens with Q8_0/Q4_0/Q5_0/Q4_K/Q6_K
// weights run at the AVX2/AVX-512 levels on register-blocked GEMM kernels instead (tasks of 16
// rows; src/kernels/cpu/gemm_kernels.h): the integer work is reordered (exact), the float
// operations of each output are the ones above, in the same order. A matmul with Q4_K/Q6_K
// weights quantises its activations in the super-block form (a fused product with other types
// as well keeps both forms; each product reads its own).
// x and y must not overlap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "alspec/core/dtype.h"
#include "alspec/runtime/device.h"

namespace alspec {

struct WeightMatrix {
  DType type = DType::F32;
  const void* data = nullptr;
  int64_t rows = 0;      // output features
  int64_t cols = 0;      // K, input features; a multiple of the type's block size
  size_t row_bytes = 0;  // stride between rows, >= alspec::row_bytes(type, cols)
};

// Weight bytes per task. Tasks run through Device::parallel_for_contiguous, so a thread streams its
// share of the rows in order and the kernels' prefetches past a task's end are useful; smaller
// tasks only refine the balance at the end. Measured on the 1B Q4_0 decode at 2 threads (one
// quiet run, roofline ratios): 16 KiB 0.67, 32 KiB 0.73-0.78, 64 KiB 0.78, 128 KiB 0.79,
// 256 KiB 0.75 (with plain parallel_for: 32 KiB 0.66, 64 KiB 0.70, 128 KiB 0.75).
inline constexpr size_t kMatmulTaskBytes = size_t{128} << 10;
// Rows per task for w: an even number (two-row kernels), at least 2.
int64_t matmul_rows_per_task(const WeightMatrix& w);

// One product of a fused matvec.
struct MatvecTarget {
  const WeightMatrix* w;
  float* y;  // w->rows floats
};

// y[rows] = W x. Throws Error(kInvalidArgument) for a non-compute type or a bad shape.
void matvec(Device& dev, const WeightMatrix& w, const float* x, float* y);
// y_i = W_i x for several matrices with the same cols (Q/K/V, gate/up): each y_i is bitwise equal
// to matvec(W_i, x), but x is quantised once and all rows share one parallel loop (one barrier).
void matvec_fused(Device& dev, std::span<const MatvecTarget> targets, const float* x);
// y[t][rows] = W x[t] for t < n (x is n rows of cols floats). Row t equals matvec on x[t] bitwise.
void matmul(Device& dev, const WeightMatrix& w, const float* x, int64_t n, float* y);
// matmul for several matrices with the same cols (batched Q/K/V, gate/up): each y_i ([n][rows_i])
// is bitwise matmul(W_i, x, n), but x is quantised once and all rows share one parallel loop.
void matmul_fused(Device& dev, std::span<const MatvecTarget> targets, const float* x, int64_t n);
// The dot kernels matvec/matmul use now (simd_level()), in words for reports, e.g.
// "avx2 dot kernels, Q4_0 two rows at a time".
std::string matmul_kernel_variant();
// Plain twin: dequantised weights times unquantised x, accumulated in double.
void matvec_reference(const WeightMatrix& w, const float* x, float* y);

}  // namespace alspec
