// Every case of the ggml tokenizer vectors (ids produced by the Hugging Face tokenizers), for
// the four reference vocabularies: encode without BOS, and decode back to the input.
#include <gtest/gtest.h>

#include "tokenizer/tokenizer_fixtures.h"

namespace alspec {
namespace {

using testing_tok::ids_to_string;

void check_vectors(const std::string& name) {
  const Tokenizer& tok = testing_tok::vocab_tokenizer(name);
  const auto cases = testing_tok::load_vocab_cases(name);
  ASSERT_EQ(cases.size(), 46u) << name;
  int failures = 0;
  for (const auto& c : cases) {
    const std::vector<int32_t> got = tok.encode(c.text, /*add_special=*/false, /*parse_special=*/false);
    if (got != c.ids) {
      ++failures;
      ADD_FAILURE() << name << " input '" << c.text << "'\n  got      " << ids_to_string(got) << "\n  expected "
                    << ids_to_string(c.ids);
    }
  }
  EXPECT_EQ(failures, 0) << name << ": " << failures << " of " << cases.size() << " cases differ";
}

// Every input is representable (byte fallback / byte-level BPE), so decoding must give it back.
void check_round_trips(const std::string& name) {
  const Tokenizer& tok = testing_tok::vocab_tokenizer(name);
  for (const auto& c : testing_tok::load_vocab_cases(name)) {
    EXPECT_EQ(tok.decode(tok.encode(c.text, false)), c.text) << name;
    // With BOS/EOS added and skipped again the text is unchanged as well.
    EXPECT_EQ(tok.decode(tok.encode(c.text, true)), c.text) << name;
    // Streaming pieces concatenate to the same text, except the SPM space prefix.
    std::string streamed;
    for (int32_t id : tok.encode(c.text, false)) streamed += tok.token_to_piece(id);
    std::string expected = c.text;
    if (tok.model_name() == "llama" && !expected.empty()) expected.insert(0, 1, ' ');
    EXPECT_EQ(streamed, expected) << name;
  }
}

TEST(VocabVectors, LlamaSpm) { check_vectors("llama-spm"); }
TEST(VocabVectors, LlamaBpe) { check_vectors("llama-bpe"); }
TEST(VocabVectors, Qwen2) { check_vectors("qwen2"); }
TEST(VocabVectors, Gpt2) { check_vectors("gpt-2"); }

TEST(VocabRoundTrip, LlamaSpm) { check_round_trips("llama-spm"); }
TEST(VocabRoundTrip, LlamaBpe) { check_round_trips("llama-bpe"); }
TEST(VocabRoundTrip, Qwen2) { check_round_trips("qwen2"); }
TEST(VocabRoundTrip, Gpt2) { check_round_trips("gpt-2"); }

TEST(VocabMetadata, NamesAndSpecialIds) {
  const Tokenizer& spm = testing_tok::vocab_tokenizer("llama-spm");
  EXPECT_EQ(spm.model_name(), "llama");
  EXPECT_EQ(spm.n_vocab(), 32000);
  EXPECT_EQ(spm.bos_id(), 1);
  EXPECT_EQ(spm.eos_id(), 2);
  EXPECT_EQ(spm.unk_id(), 0);
  EXPECT_TRUE(spm.add_bos());
  EXPECT_EQ(spm.token_text(15043), "\xE2\x96\x81Hello");

  const Tokenizer& l3 = testing_tok::vocab_tokenizer("llama-bpe");
  EXPECT_EQ(l3.model_name(), "gpt2");
  EXPECT_EQ(l3.pre_name(), "llama-bpe");
  EXPECT_EQ(l3.n_vocab(), 128256);
  EXPECT_EQ(l3.bos_id(), 128000);
  EXPECT_TRUE(l3.add_bos());  // Llama 3 default when the file has no add_bos_token

  const Tokenizer& qwen = testing_tok::vocab_tokenizer("qwen2");
  EXPECT_EQ(qwen.pre_name(), "qwen2");
  EXPECT_FALSE(qwen.add_bos());

  const Tokenizer& gpt2 = testing_tok::vocab_tokenizer("gpt-2");
  EXPECT_EQ(gpt2.pre_name(), "gpt-2");
  EXPECT_FALSE(gpt2.add_bos());
  EXPECT_EQ(gpt2.unk_id(), -1);
}

}  // namespace
}  // namespace alspec
