// The activation rounding of matmul.h in plain code, for tests that compare a quantised-weight
// product with matvec_reference on the activations the kernels actually multiply.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace alspec::kernel_testing {

// x after the activation quantisation of matmul.h (dx = amax/127, x/dx rounded half to even).
// block: 32 for the per-block activations, 256 for the super-block form of Q4_K/Q6_K products.
inline std::vector<float> activation_as_quantised(const std::vector<float>& x, size_t block = 32) {
  std::vector<float> out(x.size());
  for (size_t b = 0; b < x.size() / block; ++b) {
    float amax = 0;
    for (size_t j = 0; j < block; ++j) amax = std::max(amax, std::fabs(x[block * b + j]));
    const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    for (size_t j = 0; j < block; ++j) {
      out[block * b + j] = std::nearbyint(std::min(127.0f, std::max(-127.0f, x[block * b + j] * id))) * d;
    }
  }
  return out;
}

}  // namespace alspec::kernel_testing
