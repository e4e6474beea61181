#include "alspec/spec/scoring.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "alspec/core/error.h"

namespace alspec {

double log_sum_exp(const float* logits, int n) {
  float m = logits[0];
  for (int i = 1; i < n; ++i) m = std::max(m, logits[i]);
  double s = 0.0;
  for (int i = 0; i < n; ++i) s += std::exp(static_cast<double>(logits[i]) - m);
  return m + std::log(s);
}

std::vector<std::pair<int32_t, double>> top_logprobs(const float* logits, int n, int k, double lse) {
  k = std::min(k, n);
  std::vector<int32_t> idx(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) idx[static_cast<size_t>(i)] = i;
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  std::vector<std::pair<int32_t, double>> out;
  out.reserve(static_cast<size_t>(k));
  for (int i = 0; i < k; ++i) out.emplace_back(idx[static_cast<size_t>(i)], logits[idx[static_cast<size_t>(i)]] - lse);
  return out;
}

std::vector<TokenScore> score_tokens(Engine& engine, std::span<const int32_t> tokens, const ScoreOptions& o) {
  const int n_vocab = engine.model().config().n_vocab;
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0) throw_invalid_argument("nothing to score: no tokens");
  if (n > engine.ctx_size()) {
    throw_invalid_argument(std::to_string(n) + " tokens do not fit the context size " + std::to_string(engine.ctx_size()));
  }
  const int64_t split = std::clamp<int64_t>(o.prefill_until, 1, n);
  const int64_t reused = o.reuse_prefix ? engine.reuse_prefix(tokens.subspan(0, static_cast<size_t>(split)), split - 1) : 0;
  if (!o.reuse_prefix) engine.reset();
  std::vector<TokenScore> out;
  out.reserve(static_cast<size_t>(n - 1));
  for (int64_t pos = 1; pos <= reused; ++pos) {  // inside the reused prefix: not recomputed
    TokenScore s;
    s.token = tokens[static_cast<size_t>(pos)];
    s.logprob = std::numeric_limits<double>::quiet_NaN();
    out.push_back(std::move(s));
  }
  auto score = [&](int64_t pos, const float* logits) {  // logits predict tokens[pos]
    if (o.on_logits) o.on_logits(pos, logits);
    TokenScore s;
    s.token = tokens[static_cast<size_t>(pos)];
    const double lse = log_sum_exp(logits, n_vocab);
    s.logprob = logits[s.token] - lse;
    const auto best = top_logprobs(logits, n_vocab, std::max(1, o.top_k), lse);
    s.greedy = best.front().first == s.token;
    if (o.top_k > 0) s.top = best;
    out.push_back(std::move(s));
  };
  const auto rest = tokens.subspan(static_cast<size_t>(reused), static_cast<size_t>(split - reused));
  engine.prefill(rest, PrefillLogits::kAll, [&](int64_t i, const float* logits) {
    const int64_t at = reused + i;  // absolute position of this row
    if (at + 1 < split) score(at + 1, logits);
    if (at + 1 == split && split < n) score(split, logits);
  });
  for (int64_t pos = split; pos + 1 < n; ++pos) {
    const float* logits = engine.decode(tokens[static_cast<size_t>(pos)]);
    score(pos + 1, logits);
  }
  return out;
}

}  // namespace alspec
