#include "tokenizer/spm_encoder.h"

#include <cstdio>
#include <queue>
#include <string>

#include "alspec/core/error.h"
#include "tokenizer/utf8_chars.h"

namespace alspec::tokenizer_detail {
namespace {

struct Symbol {
  int32_t prev;
  int32_t next;
  size_t offset;  // into the input text
  size_t len;     // bytes; 0 once merged into the left neighbour
};

struct Bigram {
  int32_t left;
  int32_t right;
  float score;
  size_t len;  // combined length when queued; a mismatch later means the entry is stale
};

struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

SpmEncoder::SpmEncoder(const VocabIndex& vocab, int32_t unk_id) : vocab_(vocab), unk_id_(unk_id) {
  int n_found = 0;
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    byte_ids_[b] = vocab_.find(name);
    if (byte_ids_[b] >= 0) ++n_found;
  }
  has_byte_fallback_ = n_found > 0;
}

void SpmEncoder::encode(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const size_t len = utf8_char_len(text, pos);
    const auto idx = static_cast<int32_t>(symbols.size());
    symbols.push_back({idx - 1, idx + 1, pos, len});
    pos += len;
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const size_t len = symbols[left].len + symbols[right].len;
    const int32_t id = vocab_.find(text.substr(symbols[left].offset, len));
    if (id < 0) return;
    queue.push({left, right, vocab_.scores[id], len});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Bigram top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.left];
    Symbol& right = symbols[top.right];
    if (left.len == 0 || right.len == 0 || left.len + right.len != top.len) continue;
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.left;
    try_add(left.prev, top.left);
    try_add(top.left, left.next);
  }

  for (int32_t i = 0; i != -1; i = symbols[i].next) {
    const std::string_view piece = text.substr(symbols[i].offset, symbols[i].len);
    // Every merge produced a vocab token, so only single characters can be missing.
    const int32_t id = vocab_.find(piece);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    if (has_byte_fallback_) {
      for (char c : piece) {
        const int32_t byte_id = byte_ids_[static_cast<uint8_t>(c)];
        if (byte_id >= 0) {
          out.push_back(byte_id);
        } else if (unk_id_ >= 0) {
          out.push_back(unk_id_);
        } else {
          throw_invalid_argument("tokenizer: byte " + std::to_string(static_cast<uint8_t>(c)) +
                                 " has no byte token and the vocab has no unknown token");
        }
      }
    } else if (unk_id_ >= 0) {
      out.push_back(unk_id_);
    } else {
      throw_invalid_argument("tokenizer: character '" + std::string(piece) +
                             "' is not in the vocab and the vocab has no unknown token");
    }
  }
}

}  // namespace alspec::tokenizer_detail
