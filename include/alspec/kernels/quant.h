// Block formats of the compute types: reference (de)quantisation, bit-exact with GGML's layouts.
//
// Dequantisation follows the GGML reference definitions exactly, including the float operation
// order (e.g. Q4_1: d*q + m; Q4_K: (d*sc)*q - (dmin*m); Q6_K: (d*sc)*q), so results match gguf-py
// bit for bit.
//
// Quantisation is simple round-to-nearest per block (any valid encoding is accepted by readers):
//   F16/BF16  round to nearest even (core/half.h).
//   Q8_0      d = fp16(amax/127); q = clamp(round(x/d), -127, 127) using the stored (rounded) d.
//   Q4_0      d = fp16(m/-8), m = the element of largest magnitude; q = clamp(round(x/d)+8, 0, 15).
//   Q4_1      d = fp16((max-min)/15), m = fp16(min); q = clamp(round((x-m)/d), 0, 15).
//   Q5_0      d = fp16(m/-16), m = the element of largest magnitude; q = clamp(round(x/d)+16, 0, 31),
//             low 4 bits in qs, bit 4 in qh.
//   Q4_K      per 32-element sub-block: scale = (max - min(0,min))/15, offset = -min(0,min);
//             d = fp16(max scale/63), dmin = fp16(max offset/63); 6-bit sc/m rounded to nearest;
//             q = clamp(round((x + dmin*m)/(d*sc)), 0, 15) with the stored values.
//   Q6_K      per 16-element sub-block: s = m/-32 (m = largest-magnitude element);
//             d = fp16(max|s|/127); sc = round(s/d) in int8; q = clamp(round(x/(d*sc)), -32, 31).
#pragma once

#include <cstdint>

#include "alspec/core/dtype.h"

namespace alspec {

// True for the types the kernels compute with: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q4_K, Q6_K.
bool is_compute_type(DType t);

// n elements (a multiple of the type's block size) from src (row_bytes(t, n) bytes) into dst.
// Throws Error(kInvalidArgument) for other types or a partial block.
void dequantize_row(DType t, const void* src, float* dst, int64_t n);
void quantize_row(DType t, const float* src, void* dst, int64_t n);

}  // namespace alspec
