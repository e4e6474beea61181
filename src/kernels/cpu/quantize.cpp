// Round-to-nearest quantisers (see quant.h for the exact choice of scales). Each block is
// encoded with the stored, fp16-rounded scales so that dequantisation reproduces the intent.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "alspec/core/error.h"
#include "alspec/kernels/quant.h"
#include "kernels/cpu/block_layout.h"

namespace alspec {
namespace {

using namespace kernels;

int clamp_round(float v, int lo, int hi) {
  const float r = std::nearbyint(v);
  if (!(r >= static_cast<float>(lo))) return lo;  // also catches NaN
  if (r > static_cast<float>(hi)) return hi;
  return static_cast<int>(r);
}

// Element of largest magnitude, keeping its sign (first one on ties).
float signed_absmax(const float* x, int n) {
  float m = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > std::fabs(m)) m = x[i];
  }
  return m;
}

void quantize_q8_0(const float* x, uint8_t* b) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const uint16_t dh = fp32_to_fp16(amax / 127.0f);
  store_u16(b, dh);
  const float d = fp16_to_fp32(dh);
  for (int j = 0; j < 32; ++j) {
    const int q = d == 0.0f ? 0 : clamp_round(x[j] / d, -127, 127);
    b[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(q));
  }
}

void quantize_q4_0(const float* x, uint8_t* b) {
  const uint16_t dh = fp32_to_fp16(signed_absmax(x, 32) / -8.0f);
  store_u16(b, dh);
  const float d = fp16_to_fp32(dh);
  for (int j = 0; j < 16; ++j) {
    const int q0 = d == 0.0f ? 8 : clamp_round(x[j] / d + 8.0f, 0, 15);
    const int q1 = d == 0.0f ? 8 : clamp_round(x[j + 16] / d + 8.0f, 0, 15);
    b[2 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
  }
}

void quantize_q4_1(const float* x, uint8_t* b) {
  float lo = x[0], hi = x[0];
  for (int j = 1; j < 32; ++j) {
    lo = std::min(lo, x[j]);
    hi = std::max(hi, x[j]);
  }
  const uint16_t dh = fp32_to_fp16((hi - lo) / 15.0f), mh = fp32_to_fp16(lo);
  store_u16(b, dh);
  store_u16(b + 2, mh);
  const float d = fp16_to_fp32(dh), m = fp16_to_fp32(mh);
  for (int j = 0; j < 16; ++j) {
    const int q0 = d == 0.0f ? 0 : clamp_round((x[j] - m) / d, 0, 15);
    const int q1 = d == 0.0f ? 0 : clamp_round((x[j + 16] - m) / d, 0, 15);
    b[4 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
  }
}

void quantize_q5_0(const float* x, uint8_t* b) {
  const uint16_t dh = fp32_to_fp16(signed_absmax(x, 32) / -16.0f);
  store_u16(b, dh);
  const float d = fp16_to_fp32(dh);
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const int q0 = d == 0.0f ? 16 : clamp_round(x[j] / d + 16.0f, 0, 31);
    const int q1 = d == 0.0f ? 16 : clamp_round(x[j + 16] / d + 16.0f, 0, 31);
    b[6 + j] = static_cast<uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
    qh |= static_cast<uint32_t>(q0 >> 4) << j;
    qh |= static_cast<uint32_t>(q1 >> 4) << (j + 16);
  }
  std::memcpy(b + 2, &qh, sizeof qh);
}

void quantize_q4_k(const float* x, uint8_t* b) {
  float scale[8], offset[8];
  float max_scale = 0.0f, max_offset = 0.0f;
  for (int s = 0; s < 8; ++s) {
    float lo = 0.0f, hi = -INFINITY;
    for (int l = 0; l < 32; ++l) {
      lo = std::min(lo, x[32 * s + l]);
      hi = std::max(hi, x[32 * s + l]);
    }
    scale[s] = (hi - lo) / 15.0f;
    offset[s] = -lo;
    max_scale = std::max(max_scale, scale[s]);
    max_offset = std::max(max_offset, offset[s]);
  }
  const uint16_t dh = fp32_to_fp16(max_scale / 63.0f), dminh = fp32_to_fp16(max_offset / 63.0f);
  const float d = fp16_to_fp32(dh), dmin = fp16_to_fp32(dminh);
  int sc[8], m[8];
  for (int s = 0; s < 8; ++s) {
    sc[s] = d == 0.0f ? 0 : clamp_round(scale[s] / d, 0, 63);
    m[s] = dmin == 0.0f ? 0 : clamp_round(offset[s] / dmin, 0, 63);
  }
  store_u16(b, dh);
  store_u16(b + 2, dminh);
  uint8_t* scales = b + kQ4_KScales;
  for (int j = 0; j < 4; ++j) {
    scales[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    scales[j + 4] = static_cast<uint8_t>(m[j] | ((m[j + 4] >> 4) << 6));
    scales[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
  }
  uint8_t q[kQK];
  for (int s = 0; s < 8; ++s) {
    const float ds = d * static_cast<float>(sc[s]), dm = dmin * static_cast<float>(m[s]);
    for (int l = 0; l < 32; ++l) {
      q[32 * s + l] = static_cast<uint8_t>(ds == 0.0f ? 0 : clamp_round((x[32 * s + l] + dm) / ds, 0, 15));
    }
  }
  uint8_t* qs = b + kQ4_KQs;
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) qs[32 * c + l] = static_cast<uint8_t>(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
  }
}

void quantize_q6_k(const float* x, uint8_t* b) {
  float s[16];
  float max_s = 0.0f;
  for (int k = 0; k < 16; ++k) {
    s[k] = signed_absmax(x + 16 * k, 16) / -32.0f;
    max_s = std::max(max_s, std::fabs(s[k]));
  }
  const uint16_t dh = fp32_to_fp16(max_s / 127.0f);
  const float d = fp16_to_fp32(dh);
  auto* scales = reinterpret_cast<int8_t*>(b + kQ6_KScales);
  for (int k = 0; k < 16; ++k) scales[k] = static_cast<int8_t>(d == 0.0f ? 0 : clamp_round(s[k] / d, -128, 127));
  store_u16(b + kQ6_KD, dh);
  std::fill(b, b + kQ6_KScales, uint8_t{0});
  uint8_t* qh = b + kQ6_KQh;
  for (int e = 0; e < kQK; ++e) {
    const float ds = d * static_cast<float>(scales[e / 16]);
    const int q = (ds == 0.0f ? 0 : clamp_round(x[e] / ds, -32, 31)) + 32;
    const int half = e / 128, r = e % 128, quarter = r / 32, l = r % 32;
    uint8_t& lbyte = b[64 * half + l + ((quarter & 1) ? 32 : 0)];
    lbyte = static_cast<uint8_t>(lbyte | ((q & 0xF) << (quarter >= 2 ? 4 : 0)));
    qh[32 * half + l] = static_cast<uint8_t>(qh[32 * half + l] | ((q >> 4) << (2 * quarter)));
  }
}

template <int kBlock, int kBytes, void (*Fn)(const float*, uint8_t*)>
void quantize_blocks(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / kBlock; ++i) Fn(src + i * kBlock, b + i * kBytes);
}

}  // namespace

void quantize_row(DType t, const float* src, void* dst, int64_t n) {
  if (!is_compute_type(t)) {
    throw_invalid_argument("quantize_row: unsupported type " + std::string(dtype_name(t)));
  }
  if (n < 0 || n % dtype_info(t).block_size != 0) {
    throw_invalid_argument("quantize_row: " + std::to_string(n) + " elements is not a whole number of " +
                           std::string(dtype_name(t)) + " blocks");
  }
  auto* d = static_cast<uint8_t*>(dst);
  switch (t) {
    case DType::F32:
      if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      break;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) store_u16(d + 2 * i, fp32_to_fp16(src[i]));
      break;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) store_u16(d + 2 * i, fp32_to_bf16(src[i]));
      break;
    case DType::Q8_0: quantize_blocks<kQ8_0Block, kQ8_0Bytes, quantize_q8_0>(src, dst, n); break;
    case DType::Q4_0: quantize_blocks<kQ4_0Block, kQ4_0Bytes, quantize_q4_0>(src, dst, n); break;
    case DType::Q4_1: quantize_blocks<kQ4_1Block, kQ4_1Bytes, quantize_q4_1>(src, dst, n); break;
    case DType::Q5_0: quantize_blocks<kQ5_0Block, kQ5_0Bytes, quantize_q5_0>(src, dst, n); break;
    case DType::Q4_K: quantize_blocks<kQK, kQ4_KBytes, quantize_q4_k>(src, dst, n); break;
    case DType::Q6_K: quantize_blocks<kQK, kQ6_KBytes, quantize_q6_k>(src, dst, n); break;
    default: break;
  }
}

}  // namespace alspec
