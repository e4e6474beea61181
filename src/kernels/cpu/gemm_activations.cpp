// The activation-side lane sums of the GEMM kernels (gemm_kernels.h), portable: a pass over each
// row that costs a small fraction of the products it serves.
#include "kernels/cpu/gemm_kernels.h"

namespace alspec::kernels {

void lane_sums_negated(const ActivationRow& a, int32_t* neg_sum4) {
  for (int64_t i = 0; i < a.blocks * 8; ++i) {
    const int8_t* q = a.q + 4 * i;
    neg_sum4[i] = -(static_cast<int32_t>(q[0]) + q[1] + q[2] + q[3]);
  }
}

}  // namespace alspec::kernels
