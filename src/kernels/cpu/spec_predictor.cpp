// The page predictor's bounds and selection (see spec_predictor.h; the kernel use is in
// attention_decode.cpp).
#include "alspec/kernels/spec_predictor.h"

#include <algorithm>
#include <numeric>

#include "alspec/core/error.h"

namespace alspec {

SpecPredictor parse_spec_predictor(const std::string& name) {
  if (name == "sink-window") return SpecPredictor::kSinkWindow;
  if (name == "quest") return SpecPredictor::kQuestPages;
  throw_invalid_argument("unknown predictor '" + name + "' (expected sink-window or quest)");
}

const char* spec_predictor_name(SpecPredictor p) {
  switch (p) {
    case SpecPredictor::kSinkWindow: return "sink-window";
    case SpecPredictor::kQuestPages: return "quest";
  }
  return "?";
}

void update_key_page_bounds(float* head_pages, int64_t row, const float* key, int head_dim) {
  float* lo = head_pages + (row / kKeyPageRows) * key_page_floats(head_dim);
  float* hi = lo + head_dim;
  if (row % kKeyPageRows == 0) {
    std::copy_n(key, head_dim, lo);
    std::copy_n(key, head_dim, hi);
    return;
  }
  for (int i = 0; i < head_dim; ++i) {
    lo[i] = std::min(lo[i], key[i]);
    hi[i] = std::max(hi[i], key[i]);
  }
}

QuestLayout quest_layout(int64_t L, int spec_chunk) {
  const int64_t S = spec_chunk;
  QuestLayout q;
  q.sink_end = kKeyPageRows;
  // The window starts on a page boundary, so the middle is whole pages: S/2 to S/2 + 15 rows.
  q.window_begin = std::max(q.sink_end, (L - S / 2) / kKeyPageRows * kKeyPageRows);
  const int64_t fixed = q.sink_end + (L - q.window_begin);
  const int64_t middle_pages = (q.window_begin - q.sink_end) / kKeyPageRows;
  q.n_pages = std::clamp<int64_t>((2 * S - fixed) / kKeyPageRows, 0, middle_pages);
  return q;
}

void select_key_pages(const float* q, int n_rep, int head_dim, const float* head_pages, const QuestLayout& layout,
                      std::vector<float>& scores, std::vector<int64_t>& pages) {
  const int64_t first = layout.sink_end / kKeyPageRows;
  const int64_t end = layout.window_begin / kKeyPageRows;
  const auto d = static_cast<size_t>(head_dim);
  // Q+ and Q- of the group (summed in head order), then one dot pair per page.
  scores.assign(2 * d + static_cast<size_t>(end - first), 0.0f);
  float* q_pos = scores.data();
  float* q_neg = q_pos + d;
  for (int h = 0; h < n_rep; ++h) {
    const float* qh = q + static_cast<size_t>(h) * d;
    for (size_t i = 0; i < d; ++i) {
      q_pos[i] += std::max(qh[i], 0.0f);
      q_neg[i] += std::min(qh[i], 0.0f);
    }
  }
  float* page_score = q_neg + d;
  const int64_t floats = key_page_floats(head_dim);
  for (int64_t p = first; p < end; ++p) {
    const float* lo = head_pages + p * floats;
    const float* hi = lo + head_dim;
    float s = 0.0f;
    for (size_t i = 0; i < d; ++i) s += q_pos[i] * hi[i] + q_neg[i] * lo[i];
    page_score[p - first] = s;
  }
  pages.resize(static_cast<size_t>(end - first));
  std::iota(pages.begin(), pages.end(), first);
  const auto n = static_cast<ptrdiff_t>(layout.n_pages);
  std::partial_sort(pages.begin(), pages.begin() + n, pages.end(), [&](int64_t a, int64_t b) {
    const float sa = page_score[a - first], sb = page_score[b - first];
    return sa > sb || (sa == sb && a < b);
  });
  pages.resize(static_cast<size_t>(n));
  std::sort(pages.begin(), pages.end());
}

}  // namespace alspec
