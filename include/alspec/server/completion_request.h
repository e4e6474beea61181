// Parsing and validation of /v1/completions and /v1/chat/completions bodies into typed
// requests. Every problem becomes an ApiError (400, or 404 for an unknown model) naming the field.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "alspec/model/sampler.h"
#include "alspec/server/chat_template.h"
#include "alspec/spec/spec_config.h"

namespace alspec {
class Tokenizer;
}

namespace alspec::server {

struct RequestLimits {
  int64_t ctx_size = 0;          // prompts longer than this are refused
  int max_n = 16;                // choices per prompt
  int max_logprobs = 20;         // top alternatives per token
  int max_prompts = 256;         // prompts in one request
  int max_stop = 16;             // stop strings
  std::vector<std::string> model_names;  // accepted values of "model" (empty list: any)
};

// Per-request speculation settings: the body's "alspec" object over the server defaults.
struct SpecOverride {
  std::optional<AttentionMode> mode;
  std::optional<float> lambda;
  std::optional<int> spec_chunk;
  std::optional<int64_t> echo_prefill;  // prompt tokens scored by exact prefill (default: all)
  SpecConfig apply(const SpecConfig& defaults) const;
};

struct CompletionRequest {
  std::vector<std::vector<int32_t>> prompts;  // token ids, one choice group per prompt
  int max_tokens = 16;
  SamplingParams sampling;  // temperature defaults to 1 as in the OpenAI API
  std::vector<std::string> stop;
  int n = 1;
  std::optional<int> logprobs;  // completions: top-K per token (0 = chosen token only)
  bool echo = false;
  bool stream = false;
  bool ignore_eos = false;  // keep generating past end-of-generation tokens (benchmarks)
  bool chat = false;
  SpecOverride alspec;
};

// `format` is the chat format detected from the model (chat requests only).
CompletionRequest parse_completion_request(const nlohmann::json& body, const Tokenizer& tok, const RequestLimits& lim);
CompletionRequest parse_chat_request(const nlohmann::json& body, const Tokenizer& tok, const RequestLimits& lim,
                                     ChatFormat format);

// Throws ApiError(400) unless `body` is a JSON object; parse errors become invalid_json.
nlohmann::json parse_json_body(const std::string& body);

}  // namespace alspec::server
