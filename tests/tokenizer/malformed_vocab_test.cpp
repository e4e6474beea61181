// Malformed or unsupported vocabularies give Error(kInvalidModel) naming the file and the
// problem, both through from_gguf (real GGUF images) and from_vocab.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/gguf/gguf_file.h"
#include "alspec/gguf/gguf_writer.h"
#include "alspec/tokenizer/tokenizer.h"

namespace alspec {
namespace {

// Byte-level BPE vocab: the four characters plus two merges.
gguf::GgufWriter small_bpe() {
  gguf::GgufWriter w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "gpt-2");
  w.set_string_array("tokenizer.ggml.tokens", {"a", "b", "ab", "abb", "<|end|>"});
  w.set_i32_array("tokenizer.ggml.token_type", std::vector<int32_t>{1, 1, 1, 1, 3});
  w.set_string_array("tokenizer.ggml.merges", {"a b", "ab b"});
  w.set_u32("tokenizer.ggml.eos_token_id", 4);
  return w;
}

gguf::GgufWriter small_spm() {
  gguf::GgufWriter w;
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "\xE2\x96\x81" "a"});
  w.set_f32_array("tokenizer.ggml.scores", std::vector<float>{0, 0, 0, -1, -2, -3});
  w.set_i32_array("tokenizer.ggml.token_type", std::vector<int32_t>{2, 3, 3, 1, 1, 1});
  return w;
}

std::unique_ptr<Tokenizer> load(const gguf::GgufWriter& w) {
  return Tokenizer::from_gguf(*gguf::GgufFile::from_bytes(w.to_bytes(), "bad.gguf"));
}

// Loading must fail with kInvalidModel and a message naming the file and containing `needle`.
void expect_invalid(const gguf::GgufWriter& w, const std::string& needle) {
  try {
    load(w);
    ADD_FAILURE() << "loaded although '" << needle << "' was expected";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidModel) << e.what();
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bad.gguf"), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  }
}

gguf::GgufWriter edit(gguf::GgufWriter w, const std::function<void(gguf::GgufWriter&)>& fn) {
  fn(w);
  return w;
}

TEST(MalformedVocab, ValidSmallVocabsLoad) {
  const auto bpe = load(small_bpe());
  EXPECT_EQ(bpe->encode("abb", false), (std::vector<int32_t>{3}));
  EXPECT_TRUE(bpe->is_end_of_generation(4));
  const auto spm = load(small_spm());
  EXPECT_EQ(spm->encode("a a", true), (std::vector<int32_t>{1, 5, 5}));
}

TEST(MalformedVocab, MissingOrUnsupportedModel) {
  expect_invalid(edit(small_bpe(), [](auto& w) { w.remove("tokenizer.ggml.model"); }), "tokenizer.ggml.model");
  expect_invalid(edit(small_bpe(), [](auto& w) { w.set_string("tokenizer.ggml.model", "bert"); }), "'bert'");
  expect_invalid(edit(small_bpe(), [](auto& w) { w.set_string("tokenizer.ggml.pre", "klingon"); }), "'klingon'");
}

TEST(MalformedVocab, MissingTokens) {
  expect_invalid(edit(small_bpe(), [](auto& w) { w.remove("tokenizer.ggml.tokens"); }), "tokenizer.ggml.tokens");
  expect_invalid(edit(small_spm(), [](auto& w) { w.set_string_array("tokenizer.ggml.tokens", {}); }),
                 "tokenizer.ggml.tokens");
  // Wrong value type: reported by the GGUF getter with the key name.
  expect_invalid(edit(small_bpe(), [](auto& w) { w.set_u32("tokenizer.ggml.tokens", 3); }), "tokenizer.ggml.tokens");
}

TEST(MalformedVocab, LengthMismatches) {
  expect_invalid(edit(small_spm(), [](auto& w) { w.set_f32_array("tokenizer.ggml.scores", std::vector<float>{0}); }),
                 "tokenizer.ggml.scores has 1 entries for 6 tokens");
  expect_invalid(edit(small_spm(), [](auto& w) { w.remove("tokenizer.ggml.scores"); }), "tokenizer.ggml.scores");
  expect_invalid(
      edit(small_bpe(), [](auto& w) { w.set_i32_array("tokenizer.ggml.token_type", std::vector<int32_t>{1, 1}); }),
      "tokenizer.ggml.token_type has 2 entries");
  expect_invalid(edit(small_bpe(),
                      [](auto& w) {
                        w.set_i32_array("tokenizer.ggml.token_type", std::vector<int32_t>{1, 1, 1, 9, 3});
                      }),
                 "token_type[3] = 9");
}

TEST(MalformedVocab, BadMerges) {
  expect_invalid(edit(small_bpe(), [](auto& w) { w.remove("tokenizer.ggml.merges"); }), "tokenizer.ggml.merges");
  expect_invalid(edit(small_bpe(), [](auto& w) { w.set_string_array("tokenizer.ggml.merges", {"a b", "abb"}); }),
                 "merges[1] 'abb'");
  expect_invalid(edit(small_bpe(), [](auto& w) { w.set_string_array("tokenizer.ggml.merges", {"a "}); }),
                 "merges[0]");
  expect_invalid(edit(small_bpe(), [](auto& w) { w.set_string_array("tokenizer.ggml.merges", {"a z"}); }),
                 "not a vocab token");
  expect_invalid(edit(small_bpe(), [](auto& w) { w.set_string_array("tokenizer.ggml.merges", {"b a"}); }),
                 "merged text is not a vocab token");
}

TEST(MalformedVocab, SpecialIdsOutOfRange) {
  expect_invalid(edit(small_bpe(), [](auto& w) { w.set_u32("tokenizer.ggml.eos_token_id", 5); }),
                 "eos_token_id = 5 is out of range [0, 5)");
  expect_invalid(edit(small_spm(), [](auto& w) { w.set_u32("tokenizer.ggml.bos_token_id", 4000000000u); }),
                 "bos_token_id = 4000000000");
  expect_invalid(edit(small_spm(), [](auto& w) { w.set_i32("tokenizer.ggml.unknown_token_id", -7); }),
                 "unknown_token_id = -7");
  // Asking for BOS without having one.
  expect_invalid(edit(small_bpe(), [](auto& w) { w.set_bool("tokenizer.ggml.add_bos_token", true); }),
                 "no bos_token_id");
}

TEST(SmallVocab, BpeTiesMergeLeftmost) {
  gguf::GgufWriter w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "gpt-2");
  w.set_string_array("tokenizer.ggml.tokens", {"a", "aa"});
  w.set_string_array("tokenizer.ggml.merges", {"a a"});
  const auto tok = load(w);
  // "aaa": both pairs have rank 0; the left one merges first.
  EXPECT_EQ(tok->encode("aaa", false), (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(tok->encode("aaaa", false), (std::vector<int32_t>{1, 1}));
  // Bytes without a token and no unknown token cannot be encoded.
  EXPECT_THROW(tok->encode("b", false), Error);
}

TEST(SmallVocab, SpmWithoutByteTokensUsesUnknown) {
  const auto tok = load(small_spm());
  // "b" is neither a token nor representable by byte tokens: one <unk> per character.
  EXPECT_EQ(tok->encode("ab", false), (std::vector<int32_t>{5, 0}));
  EXPECT_EQ(tok->encode("\xC3\xA9", false), (std::vector<int32_t>{3, 0}));
  EXPECT_EQ(tok->decode(std::vector<int32_t>{5, 0}), "a \xE2\x81\x87 ");
}

TEST(SmallVocab, SpaceAndBosFlagsFromMetadata) {
  auto w = small_spm();
  w.set_bool("tokenizer.ggml.add_space_prefix", false);
  w.set_bool("tokenizer.ggml.add_bos_token", false);
  w.set_bool("tokenizer.ggml.add_eos_token", true);
  const auto tok = load(w);
  EXPECT_FALSE(tok->add_bos());
  EXPECT_EQ(tok->encode("a", true), (std::vector<int32_t>{4, 2}));  // no prefix, EOS appended
  EXPECT_EQ(tok->decode(std::vector<int32_t>{5}), " a");            // nothing to strip
}

}  // namespace
}  // namespace alspec
