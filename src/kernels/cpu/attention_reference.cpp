#include "alspec/kernels/attention_reference.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "alspec/core/half.h"

namespace alspec {

std::span<const RowRange> sink_window_rows(int64_t L, int spec_chunk, RowRange (&storage)[2]) {
  const int64_t S = spec_chunk;
  storage[0] = {0, std::min(S, L)};
  const int64_t w = std::max(S, L - S);
  if (w >= L) return {storage, 1};
  storage[1] = {w, L};
  return {storage, 2};
}

std::vector<RowRange> quest_rows_reference(const AttentionShape& shape, const float* q, const KvCacheView& kv,
                                           int group, int64_t L, int spec_chunk) {
  const int d = shape.head_dim;
  const int n_rep = shape.n_heads / shape.n_kv_heads;
  const QuestLayout lay = quest_layout(L, spec_chunk);
  // Q+ and Q- of the group, summed in head order and rounded to integers (quantize_group_query).
  std::vector<float> q_neg(static_cast<size_t>(d), 0.0f), q_pos(static_cast<size_t>(d), 0.0f);
  for (int h = 0; h < n_rep; ++h) {
    const float* qh = q + static_cast<size_t>(group * n_rep + h) * static_cast<size_t>(d);
    for (int i = 0; i < d; ++i) {
      q_pos[static_cast<size_t>(i)] += std::max(qh[i], 0.0f);
      q_neg[static_cast<size_t>(i)] += std::min(qh[i], 0.0f);
    }
  }
  float qmax = 0.0f;
  for (int i = 0; i < d; ++i) qmax = std::max({qmax, q_pos[static_cast<size_t>(i)], -q_neg[static_cast<size_t>(i)]});
  const auto limit = static_cast<float>(quest_query_limit(d));
  const float f = qmax > 0.0f ? limit / qmax : 0.0f;
  auto quantize = [&](float x) { return static_cast<int64_t>(std::clamp(std::nearbyint(x * f), -limit, limit)); };
  std::vector<std::pair<double, int64_t>> scored;  // (-bound, page): sorts best first, ties to the lower page
  std::vector<float> key(static_cast<size_t>(d));
  std::vector<KeyBound> record(key_page_record_bytes(d));
  for (int64_t page = lay.sink_end / kKeyPageRows; page < lay.window_begin / kKeyPageRows; ++page) {
    std::vector<float> lo(static_cast<size_t>(d), INFINITY), hi(static_cast<size_t>(d), -INFINITY);
    for (int64_t r = page * kKeyPageRows; r < (page + 1) * kKeyPageRows; ++r) {
      load_key_row(kv.type, kv.k_blocks, kv.k_row(group, 0), r + kv.k_first, key.data(), d);
      for (int i = 0; i < d; ++i) {
        lo[static_cast<size_t>(i)] = std::min(lo[static_cast<size_t>(i)], key[static_cast<size_t>(i)]);
        hi[static_cast<size_t>(i)] = std::max(hi[static_cast<size_t>(i)], key[static_cast<size_t>(i)]);
      }
    }
    // Stored as 8-bit bounds rounded outwards with the page's scale (spec_predictor.h).
    encode_key_page(lo.data(), hi.data(), d, record.data());
    const auto* b = reinterpret_cast<const int8_t*>(record.data());
    int64_t dot = 0;
    for (int i = 0; i < d; ++i) {
      dot += quantize(q_neg[static_cast<size_t>(i)]) * b[i] + quantize(q_pos[static_cast<size_t>(i)]) * b[d + i];
    }
    scored.emplace_back(-(static_cast<double>(dot) * static_cast<double>(key_page_scale(record.data(), d))), page);
  }
  std::sort(scored.begin(), scored.end());
  std::vector<int64_t> pages;
  for (int64_t i = 0; i < lay.n_pages; ++i) pages.push_back(scored[static_cast<size_t>(i)].second);
  std::sort(pages.begin(), pages.end());
  std::vector<RowRange> rows{{0, lay.sink_end}};
  for (int64_t p : pages) rows.push_back({p * kKeyPageRows, (p + 1) * kKeyPageRows});
  rows.push_back({lay.window_begin, L});
  return rows;
}

void attention_reference(const AttentionShape& shape, const float* q, const KvCacheView& kv,
                         std::span<const RowRange> rows, double* out) {
  const int d = shape.head_dim;
  const int n_rep = shape.n_heads / shape.n_kv_heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  std::vector<float> k(static_cast<size_t>(d));
  std::vector<float> v(static_cast<size_t>(d));
  for (int h = 0; h < shape.n_heads; ++h) {
    const int kvh = h / n_rep;
    const float* qh = q + static_cast<size_t>(h) * d;
    std::vector<double> scores;
    for (const RowRange& r : rows) {
      for (int64_t t = r.begin; t < r.end; ++t) {
        load_key_row(kv.type, kv.k_blocks, kv.k_row(kvh, 0), t + kv.k_first, k.data(), d);
        double dot = 0.0;
        for (int i = 0; i < d; ++i) dot += static_cast<double>(qh[i]) * k[i];
        scores.push_back(dot * scale);
      }
    }
    double* o = out + static_cast<size_t>(h) * d;
    std::fill(o, o + d, 0.0);
    if (scores.empty()) continue;
    const double m = *std::max_element(scores.begin(), scores.end());
    double l = 0.0;
    size_t idx = 0;
    for (const RowRange& r : rows) {
      for (int64_t t = r.begin; t < r.end; ++t, ++idx) {
        const double p = std::exp(scores[idx] - m);
        l += p;
        load_kv_row(kv.type, kv.v_row(kvh, t), v.data(), d);
        for (int i = 0; i < d; ++i) o[i] += p * v[i];
      }
    }
    for (int i = 0; i < d; ++i) o[i] /= l;
  }
}

}  // namespace alspec
