// The page predictor's bounds and selection (see spec_predictor.h; the kernel use is in
// attention_decode.cpp).
#include "alspec/kernels/spec_predictor.h"

#include <algorithm>
#include <bit>
#include <numeric>

#include "alspec/core/half.h"

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

KeyBound bf16_round_down(float x) {
  const auto bits = std::bit_cast<uint32_t>(x);
  const auto truncated = static_cast<KeyBound>(bits >> 16);  // toward zero
  return (bits & 0xffffu) != 0 && x < 0.0f ? static_cast<KeyBound>(truncated + 1) : truncated;
}

KeyBound bf16_round_up(float x) {
  const auto bits = std::bit_cast<uint32_t>(x);
  const auto truncated = static_cast<KeyBound>(bits >> 16);
  return (bits & 0xffffu) != 0 && x > 0.0f ? static_cast<KeyBound>(truncated + 1) : truncated;
}

void update_key_page_bounds(KeyBound* head_pages, int64_t row, const float* key, int head_dim) {
  KeyBound* lo = head_pages + (row / kKeyPageRows) * key_page_floats(head_dim);
  KeyBound* hi = lo + head_dim;
  const bool first = row % kKeyPageRows == 0;
  for (int i = 0; i < head_dim; ++i) {
    const KeyBound down = bf16_round_down(key[i]);
    const KeyBound up = bf16_round_up(key[i]);
    lo[i] = first || bf16_to_fp32(down) < bf16_to_fp32(lo[i]) ? down : lo[i];
    hi[i] = first || bf16_to_fp32(up) > bf16_to_fp32(hi[i]) ? up : hi[i];
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

void select_key_pages(const float* q, int n_rep, int head_dim, const KeyBound* head_pages, const QuestLayout& layout,
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
  // kLanes independent partial sums, added up in a fixed order: the compiler vectorises this (one
  // running sum would be a chain of dependent adds, ~4x slower and measured at +10-26% of the
  // call), and the result does not depend on the SIMD level.
  constexpr size_t kLanes = 16;
  for (int64_t p = first; p < end; ++p) {
    const KeyBound* lo = head_pages + p * floats;
    const KeyBound* hi = lo + head_dim;
    float lanes[kLanes] = {};
    size_t i = 0;
    for (; i + kLanes <= d; i += kLanes) {
      for (size_t j = 0; j < kLanes; ++j) {
        lanes[j] += q_pos[i + j] * bf16_to_fp32(hi[i + j]) + q_neg[i + j] * bf16_to_fp32(lo[i + j]);
      }
    }
    for (; i < d; ++i) lanes[i % kLanes] += q_pos[i] * bf16_to_fp32(hi[i]) + q_neg[i] * bf16_to_fp32(lo[i]);
    float s = 0.0f;
    for (size_t j = 0; j < kLanes; ++j) s += lanes[j];
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
