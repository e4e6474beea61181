// The activation side of the GEMM kernels (gemm_kernels.h), portable: the lane sums of the
// 32-element GEMM and the token-tile panel of the Q4_K/Q6_K GEMM, each a pass over the rows that
// costs a small fraction of the products it serves.
#include "kernels/cpu/gemm_kernels.h"

#include <cstring>

namespace alspec::kernels {

void lane_sums_negated(const ActivationRow& a, int32_t* neg_sum4) {
  for (int64_t i = 0; i < a.blocks * 8; ++i) {
    const int8_t* q = a.q + 4 * i;
    neg_sum4[i] = -(static_cast<int32_t>(q[0]) + q[1] + q[2] + q[3]);
  }
}

void build_k_panel_tile(const ActivationRow* rows, int64_t n, int tw, int64_t tile, uint8_t* k_panel) {
  const int64_t sbs = rows[0].super_blocks;
  for (int64_t s = 0; s < sbs; ++s) {
    uint8_t* out = k_panel + (tile * sbs + s) * kKPanelBytes * tw;
    for (int t = 0; t < tw; ++t) {
      const int64_t ti = tile * tw + t;
      uint8_t* sums = out + 256 * tw + 4 * t;  // pair i at sums + 4 * tw * i
      uint8_t* da = out + 288 * tw + 4 * t;
      if (ti >= n) {  // padding: zero activations, sums and scale
        for (int g = 0; g < 64; ++g) std::memset(out + (g * tw + t) * 4, 0, 4);
        for (int i = 0; i < 8; ++i) std::memset(sums + 4 * tw * i, 0, 4);
        std::memset(da, 0, 4);
        continue;
      }
      const ActivationRow& a = rows[ti];
      for (int g = 0; g < 64; ++g) std::memcpy(out + (g * tw + t) * 4, a.kq + 256 * s + 4 * g, 4);
      for (int i = 0; i < 8; ++i) std::memcpy(sums + 4 * tw * i, a.ksum + 16 * s + 2 * i, 4);
      std::memcpy(da, a.kd + s, 4);
    }
  }
}

}  // namespace alspec::kernels
