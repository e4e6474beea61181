// Special-token parsing, BOS/EOS rules, end-of-generation ids and special-token decoding.
#include <gtest/gtest.h>

#include "alspec/core/error.h"
#include "tokenizer/tokenizer_fixtures.h"

namespace alspec {
namespace {

using testing_tok::vocab_tokenizer;

TEST(SpecialTokens, ParseSpecialOnOffLlama3) {
  const Tokenizer& tok = vocab_tokenizer("llama-bpe");
  const int32_t eot = tok.find_token("<|eot_id|>");
  ASSERT_GE(eot, 0);
  const std::string text = "Hi<|eot_id|>there";
  const auto parsed = tok.encode(text, false, /*parse_special=*/true);
  const auto plain = tok.encode(text, false, /*parse_special=*/false);
  // Parsed: "Hi", the control token, "there"; as text the marker is several ordinary tokens.
  ASSERT_EQ(parsed.size(), 3u);
  EXPECT_EQ(parsed[1], eot);
  EXPECT_EQ(parsed[0], tok.encode("Hi", false)[0]);
  EXPECT_EQ(parsed[2], tok.encode("there", false)[0]);
  EXPECT_GT(plain.size(), 3u);
  for (int32_t id : plain) EXPECT_FALSE(tok.is_control(id));
  // Decoding: control tokens skipped by default, emitted on request; plain text round-trips.
  EXPECT_EQ(tok.decode(parsed), "Hithere");
  EXPECT_EQ(tok.decode(parsed, /*skip_special=*/false), text);
  EXPECT_EQ(tok.decode(plain), text);
}

TEST(SpecialTokens, LongestSpecialTokenWins) {
  const Tokenizer& tok = vocab_tokenizer("qwen2");
  const auto ids = tok.encode("<|im_start|>user\nhi<|im_end|>\n", false, true);
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(ids.front(), tok.find_token("<|im_start|>"));
  EXPECT_EQ(ids[ids.size() - 2], tok.find_token("<|im_end|>"));
}

TEST(SpecialTokens, UserDefinedTokensAlwaysMatch) {
  // qwen2 declares [PADnnnnnn] entries as user-defined: recognised even without parse_special.
  const Tokenizer& tok = vocab_tokenizer("qwen2");
  const int32_t pad = tok.find_token("[PAD151646]");
  ASSERT_EQ(tok.token_type(pad), TokenType::kUserDefined);
  const auto ids = tok.encode("a[PAD151646]b", false, false);
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[1], pad);
  EXPECT_EQ(tok.decode(ids), "a[PAD151646]b");
}

TEST(SpecialTokens, SpmParseSpecialAndSpacePrefix) {
  const Tokenizer& tok = vocab_tokenizer("llama-spm");
  // "<s>" recognised: BOS id, and the text after it gets the space prefix again.
  const auto parsed = tok.encode("<s>Hello", false, true);
  ASSERT_EQ(parsed.size(), 2u);
  EXPECT_EQ(parsed[0], tok.bos_id());
  EXPECT_EQ(parsed[1], 15043);  // "▁Hello"
  const auto plain = tok.encode("<s>Hello", false, false);
  EXPECT_NE(plain[0], tok.bos_id());
  EXPECT_EQ(tok.decode(plain), "<s>Hello");
}

TEST(BosEos, PerModelDefaults) {
  const Tokenizer& spm = vocab_tokenizer("llama-spm");
  EXPECT_EQ(spm.encode("Hello", true), (std::vector<int32_t>{1, 15043}));
  EXPECT_EQ(spm.encode("Hello", false), (std::vector<int32_t>{15043}));
  EXPECT_EQ(spm.encode("", true), (std::vector<int32_t>{1}));  // BOS alone for empty text
  EXPECT_TRUE(spm.encode("", false).empty());
  // Decode drops BOS and the space prefix of the first word only.
  EXPECT_EQ(spm.decode(std::vector<int32_t>{1, 15043, 3186}), "Hello world");
  EXPECT_EQ(spm.decode(std::vector<int32_t>{1, 15043, 3186}, false), "<s>Hello world");

  const Tokenizer& l3 = vocab_tokenizer("llama-bpe");
  const auto ids = l3.encode("Hello", true);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], 128000);

  for (const char* name : {"qwen2", "gpt-2"}) {
    const Tokenizer& tok = vocab_tokenizer(name);
    EXPECT_EQ(tok.encode("Hello", true), tok.encode("Hello", false)) << name;  // no BOS by default
    EXPECT_FALSE(tok.add_eos()) << name;
  }
}

TEST(BosEos, EndOfGeneration) {
  const Tokenizer& l3 = vocab_tokenizer("llama-bpe");
  EXPECT_TRUE(l3.is_end_of_generation(l3.eos_id()));
  EXPECT_TRUE(l3.is_end_of_generation(l3.find_token("<|eot_id|>")));
  EXPECT_FALSE(l3.is_end_of_generation(l3.bos_id()));
  EXPECT_FALSE(l3.is_end_of_generation(l3.encode("Hello", false)[0]));

  const Tokenizer& qwen = vocab_tokenizer("qwen2");
  EXPECT_TRUE(qwen.is_end_of_generation(qwen.find_token("<|im_end|>")));
  EXPECT_TRUE(qwen.is_end_of_generation(qwen.find_token("<|endoftext|>")));
  EXPECT_FALSE(qwen.is_end_of_generation(qwen.find_token("<|im_start|>")));

  const Tokenizer& spm = vocab_tokenizer("llama-spm");
  EXPECT_TRUE(spm.is_end_of_generation(2));
  EXPECT_FALSE(spm.is_end_of_generation(1));
}

TEST(Decode, RejectsOutOfRangeIds) {
  const Tokenizer& tok = vocab_tokenizer("gpt-2");
  EXPECT_THROW(tok.decode(std::vector<int32_t>{-1}), Error);
  EXPECT_THROW(tok.decode(std::vector<int32_t>{tok.n_vocab()}), Error);
  EXPECT_THROW(tok.token_to_piece(tok.n_vocab()), Error);
  EXPECT_THROW((void)tok.token_text(-5), Error);
}

TEST(Decode, InvalidUtf8InputRoundTrips) {
  // Arbitrary bytes are representable in byte-level BPE and via SPM byte fallback.
  const std::string bytes = std::string("ok \xFF\xFE bad \xC3") + "\x80\xE2\x82 end";
  for (const char* name : {"gpt-2", "llama-bpe", "qwen2", "llama-spm"}) {
    const Tokenizer& tok = vocab_tokenizer(name);
    EXPECT_EQ(tok.decode(tok.encode(bytes, false)), bytes) << name;
  }
}

}  // namespace
}  // namespace alspec
