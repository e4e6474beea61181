// The activation rounding of matmul.h in plain code, for tests that compare a quantised-weight
// product with matvec_reference on the activations the kernels actually multiply.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace alspec::kernel_testing {

// x after the activation quantisation of matmul.h (dx = amax/127, x/dx rounded half to even).
inline std::vector<float> activation_as_quantised(const std::vector<float>& x) {
  std::vector<float> out(x.size());
  for (size_t b = 0; b < x.size() / 32; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * b + j]));
    const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; ++j) {
      out[32 * b + j] = std::nearbyint(std::min(127.0f, std::max(-127.0f, x[32 * b + j] * id))) * d;
    }
  }
  return out;
}

}  // namespace alspec::kernel_testing
