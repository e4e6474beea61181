// The activation-side lane sums of the GEMM kernels (gemm_kernels.h), portable: a pass over each
// row that costs a small fraction of the products it serves.
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
      auto* q = reinterpret_cast<int8_t*>(out);
      auto* sums = reinterpret_cast<int16_t*>(out + 256 * tw);
      auto* da = reinterpret_cast<float*>(out + 288 * tw);
      if (ti >= n) {
        for (int g = 0; g < 64; ++g) std::memset(q + (g * tw + t) * 4, 0, 4);
        for (int i = 0; i < 8; ++i) sums[(i * tw + t) * 2] = sums[(i * tw + t) * 2 + 1] = 0;
        da[t] = 0.0f;
        continue;
      }
      const ActivationRow& a = rows[ti];
      for (int g = 0; g < 64; ++g) std::memcpy(q + (g * tw + t) * 4, a.kq + 256 * s + 4 * g, 4);
      for (int i = 0; i < 8; ++i) {
        sums[(i * tw + t) * 2] = a.ksum[16 * s + 2 * i];
        sums[(i * tw + t) * 2 + 1] = a.ksum[16 * s + 2 * i + 1];
      }
      da[t] = a.kd[s];
    }
  }
}

}  // namespace alspec::kernels
