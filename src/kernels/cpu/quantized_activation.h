// Activation rows quantised to 8-bit blocks of 32 for the integer dot products of the
// quantised weight types (see matmul.h for the exact definition).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/dot_kernels.h"

namespace alspec::kernels {

// Rows of a batch, stored contiguously.
class QuantizedActivations {
 public:
  // Quantises n rows of k floats (k a multiple of 32). Single-threaded, deterministic.
  void quantize(const float* x, int64_t n, int64_t k);
  ActivationRow row(int64_t t) const {
    return {q_.data() + t * blocks_ * 32, d_.data() + t * blocks_, sum_.data() + t * blocks_, blocks_};
  }

 private:
  std::vector<int8_t> q_;
  std::vector<float> d_;
  std::vector<int32_t> sum_;
  int64_t blocks_ = 0;
};

}  // namespace alspec::kernels
