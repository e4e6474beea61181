// Validated vocabulary shared by the encoders: texts, scores, types and a text -> id index.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "alspec/tokenizer/tokenizer_vocab.h"

namespace alspec::tokenizer_detail {

// Lets the index be probed with string_views (substrings of the input) without copies.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct VocabIndex {
  std::vector<std::string> tokens;
  std::vector<float> scores;  // empty for BPE vocabs
  std::vector<TokenType> types;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> ids;  // first id wins

  int32_t find(std::string_view text) const {
    auto it = ids.find(text);
    return it == ids.end() ? -1 : it->second;
  }
  int32_t size() const { return static_cast<int32_t>(tokens.size()); }
};

}  // namespace alspec::tokenizer_detail
