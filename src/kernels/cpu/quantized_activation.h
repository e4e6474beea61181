// Activation rows quantised to 8-bit blocks of 32 (and, for Q4_K/Q6_K weights, super-blocks of
// 256) for the integer dot products of the quantised weight types (see matmul.h for the exact
// definition).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/dot_kernels.h"

namespace alspec::kernels {

// Rows of a batch, stored contiguously.
class QuantizedActivations {
 public:
  // Sizes the buffers for n rows of k floats (k a multiple of 32); with_groups also keeps the
  // 4-block group layout (ActivationRow::groups), with_super_blocks the super-block form of the
  // Q4_K/Q6_K products (k a multiple of 256); without with_blocks (products of Q4_K/Q6_K only)
  // the 32-element blocks are left unfilled. Then quantize_row fills each row; rows are
  // independent, so they may be filled in parallel.
  void prepare(int64_t n, int64_t k, bool with_groups, bool with_super_blocks = false, bool with_blocks = true);
  // Uses AVX-512 or AVX2 where available; quantize_row_scalar is its plain twin (bitwise equal).
  void quantize_row(int64_t t, const float* x);
  void quantize_row_scalar(int64_t t, const float* x);  // blocks (and super-blocks), without the groups
  ActivationRow row(int64_t t) const {
    ActivationRow r{q_.data() + t * blocks_ * 32, d_.data() + t * blocks_, sum_.data() + t * blocks_, blocks_,
                    groups_.empty() ? nullptr : groups_.data() + t * groups_per_row() * kGroupBytes};
    if (super_) {
      const int64_t s = blocks_ / 8;
      r.kq = kq_.data() + t * s * 256;
      r.kd = kd_.data() + t * s;
      r.ksum = ksum_.data() + t * s * 16;
      r.super_blocks = s;
    }
    return r;
  }

 private:
  std::vector<int8_t> q_, kq_;
  std::vector<float> d_, kd_;
  std::vector<int16_t> ksum_;
  bool super_ = false, blocks_on_ = true;
  std::vector<int32_t> sum_;
  std::vector<uint8_t> groups_;
  int64_t blocks_ = 0;
  int64_t groups_per_row() const { return (blocks_ + 3) / 4; }
  void build_groups(int64_t t);
};

}  // namespace alspec::kernels
