#include "kernels/cpu/quantized_activation.h"

#include <cmath>

namespace alspec::kernels {

void QuantizedActivations::quantize(const float* x, int64_t n, int64_t k) {
  blocks_ = k / 32;
  q_.resize(static_cast<size_t>(n * k));
  d_.resize(static_cast<size_t>(n * blocks_));
  sum_.resize(static_cast<size_t>(n * blocks_));
  for (int64_t b = 0; b < n * blocks_; ++b) {
    const float* xb = x + 32 * b;
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int32_t s = 0;
    for (int j = 0; j < 32; ++j) {
      // |x*id| <= 127 up to rounding; the clamp guards the last ulp.
      const float r = std::fmin(127.0f, std::fmax(-127.0f, std::nearbyint(xb[j] * id)));
      q_[static_cast<size_t>(32 * b + j)] = static_cast<int8_t>(r);
      s += static_cast<int32_t>(r);
    }
    d_[static_cast<size_t>(b)] = d;
    sum_[static_cast<size_t>(b)] = s;
  }
}

}  // namespace alspec::kernels
