// Token sampling: greedy, temperature, top-k, top-p, min-p, repetition penalty; seeded and
// reproducible across machines (own PRNG, no std:: distributions).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace alspec {

struct SamplingParams {
  float temperature = 0.0f;      // <= 0: greedy (argmax)
  int top_k = 0;                 // 0: off
  float top_p = 1.0f;            // 1: off
  float min_p = 0.0f;            // 0: off
  float repeat_penalty = 1.0f;   // 1: off (llama.cpp rule: positive logits /= p, negative *= p)
  int repeat_last_n = 64;        // window of recent tokens the penalty looks at
  uint64_t seed = 0;
};

// Throws Error(kInvalidArgument) for impossible values (negative temperature is treated as greedy).
void validate(const SamplingParams& p);

class Sampler {
 public:
  Sampler(SamplingParams params, int n_vocab);
  // Picks the next token from n_vocab logits; `history` is the sequence so far (for penalties).
  int32_t sample(const float* logits, std::span<const int32_t> history);
  // Probability distribution the last sample() drew from (after all filters), sparse.
  const std::vector<std::pair<int32_t, float>>& last_candidates() const { return cand_; }

 private:
  double next_uniform();  // [0, 1)

  SamplingParams params_;
  int n_vocab_;
  uint64_t state_;
  std::vector<float> work_;
  std::vector<std::pair<int32_t, float>> cand_;
};

}  // namespace alspec
