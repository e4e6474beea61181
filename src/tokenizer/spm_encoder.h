// SentencePiece-style BPE over UTF-8 characters: repeatedly merge the adjacent pair whose
// concatenation is the highest-scoring vocab token (ties: leftmost), using a priority queue over
// a linked list of symbols, O(n log n). Characters left unmerged that are not tokens fall back
// to <0xNN> byte tokens, or to the unknown token when the vocab has no byte tokens.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/vocab_index.h"

namespace alspec::tokenizer_detail {

class SpmEncoder {
 public:
  SpmEncoder(const VocabIndex& vocab, int32_t unk_id);
  // `text` already has spaces replaced by U+2581 and any space prefix added.
  void encode(std::string_view text, std::vector<int32_t>& out) const;
  bool has_byte_fallback() const { return has_byte_fallback_; }

 private:
  const VocabIndex& vocab_;
  int32_t unk_id_;
  std::array<int32_t, 256> byte_ids_{};
  bool has_byte_fallback_ = false;
};

}  // namespace alspec::tokenizer_detail
