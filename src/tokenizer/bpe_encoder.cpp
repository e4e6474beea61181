#include "tokenizer/bpe_encoder.h"

#include <queue>

#include "alspec/core/error.h"
#include "tokenizer/byte_unicode.h"

namespace alspec::tokenizer_detail {
namespace {

struct Symbol {
  int32_t prev;
  int32_t next;
  int32_t id;  // -1 for a byte whose character is not in the vocab (never merges)
  bool alive;
};

struct Candidate {
  int32_t rank;
  int32_t left;
  int32_t right;
  int32_t left_id;  // ids when queued; a change later means the entry is stale
  int32_t right_id;
};

struct CandidateOrder {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

}  // namespace

BpeEncoder::BpeEncoder(const VocabIndex& vocab, const std::vector<std::string>& merges, PreTokenizerKind pre,
                       bool ignore_merges, int32_t unk_id, const std::string& source)
    : vocab_(vocab), pre_(pre, source), ignore_merges_(ignore_merges), unk_id_(unk_id), merges_(merges.size()) {
  const auto& bu = ByteUnicode::get();
  for (int b = 0; b < 256; ++b) byte_ids_[b] = vocab_.find(bu.encode_byte(static_cast<uint8_t>(b)));

  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string& line = merges[rank];
    // Search from 1: the separator is the first space that is not the line's first character.
    const size_t sep = line.size() > 1 ? line.find(' ', 1) : std::string::npos;
    auto bad = [&](const std::string& why) {
      throw_invalid_model(source + ": tokenizer.ggml.merges[" + std::to_string(rank) + "] '" + line + "': " + why);
    };
    if (sep == std::string::npos || sep + 1 >= line.size()) bad("expected 'left right'");
    const std::string_view left(line.data(), sep);
    const std::string_view right(line.data() + sep + 1, line.size() - sep - 1);
    const int32_t left_id = vocab_.find(left);
    const int32_t right_id = vocab_.find(right);
    joined.assign(left).append(right);
    const int32_t result = vocab_.find(joined);
    if (left_id < 0 || right_id < 0) bad("a side is not a vocab token");
    if (result < 0) bad("the merged text is not a vocab token");
    // A repeated pair keeps its first (best) rank.
    merges_.insert(left_id, right_id, Merge{static_cast<int32_t>(rank), result});
  }
}

const Merge* BpeEncoder::find_merge(int32_t left, int32_t right) const {
  if (left < 0 || right < 0) return nullptr;
  return merges_.find(left, right);
}

void BpeEncoder::encode(std::string_view text, std::vector<int32_t>& out) const {
  for (std::string_view word : pre_.split(text)) encode_word(word, out);
}

void BpeEncoder::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    // Only ordinary tokens: special and user-defined texts are matched before pre-tokenising.
    const int32_t whole = vocab_.find(ByteUnicode::get().encode(word));
    if (whole >= 0 && vocab_.types[whole] == TokenType::kNormal) {
      out.push_back(whole);
      return;
    }
  }
  std::vector<Symbol> symbols(word.size());
  for (size_t i = 0; i < word.size(); ++i) {
    const auto idx = static_cast<int32_t>(i);
    symbols[i] = {idx - 1, idx + 1, byte_ids_[static_cast<uint8_t>(word[i])], true};
  }
  symbols.back().next = -1;

  std::priority_queue<Candidate, std::vector<Candidate>, CandidateOrder> queue;
  auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Merge* m = find_merge(symbols[left].id, symbols[right].id);
    if (m != nullptr) queue.push({m->rank, left, right, symbols[left].id, symbols[right].id});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.left];
    Symbol& right = symbols[top.right];
    if (!left.alive || !right.alive || left.id != top.left_id || right.id != top.right_id) continue;
    left.id = find_merge(top.left_id, top.right_id)->result;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.left;
    try_add(left.prev, top.left);
    try_add(top.left, left.next);
  }

  for (int32_t i = 0; i != -1; i = symbols[i].next) {
    if (symbols[i].id >= 0) {
      out.push_back(symbols[i].id);
    } else if (unk_id_ >= 0) {
      out.push_back(unk_id_);
    } else {
      throw_invalid_argument("tokenizer: byte " + std::to_string(static_cast<uint8_t>(word[static_cast<size_t>(i)])) +
                             " has no token in this byte-level vocab and there is no unknown token");
    }
  }
}

}  // namespace alspec::tokenizer_detail
