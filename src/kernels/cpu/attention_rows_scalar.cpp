// Portable row kernel: rows decoded with load_key_row / load_kv_row, float arithmetic, std::exp. Used when the CPU
// or head_dim rules out the SIMD variants, and as their plain twin in the tests.
#include <algorithm>
#include <cmath>

#include "alspec/kernels/attention.h"
#include "alspec/kernels/attention_state.h"
#include "kernels/cpu/attention_rows.h"

namespace alspec::attention_detail {

void accumulate_rows_scalar(const GroupRows& g, int64_t begin, int64_t end, GroupState s, float* scratch) {
  const int d = g.head_dim;
  constexpr int T = kAttentionTileRows;
  float* kf = scratch;
  float* vf = kf + static_cast<size_t>(T) * d;
  float* p = vf + static_cast<size_t>(T) * d;
  for (int64_t r0 = begin; r0 < end; r0 += T) {
    const int nt = static_cast<int>(std::min<int64_t>(T, end - r0));
    for (int t = 0; t < nt; ++t) {
      load_key_row(g.type, g.k_blocks, g.k, r0 + t + g.k_first, kf + static_cast<size_t>(t) * d, d);
      load_kv_row(g.type, g.v + static_cast<size_t>(r0 + t) * g.row_bytes, vf + static_cast<size_t>(t) * d, d);
    }
    for (int h = 0; h < g.n_rep; ++h) {
      const float* q = g.q + static_cast<size_t>(h) * d;
      float* ph = p + static_cast<size_t>(h) * T;
      float tile_max = kEmptyStateMax;
      for (int t = 0; t < nt; ++t) {
        const float* k = kf + static_cast<size_t>(t) * d;
        float dot = 0.0f;
        for (int i = 0; i < d; ++i) dot += q[i] * k[i];
        ph[t] = dot * g.scale;
        tile_max = std::max(tile_max, ph[t]);
      }
      const float m_new = std::max(s.m[h], tile_max);
      const float alpha = s.m[h] == kEmptyStateMax ? 0.0f : std::exp(s.m[h] - m_new);
      float sum = 0.0f;
      for (int t = 0; t < nt; ++t) {
        ph[t] = std::exp(ph[t] - m_new);
        sum += ph[t];
      }
      float* acc = s.acc + static_cast<size_t>(h) * d;
      if (alpha != 1.0f) {
        for (int i = 0; i < d; ++i) acc[i] *= alpha;
      }
      s.l[h] = s.l[h] * alpha + sum;
      s.m[h] = m_new;
      for (int t = 0; t < nt; ++t) {
        const float* v = vf + static_cast<size_t>(t) * d;
        for (int i = 0; i < d; ++i) acc[i] += ph[t] * v[i];
      }
    }
  }
}

void accumulate_ranges_scalar(const GroupRows& g, const RowRange* r, int n, GroupState s, float* scratch) {
  for (int i = 0; i < n; ++i) accumulate_rows_scalar(g, r[i].begin, r[i].end, s, scratch);
}

}  // namespace alspec::attention_detail
