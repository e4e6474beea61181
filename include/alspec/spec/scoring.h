// Teacher-forced scoring: log-probabilities of given tokens, the single definition shared by
// `alspec eval` and the server's `echo`/`logprobs`, so both report identical numbers.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <utility>
#include <vector>

#include "alspec/spec/engine.h"

namespace alspec {

struct TokenScore {
  int32_t token = 0;
  double logprob = 0;                             // log p(token | tokens before it)
  bool greedy = false;                            // token is the argmax of the distribution
  std::vector<std::pair<int32_t, double>> top;    // top-k (id, logprob), most likely first
};

struct ScoreOptions {
  // Positions [0, prefill_until) run through exact batched prefill; every later position is a
  // decode step in the engine's attention mode (so speculation affects the scores there).
  // Clamped to [1, n]. Exact mode gives bitwise the same numbers for any value.
  int64_t prefill_until = 1;
  int top_k = 0;
  // Prompt caching: keep the longest prefix (k <= prefill_until - 1 tokens) that the engine holds
  // from earlier exact prefills (Engine::reuse_prefix) instead of resetting. Positions inside the
  // reused prefix (1..k) are not scored: their entries have logprob NaN and no on_logits call.
  bool reuse_prefix = false;
  // Optional: sees each scored position's full n_vocab logits (e.g. for KL divergence).
  std::function<void(int64_t position, const float* logits)> on_logits;
};

// Scores tokens[1..n) given their prefixes, starting from an empty sequence (engine is reset,
// or truncated to a reused prefix).
// result[i-1] is the score of tokens[i].
std::vector<TokenScore> score_tokens(Engine& engine, std::span<const int32_t> tokens, const ScoreOptions& options);

// log-softmax helpers (double accumulation, fixed order).
double log_sum_exp(const float* logits, int n);
std::vector<std::pair<int32_t, double>> top_logprobs(const float* logits, int n, int k, double lse);

}  // namespace alspec
