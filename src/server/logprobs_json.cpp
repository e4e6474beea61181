#include "alspec/server/logprobs_json.h"

#include <algorithm>

#include "alspec/tokenizer/tokenizer.h"

namespace alspec::server {

using nlohmann::json;

size_t complete_utf8_prefix(std::string_view s) {
  // Look back at most 3 bytes for the lead byte of a sequence that is not finished yet.
  const size_t n = s.size();
  for (size_t back = 1; back <= std::min<size_t>(3, n); ++back) {
    const auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    size_t len = 1;
    if ((c & 0xE0) == 0xC0) len = 2;
    else if ((c & 0xF0) == 0xE0) len = 3;
    else if ((c & 0xF8) == 0xF0) len = 4;
    return len > back ? n - back : n;
  }
  return n;
}

json legacy_logprobs_json(const Tokenizer& tok, std::span<const int32_t> tokens, std::span<const TokenScore> scores,
                          size_t prompt_len, bool echo, bool with_top) {
  json out;
  json texts = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
  const size_t first = echo ? 0 : prompt_len;
  // Prompt offsets index decode(prompt) (which drops the SentencePiece space of the first word);
  // generated tokens follow it piece by piece, exactly as the completion text is built.
  size_t gen_offset = echo ? tok.decode(tokens.subspan(0, prompt_len)).size() : 0;
  for (size_t i = first; i < tokens.size(); ++i) {
    texts.push_back(tok.token_to_piece(tokens[i], /*skip_special=*/false));
    if (i < prompt_len) {
      offsets.push_back(tok.decode(tokens.subspan(0, i)).size());
    } else {
      offsets.push_back(gen_offset);
      gen_offset += tok.token_to_piece(tokens[i]).size();
    }
    if (i == 0) {
      lps.push_back(nullptr);
      tops.push_back(nullptr);
      continue;
    }
    const TokenScore& s = scores[i - 1];
    lps.push_back(s.logprob);
    if (with_top) {
      json m = json::object();
      for (const auto& [id, lp] : s.top) {
        const std::string key = tok.token_to_piece(id, /*skip_special=*/false);
        if (!m.contains(key)) m[key] = lp;  // distinct ids can share a text: keep the likelier
      }
      tops.push_back(std::move(m));
    }
  }
  out["tokens"] = std::move(texts);
  out["token_logprobs"] = std::move(lps);
  out["top_logprobs"] = with_top ? std::move(tops) : json(nullptr);
  out["text_offset"] = std::move(offsets);
  return out;
}

}  // namespace alspec::server
