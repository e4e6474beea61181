// Byte-level BPE (GPT-2 family): pre-tokenise with a regex, map each word's bytes to GPT-2's
// printable characters, then repeatedly merge the adjacent pair with the best (lowest) merge
// rank, ties leftmost, using a priority queue over a linked list of symbols, O(n log n).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/merge_table.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/vocab_index.h"

namespace alspec::tokenizer_detail {

class BpeEncoder {
 public:
  // Error(kInvalidModel) naming `source` on a merges line that is not "left right" with both
  // sides and their concatenation in the vocab. ignore_merges: a word that is itself a token
  // is emitted whole (Llama 3 behaviour).
  BpeEncoder(const VocabIndex& vocab, const std::vector<std::string>& merges, PreTokenizerKind pre,
             bool ignore_merges, int32_t unk_id, const std::string& source);
  void encode(std::string_view text, std::vector<int32_t>& out) const;

 private:
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
  const Merge* find_merge(int32_t left, int32_t right) const;

  const VocabIndex& vocab_;
  PreTokenizer pre_;
  bool ignore_merges_;
  int32_t unk_id_;
  std::array<int32_t, 256> byte_ids_{};  // token of each byte's character, -1 if absent
  MergeTable merges_;
};

}  // namespace alspec::tokenizer_detail
