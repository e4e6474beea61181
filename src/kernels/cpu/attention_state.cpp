#include "alspec/kernels/attention_state.h"

#include <algorithm>
#include <cmath>

namespace alspec {

void reset_attention_state(AttentionStateRef s, int head_dim) {
  std::fill(s.acc, s.acc + head_dim, 0.0f);
  *s.m = kEmptyStateMax;
  *s.l = 0.0f;
}

void merge_attention_state(AttentionStateRef dst, ConstAttentionStateRef src, int head_dim) {
  // Empty states carry no rows; skipping them also avoids (-inf) - (-inf) = NaN below.
  if (*src.m == kEmptyStateMax) return;
  if (*dst.m == kEmptyStateMax) {
    std::copy(src.acc, src.acc + head_dim, dst.acc);
    *dst.m = *src.m;
    *dst.l = *src.l;
    return;
  }
  const float m = std::max(*dst.m, *src.m);
  const float a = std::exp(*dst.m - m);
  const float b = std::exp(*src.m - m);
  *dst.l = a * *dst.l + b * *src.l;
  for (int i = 0; i < head_dim; ++i) dst.acc[i] = a * dst.acc[i] + b * src.acc[i];
  *dst.m = m;
}

void normalize_attention_state(ConstAttentionStateRef s, float* out, int head_dim) {
  if (*s.l == 0.0f) {
    std::fill(out, out + head_dim, 0.0f);
    return;
  }
  const float l = *s.l;
  for (int i = 0; i < head_dim; ++i) out[i] = s.acc[i] / l;
}

}  // namespace alspec
