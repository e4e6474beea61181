// Text generation on an Engine: prompt -> prefill -> sampled decode loop with stop rules.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "alspec/model/sampler.h"
#include "alspec/spec/engine.h"

namespace alspec {

struct GenerateRequest {
  std::vector<int32_t> prompt;       // token ids (BOS included if wanted)
  int n_predict = 128;               // max new tokens; 0 allowed
  SamplingParams sampling;
  std::vector<std::string> stop;     // stop strings (not included in the output)
  bool stop_at_eos = true;           // stop on end-of-generation tokens
  // Prompt caching: start from the longest prefilled prefix the engine already holds (see
  // Engine::reuse_prefix) instead of its current state; the last prompt token is always prefilled.
  bool reuse_prefix = false;
  // Called with each new token and the text it releases (text that could still become a stop
  // string is held back, then flushed with token -1); return false to stop (client gone).
  std::function<bool(int32_t token, const std::string& piece)> on_token;
  // Asked before each kPrefillCheckTokens tokens of the prompt are prefilled; false stops at once
  // (finish_reason "cancelled", no tokens), so a long prompt does not hold an engine for minutes
  // after its client went away. Splitting the prefill changes no result (prefill is exact and
  // position-wise independent of how the tokens are grouped).
  std::function<bool()> keep_prefilling;
  // Called with the logits each new token was sampled from.
  std::function<void(const float* logits)> on_logits;
};

inline constexpr int64_t kPrefillCheckTokens = 128;

struct GenerateResult {
  std::vector<int32_t> tokens;       // generated ids (excluding a final EOS)
  std::string text;
  std::string finish_reason;         // "length" | "stop" | "eos" | "cancelled"
  int64_t prompt_tokens = 0;
  int64_t reused_prompt_tokens = 0;  // prompt tokens taken from the engine's cache, not prefilled
  double prefill_seconds = 0, decode_seconds = 0;
  int64_t decoded_tokens = 0;        // decode steps timed
  SpecStats stats;                   // speculation statistics of this request
};

// Runs from the engine's current state (normally reset; see reuse_prefix); throws Error for a prompt that does
// not fit the context or is empty.
GenerateResult generate(Engine& engine, const GenerateRequest& request);

}  // namespace alspec
