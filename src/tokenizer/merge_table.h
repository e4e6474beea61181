// Open-addressing hash table from a token pair (left id, right id) to its BPE merge. Byte-level
// vocabularies carry up to ~300k merges; a flat table keeps both loading and the per-pair
// lookups during encoding free of node allocations and pointer chasing.
#pragma once

#include <cstdint>
#include <vector>

namespace alspec::tokenizer_detail {

struct Merge {
  int32_t rank;    // position in tokenizer.ggml.merges; lower merges first
  int32_t result;  // id of the concatenation
};

class MergeTable {
 public:
  explicit MergeTable(size_t expected = 0) { rehash(expected); }

  // Keeps the first entry for a pair (the best rank when inserted in rank order).
  void insert(int32_t left, int32_t right, Merge m) {
    if ((size_ + 1) * 2 > slots_.size()) rehash(slots_.size());
    Slot& s = slots_[probe(key(left, right))];
    if (s.key == kEmpty) {
      s = {key(left, right), m};
      ++size_;
    }
  }
  // nullptr when the pair never merges (ids must be >= 0).
  const Merge* find(int32_t left, int32_t right) const {
    const Slot& s = slots_[probe(key(left, right))];
    return s.key == kEmpty ? nullptr : &s.merge;
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // (-1, -1) is never a valid pair
  struct Slot {
    uint64_t key = kEmpty;
    Merge merge{};
  };
  static uint64_t key(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }
  // Index of the slot holding k, or of the empty slot where it would go (linear probing).
  size_t probe(uint64_t k) const {
    const size_t mask = slots_.size() - 1;
    size_t i = static_cast<size_t>((k * 0x9E3779B97F4A7C15ull) >> shift_);  // Fibonacci hashing
    while (slots_[i].key != kEmpty && slots_[i].key != k) i = (i + 1) & mask;
    return i;
  }
  void rehash(size_t at_least) {
    size_t cap = 16;
    int bits = 4;
    while (cap < at_least * 2) {
      cap *= 2;
      ++bits;
    }
    shift_ = 64 - bits;
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(cap, Slot{});
    size_ = 0;
    for (const Slot& s : old) {
      if (s.key != kEmpty) {
        slots_[probe(s.key)] = s;
        ++size_;
      }
    }
  }

  std::vector<Slot> slots_;  // size is a power of two, at most half full
  size_t size_ = 0;
  int shift_ = 60;
};

}  // namespace alspec::tokenizer_detail
