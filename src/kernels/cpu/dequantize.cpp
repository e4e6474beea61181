// Reference dequantisation of the compute types (GGML definitions, same float operation order).
#include <cstring>
#include <string>

#include "alspec/core/error.h"
#include "alspec/kernels/quant.h"
#include "kernels/cpu/block_layout.h"

namespace alspec {
namespace {

using namespace kernels;

void dequantize_q8_0(const uint8_t* b, float* y) {
  const float d = load_fp16(b);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
}

void dequantize_q4_0(const uint8_t* b, float* y) {
  const float d = load_fp16(b);
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>((b[2 + j] & 0xF) - 8);
    y[j + 16] = d * static_cast<float>((b[2 + j] >> 4) - 8);
  }
}

void dequantize_q4_1(const uint8_t* b, float* y) {
  const float d = load_fp16(b), m = load_fp16(b + 2);
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(b[4 + j] & 0xF) + m;
    y[j + 16] = d * static_cast<float>(b[4 + j] >> 4) + m;
  }
}

void dequantize_q5_0(const uint8_t* b, float* y) {
  const float d = load_fp16(b);
  const uint32_t qh = load_u32(b + 2);
  for (int j = 0; j < 16; ++j) {
    const int hi0 = static_cast<int>((qh >> j) & 1), hi1 = static_cast<int>((qh >> (j + 16)) & 1);
    y[j] = d * static_cast<float>(((b[6 + j] & 0xF) | (hi0 << 4)) - 16);
    y[j + 16] = d * static_cast<float>(((b[6 + j] >> 4) | (hi1 << 4)) - 16);
  }
}

void dequantize_q4_k(const uint8_t* b, float* y) {
  const float d = load_fp16(b);
  const float dmin = load_fp16(b + 2);
  const uint8_t* scales = b + kQ4_KScales;
  const uint8_t* qs = b + kQ4_KQs;
  for (int c = 0; c < 4; ++c) {
    int sc0, m0, sc1, m1;
    q4_k_scale_min(scales, 2 * c, sc0, m0);
    q4_k_scale_min(scales, 2 * c + 1, sc1, m1);
    const float d0 = d * static_cast<float>(sc0), dm0 = dmin * static_cast<float>(m0);
    const float d1 = d * static_cast<float>(sc1), dm1 = dmin * static_cast<float>(m1);
    for (int l = 0; l < 32; ++l) {
      y[64 * c + l] = d0 * static_cast<float>(qs[32 * c + l] & 0xF) - dm0;
      y[64 * c + 32 + l] = d1 * static_cast<float>(qs[32 * c + l] >> 4) - dm1;
    }
  }
}

void dequantize_q6_k(const uint8_t* b, float* y) {
  const float d = load_fp16(b + kQ6_KD);
  const auto* scales = reinterpret_cast<const int8_t*>(b + kQ6_KScales);
  for (int e = 0; e < kQK; ++e) {
    const float ds = d * static_cast<float>(scales[e / 16]);
    y[e] = ds * static_cast<float>(q6_k_value(b, e) - 32);
  }
}

template <int kBlock, int kBytes, void (*Fn)(const uint8_t*, float*)>
void dequantize_blocks(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kBlock; ++i) Fn(b + i * kBytes, dst + i * kBlock);
}

}  // namespace

bool is_compute_type(DType t) {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16: case DType::Q8_0:
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q4_K: case DType::Q6_K:
      return true;
    default:
      return false;
  }
}

void dequantize_row(DType t, const void* src, float* dst, int64_t n) {
  if (!is_compute_type(t)) {
    throw_invalid_argument("dequantize_row: unsupported type " + std::string(dtype_name(t)));
  }
  if (n < 0 || n % dtype_info(t).block_size != 0) {
    throw_invalid_argument("dequantize_row: " + std::to_string(n) + " elements is not a whole number of " +
                           std::string(dtype_name(t)) + " blocks");
  }
  const auto* s = static_cast<const uint8_t*>(src);
  switch (t) {
    case DType::F32:
      if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      break;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) dst[i] = load_fp16(s + 2 * i);
      break;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(load_u16(s + 2 * i));
      break;
    case DType::Q8_0: dequantize_blocks<kQ8_0Block, kQ8_0Bytes, dequantize_q8_0>(src, dst, n); break;
    case DType::Q4_0: dequantize_blocks<kQ4_0Block, kQ4_0Bytes, dequantize_q4_0>(src, dst, n); break;
    case DType::Q4_1: dequantize_blocks<kQ4_1Block, kQ4_1Bytes, dequantize_q4_1>(src, dst, n); break;
    case DType::Q5_0: dequantize_blocks<kQ5_0Block, kQ5_0Bytes, dequantize_q5_0>(src, dst, n); break;
    case DType::Q4_K: dequantize_blocks<kQK, kQ4_KBytes, dequantize_q4_k>(src, dst, n); break;
    case DType::Q6_K: dequantize_blocks<kQK, kQ6_KBytes, dequantize_q6_k>(src, dst, n); break;
    default: break;
  }
}

}  // namespace alspec
