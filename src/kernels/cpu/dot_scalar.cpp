// Portable dot kernels: the definition of the arithmetic (see matmul.h) written out lane by lane.
// std::fma is a correctly rounded fused multiply-add, exactly what the SIMD levels execute.
#include <cmath>

#include "kernels/cpu/block_layout.h"
#include "kernels/cpu/dot_kernels.h"

namespace alspec::kernels {
namespace {

float reduce_lanes(float* v, int n) {  // pairwise halving: v[i] += v[i + n/2], ...
  for (int half = n / 2; half >= 1; half /= 2) {
    for (int i = 0; i < half; ++i) v[i] += v[i + half];
  }
  return v[0];
}

template <float (*Load)(const uint8_t*, int64_t)>
float float_dot(const uint8_t* w, const float* x, int64_t k) {
  float acc[64] = {};
  for (int64_t e = 0; e < k; ++e) acc[e % 64] = std::fma(Load(w, e), x[e], acc[e % 64]);
  return reduce_lanes(acc, 64);
}

float load_f32(const uint8_t* w, int64_t e) {
  float v;
  std::memcpy(&v, w + 4 * e, 4);
  return v;
}
float load_f16(const uint8_t* w, int64_t e) { return load_fp16(w + 2 * e); }
float load_bf16(const uint8_t* w, int64_t e) { return bf16_to_fp32(load_u16(w + 2 * e)); }

// Integer weights w[32] and lane scales s[8] of 32-element block b; Q4_1 also the scale of its
// min term.
struct Block {
  int w[32];
  float s[8];
  float min_scale = 0.0f;  // Q4_1: m*dx
};

void block_q8_0(const uint8_t* row, const ActivationRow& a, int64_t b, Block& out) {
  const uint8_t* p = row + kQ8_0Bytes * b;
  for (int j = 0; j < 32; ++j) out.w[j] = static_cast<int8_t>(p[2 + j]);
  const float s = load_fp16(p) * a.d[b];
  for (float& v : out.s) v = s;
}

void block_q4_0(const uint8_t* row, const ActivationRow& a, int64_t b, Block& out) {
  const uint8_t* p = row + kQ4_0Bytes * b;
  for (int j = 0; j < 16; ++j) {
    out.w[j] = (p[2 + j] & 0xF) - 8;
    out.w[j + 16] = (p[2 + j] >> 4) - 8;
  }
  const float s = load_fp16(p) * a.d[b];
  for (float& v : out.s) v = s;
}

void block_q4_1(const uint8_t* row, const ActivationRow& a, int64_t b, Block& out) {
  const uint8_t* p = row + kQ4_1Bytes * b;
  for (int j = 0; j < 16; ++j) {
    out.w[j] = p[4 + j] & 0xF;
    out.w[j + 16] = p[4 + j] >> 4;
  }
  const float s = load_fp16(p) * a.d[b];
  for (float& v : out.s) v = s;
  out.min_scale = load_fp16(p + 2) * a.d[b];
}

void block_q5_0(const uint8_t* row, const ActivationRow& a, int64_t b, Block& out) {
  const uint8_t* p = row + kQ5_0Bytes * b;
  const uint32_t qh = load_u32(p + 2);
  for (int j = 0; j < 16; ++j) {
    out.w[j] = ((p[6 + j] & 0xF) | static_cast<int>(((qh >> j) & 1) << 4)) - 16;
    out.w[j + 16] = ((p[6 + j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4)) - 16;
  }
  const float s = load_fp16(p) * a.d[b];
  for (float& v : out.s) v = s;
}

// Canonical sum of the 4 block groups x 8 lanes: r[k] = (g0 + g2) + (g1 + g3), then pairwise.
float reduce_groups(const float* acc) {
  float r[8];
  for (int k = 0; k < 8; ++k) r[k] = (acc[k] + acc[16 + k]) + (acc[8 + k] + acc[24 + k]);
  return reduce_lanes(r, 8);
}

template <void (*Decode)(const uint8_t*, const ActivationRow&, int64_t, Block&), bool kHasMin>
float quant_dot(const uint8_t* row, const ActivationRow& a) {
  float acc[32] = {}, min_acc[8] = {};
  Block blk;
  for (int64_t b = 0; b < a.blocks; ++b) {
    Decode(row, a, b, blk);
    const int8_t* q = a.q + 32 * b;
    for (int k = 0; k < 8; ++k) {
      int32_t lane = 0;
      for (int e = 4 * k; e < 4 * k + 4; ++e) lane += blk.w[e] * q[e];
      float& slot = acc[(b % 4) * 8 + k];
      slot = std::fma(static_cast<float>(lane), blk.s[k], slot);
    }
    if (kHasMin) min_acc[b % 8] = std::fma(static_cast<float>(a.sum[b]), blk.min_scale, min_acc[b % 8]);
  }
  const float dot = reduce_groups(acc);
  return kHasMin ? dot + reduce_lanes(min_acc, 8) : dot;
}

// Q4_K/Q6_K on the super-block activations (matmul.h): per super-block s the exact int32 sums
// isum (and, Q4_K, msum), then two float accumulators in increasing s.
float dot_q4_k(const uint8_t* row, const ActivationRow& a) {
  float acc = 0.0f, macc = 0.0f;
  for (int64_t s = 0; s < a.super_blocks; ++s) {
    const uint8_t* p = row + kQ4_KBytes * s;
    const int8_t* q = a.kq + 256 * s;
    const int16_t* qsum = a.ksum + 16 * s;
    int32_t isum = 0, msum = 0;
    for (int j = 0; j < 8; ++j) {
      int sc, m;
      q4_k_scale_min(p + kQ4_KScales, j, sc, m);
      const uint8_t* qs = p + kQ4_KQs + 32 * (j / 2);
      int32_t dot = 0;
      for (int l = 0; l < 32; ++l) dot += ((qs[l] >> (4 * (j & 1))) & 0xF) * q[32 * j + l];
      isum += sc * dot;
      msum += m * (qsum[2 * j] + qsum[2 * j + 1]);
    }
    const float da = a.kd[s];
    acc = std::fma(static_cast<float>(isum), load_fp16(p) * da, acc);
    macc = std::fma(static_cast<float>(msum), -(load_fp16(p + 2) * da), macc);
  }
  return acc + macc;
}

float dot_q6_k(const uint8_t* row, const ActivationRow& a) {
  float acc = 0.0f;
  for (int64_t s = 0; s < a.super_blocks; ++s) {
    const uint8_t* p = row + kQ6_KBytes * s;
    const int8_t* q = a.kq + 256 * s;
    const auto* sc = reinterpret_cast<const int8_t*>(p + kQ6_KScales);
    int32_t isum = 0, off = 0;
    for (int i = 0; i < 16; ++i) {
      int32_t dot = 0;
      for (int e = 16 * i; e < 16 * i + 16; ++e) dot += q6_k_value(p, e) * q[e];
      isum += sc[i] * dot;
      off += sc[i] * a.ksum[16 * s + i];
    }
    isum -= 32 * off;
    acc = std::fma(static_cast<float>(isum), load_fp16(p + kQ6_KD) * a.kd[s], acc);
  }
  return acc;
}

}  // namespace

const DotKernels& dot_kernels_scalar() {
  static const DotKernels k{float_dot<load_f32>,           float_dot<load_f16>,
                            float_dot<load_bf16>,          quant_dot<block_q8_0, false>,
                            quant_dot<block_q4_0, false>,  dot_q4_k,
                            dot_q6_k,  quant_dot<block_q4_1, true>,
                            quant_dot<block_q5_0, false>, false, nullptr};
  return k;
}

}  // namespace alspec::kernels
