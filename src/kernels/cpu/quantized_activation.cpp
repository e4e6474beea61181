#include "kernels/cpu/quantized_activation.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace alspec::kernels {

void QuantizedActivations::prepare(int64_t n, int64_t k, bool with_groups) {
  blocks_ = k / 32;
  q_.resize(static_cast<size_t>(n * k));
  d_.resize(static_cast<size_t>(n * blocks_));
  sum_.resize(static_cast<size_t>(n * blocks_));
  groups_.assign(with_groups ? static_cast<size_t>(n * groups_per_row() * kGroupBytes) : 0, 0);
}

void QuantizedActivations::quantize_row(int64_t t, const float* x) {
  for (int64_t b = t * blocks_; b < (t + 1) * blocks_; ++b) {
    const float* xb = x + 32 * (b - t * blocks_);
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int8_t* qb = q_.data() + 32 * b;
    int32_t s = 0;
    for (int j = 0; j < 32; ++j) {
      // Round to nearest even by adding and removing 1.5*2^23 (exact for |v| < 2^22, like
      // nearbyint but without a library call); the clamp guards the last ulp of |x*id| <= 127.
      const float v = std::min(127.0f, std::max(-127.0f, xb[j] * id));
      const float r = (v + 12582912.0f) - 12582912.0f;
      qb[j] = static_cast<int8_t>(r);
      s += qb[j];
    }
    d_[static_cast<size_t>(b)] = d;
    sum_[static_cast<size_t>(b)] = s;
  }
  if (!groups_.empty()) build_groups(t);
}

void QuantizedActivations::build_groups(int64_t t) {
  const int64_t gpr = groups_per_row();
  {
    for (int64_t g = 0; g < gpr; ++g) {
      uint8_t* out = groups_.data() + (t * gpr + g) * kGroupBytes;
      int32_t init_lo[16] = {}, init_hi[16] = {};
      float dx[16] = {};
      for (int j = 0; j < 4 && 4 * g + j < blocks_; ++j) {
        const int64_t b = t * blocks_ + 4 * g + j;
        const int8_t* q = q_.data() + 32 * b;
        std::memcpy(out + 16 * j, q, 16);
        std::memcpy(out + 64 + 16 * j, q + 16, 16);
        for (int i = 0; i < 4; ++i) {
          for (int e = 0; e < 4; ++e) {
            init_lo[4 * j + i] -= 8 * q[4 * i + e];
            init_hi[4 * j + i] -= 8 * q[16 + 4 * i + e];
          }
          dx[4 * j + i] = d_[static_cast<size_t>(b)];
        }
      }
      std::memcpy(out + 128, init_lo, 64);
      std::memcpy(out + 192, init_hi, 64);
      std::memcpy(out + 256, dx, 64);
    }
  }
}

}  // namespace alspec::kernels
