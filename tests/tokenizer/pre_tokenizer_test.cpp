// The regex pre-tokenizers on hand-checked splits, and GPT-2's byte <-> character mapping.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tokenizer/byte_unicode.h"
#include "tokenizer/pre_tokenizer.h"

namespace alspec::tokenizer_detail {
namespace {

std::vector<std::string> split(PreTokenizerKind kind, std::string_view text) {
  PreTokenizer pre(kind, "test");
  std::vector<std::string> out;
  for (auto piece : pre.split(text)) out.emplace_back(piece);
  return out;
}

using Pieces = std::vector<std::string>;

TEST(PreTokenizer, Gpt2) {
  EXPECT_EQ(split(PreTokenizerKind::kGpt2, "Hello world's 12345  x\n"),
            (Pieces{"Hello", " world", "'s", " 12345", " ", " x", "\n"}));
  EXPECT_EQ(split(PreTokenizerKind::kGpt2, "I'M"), (Pieces{"I", "'", "M"}));  // contractions are lowercase only
  EXPECT_EQ(split(PreTokenizerKind::kGpt2, ""), Pieces{});
}

TEST(PreTokenizer, Llama3) {
  EXPECT_EQ(split(PreTokenizerKind::kLlama3, "Hello world's 12345  x\n"),
            (Pieces{"Hello", " world", "'s", " ", "123", "45", " ", " x", "\n"}));
  EXPECT_EQ(split(PreTokenizerKind::kLlama3, "I'M ok!!\n\nhi"), (Pieces{"I", "'M", " ok", "!!\n\n", "hi"}));
  // \p{L} is Unicode-aware: Cyrillic and CJK letters form words.
  EXPECT_EQ(split(PreTokenizerKind::kLlama3, "\xD0\xBD\xD0\xB5 \xE6\x88\x91\xE6\x83\xB3"),
            (Pieces{"\xD0\xBD\xD0\xB5", " \xE6\x88\x91\xE6\x83\xB3"}));
}

TEST(PreTokenizer, Qwen2SplitsSingleDigits) {
  EXPECT_EQ(split(PreTokenizerKind::kQwen2, "x 2024"), (Pieces{"x", " ", "2", "0", "2", "4"}));
}

// SmolLM: digits are isolated first, then each remaining piece gets the GPT-2 regex, so
// whitespace before a digit ends a piece on its own and "  def" keeps its two-stage split.
TEST(PreTokenizer, SmollmTwoStages) {
  EXPECT_EQ(split(PreTokenizerKind::kSmollm, "abc 123  def"), (Pieces{"abc", " ", "1", "2", "3", " ", " def"}));
  EXPECT_EQ(split(PreTokenizerKind::kSmollm, "x's 42!"), (Pieces{"x", "'s", " ", "4", "2", "!"}));
  EXPECT_EQ(split(PreTokenizerKind::kSmollm, ""), Pieces{});
}

TEST(PreTokenizer, InvalidUtf8BecomesGapPieces) {
  // Invalid bytes match nothing; they are kept as pieces of their own so no input is lost.
  const std::string text = "ab\xFF" "cd";
  const auto pieces = split(PreTokenizerKind::kLlama3, text);
  std::string joined;
  for (const auto& p : pieces) joined += p;
  EXPECT_EQ(joined, text);
  EXPECT_EQ(pieces, (Pieces{"ab", "\xFF", "cd"}));
}

TEST(ByteUnicode, MappingIsReversibleAndMatchesGpt2) {
  const auto& bu = ByteUnicode::get();
  EXPECT_EQ(bu.encode_byte(' '), "\xC4\xA0");   // U+0120 'Ġ'
  EXPECT_EQ(bu.encode_byte('\n'), "\xC4\x8A");  // U+010A 'Ċ'
  EXPECT_EQ(bu.encode_byte('A'), "A");
  EXPECT_EQ(bu.encode_byte(0xAD), "\xC5\x83");  // soft hyphen is the last remapped byte: U+0143
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  EXPECT_EQ(bu.decode(bu.encode(all)), all);
  EXPECT_EQ(bu.decode("\xE2\x98\x83"), "\xE2\x98\x83");  // characters outside the map pass through
}

}  // namespace
}  // namespace alspec::tokenizer_detail
