// Splits text into words before BPE with the regex of a named pre-tokenizer (PCRE2, UTF + UCP so
// that \p{L}, \p{N} and \s are Unicode-aware). Compiled once; split() is thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace alspec::tokenizer_detail {

// kSmollm: digits split one by one first, then the GPT-2 regex on the rest (two stages).
enum class PreTokenizerKind { kGpt2, kLlama3, kQwen2, kSmollm };

class PreTokenizer {
 public:
  // Error(kInvalidModel) naming `source` if the regex fails to compile (never for built-ins).
  PreTokenizer(PreTokenizerKind kind, const std::string& source);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Pieces cover the text exactly, in order: regex matches and the (rare) unmatched gaps,
  // e.g. invalid UTF-8 bytes, which no pattern matches.
  std::vector<std::string_view> split(std::string_view text) const;

 private:
  static void split_one(void* code, std::string_view text, std::vector<std::string_view>& pieces);
  // One compiled regex per stage; each stage splits every piece of the previous one.
  std::vector<void*> codes_;  // pcre2_code_8*, kept opaque so pcre2.h stays out of headers
};

}  // namespace alspec::tokenizer_detail
