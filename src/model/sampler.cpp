#include "alspec/model/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <unordered_set>

#include "alspec/core/error.h"

namespace alspec {

void validate(const SamplingParams& p) {
  if (!std::isfinite(p.temperature)) throw_invalid_argument("temperature must be finite");
  if (p.top_k < 0) throw_invalid_argument("top-k must be >= 0");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) throw_invalid_argument("top-p must be in (0, 1]");
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) throw_invalid_argument("min-p must be in [0, 1]");
  if (!(p.repeat_penalty > 0.0f) || !std::isfinite(p.repeat_penalty)) throw_invalid_argument("repeat penalty must be > 0");
  if (p.repeat_last_n < 0) throw_invalid_argument("repeat-last-n must be >= 0");
}

Sampler::Sampler(SamplingParams params, int n_vocab)
    : params_(params), n_vocab_(n_vocab), state_(params.seed ^ 0x9e3779b97f4a7c15ull) {
  validate(params_);
}

double Sampler::next_uniform() {
  // splitmix64: tiny, well-mixed, identical everywhere.
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * (1.0 / 9007199254740992.0);
}

int32_t Sampler::sample(const float* logits, std::span<const int32_t> history) {
  work_.assign(logits, logits + n_vocab_);
  if (params_.repeat_penalty != 1.0f && params_.repeat_last_n > 0) {
    const size_t n = std::min<size_t>(history.size(), static_cast<size_t>(params_.repeat_last_n));
    std::unordered_set<int32_t> seen(history.end() - static_cast<std::ptrdiff_t>(n), history.end());
    for (int32_t t : seen) {
      if (t < 0 || t >= n_vocab_) continue;
      float& l = work_[static_cast<size_t>(t)];
      l = l > 0 ? l / params_.repeat_penalty : l * params_.repeat_penalty;
    }
  }
  cand_.clear();
  if (params_.temperature <= 0.0f) {
    // Greedy: first maximum wins (ties resolved to the lowest id, deterministic).
    int32_t best = 0;
    for (int32_t i = 1; i < n_vocab_; ++i) {
      if (work_[static_cast<size_t>(i)] > work_[static_cast<size_t>(best)]) best = i;
    }
    cand_.emplace_back(best, 1.0f);
    return best;
  }
  cand_.reserve(static_cast<size_t>(n_vocab_));
  for (int32_t i = 0; i < n_vocab_; ++i) cand_.emplace_back(i, work_[static_cast<size_t>(i)]);
  // Sort by logit descending, ties by id: a total order, so results never depend on sort internals.
  auto by_logit = [](const auto& a, const auto& b) { return a.second > b.second || (a.second == b.second && a.first < b.first); };
  if (params_.top_k > 0 && params_.top_k < n_vocab_) {
    std::partial_sort(cand_.begin(), cand_.begin() + params_.top_k, cand_.end(), by_logit);
    cand_.resize(static_cast<size_t>(params_.top_k));
  } else {
    std::sort(cand_.begin(), cand_.end(), by_logit);
  }
  // Softmax with temperature (in double for stable sums).
  const double inv_t = 1.0 / params_.temperature;
  const double max_l = cand_.front().second;
  double sum = 0.0;
  std::vector<double> p(cand_.size());
  for (size_t i = 0; i < cand_.size(); ++i) {
    p[i] = std::exp((cand_[i].second - max_l) * inv_t);
    sum += p[i];
  }
  for (auto& v : p) v /= sum;
  size_t keep = cand_.size();
  if (params_.top_p < 1.0f) {
    double cum = 0.0;
    for (size_t i = 0; i < cand_.size(); ++i) {
      cum += p[i];
      if (cum >= params_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  if (params_.min_p > 0.0f) {
    const double threshold = params_.min_p * p[0];
    size_t k = 1;
    while (k < keep && p[k] >= threshold) ++k;
    keep = k;
  }
  cand_.resize(keep);
  double kept = 0.0;
  for (size_t i = 0; i < keep; ++i) kept += p[i];
  for (size_t i = 0; i < keep; ++i) cand_[i].second = static_cast<float>(p[i] / kept);
  const double r = next_uniform();
  double cum = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    cum += p[i] / kept;
    if (r < cum) return cand_[i].first;
  }
  return cand_[keep - 1].first;
}

}  // namespace alspec
