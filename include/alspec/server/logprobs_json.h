// The OpenAI legacy completions "logprobs" object built from score_tokens results:
// {"tokens": [...], "token_logprobs": [...], "top_logprobs": [{text: logprob}, ...], "text_offset": [...]}.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>

#include "alspec/spec/scoring.h"

namespace alspec {
class Tokenizer;
}

namespace alspec::server {

// `tokens` = prompt followed by generated ids; `scores[i-1]` scores tokens[i] (score_tokens).
// Entries cover tokens[first..]: first = 0 with echo (the first token gets null logprob and null
// top map, having no context), else the prompt length. Offsets index the returned text, which
// is decode(prompt) + completion with echo and the completion alone without.
// with_top: top_logprobs from scores[].top (else null).
nlohmann::json legacy_logprobs_json(const Tokenizer& tok, std::span<const int32_t> tokens,
                                    std::span<const TokenScore> scores, size_t prompt_len, bool echo, bool with_top);

// Length of the longest prefix of `s` that does not end inside a UTF-8 sequence (streaming
// holds the rest back until the next piece completes it).
size_t complete_utf8_prefix(std::string_view s);

}  // namespace alspec::server
