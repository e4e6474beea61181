#include "alspec/server/logprobs_json.h"

#include <gtest/gtest.h>

#include "alspec/spec/engine.h"
#include "alspec/tokenizer/tokenizer.h"
#include "server/server_test_model.h"

namespace alspec::server {
namespace {

TEST(LogprobsJson, EchoLayoutCarriesScoreTokensNumbers) {
  const Model& m = testing::stories260k();
  const Tokenizer& tok = m.tokenizer();
  EngineOptions o;
  o.threads = 1;
  Engine engine(m, o);
  const auto prompt = tok.encode("Once upon a time, there was a cat", true);
  auto all = prompt;
  all.push_back(tok.encode(" named", false)[0]);
  ScoreOptions so;
  so.prefill_until = static_cast<int64_t>(prompt.size());
  so.top_k = 3;
  const auto scores = score_tokens(engine, all, so);
  const auto j = legacy_logprobs_json(tok, all, scores, prompt.size(), /*echo=*/true, /*with_top=*/true);
  ASSERT_EQ(j["tokens"].size(), all.size());
  EXPECT_TRUE(j["token_logprobs"][0].is_null());
  EXPECT_TRUE(j["top_logprobs"][0].is_null());
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_EQ(j["tokens"][i].get<std::string>(), tok.token_to_piece(all[i], false));
    EXPECT_EQ(j["token_logprobs"][i].get<double>(), scores[i - 1].logprob);  // bitwise
    ASSERT_EQ(j["top_logprobs"][i].size(), 3u);
    for (const auto& [id, lp] : scores[i - 1].top) EXPECT_EQ(j["top_logprobs"][i][tok.token_to_piece(id, false)].get<double>(), lp);
  }
  // Offsets: prompt tokens index decode(prompt); the generated token follows it.
  const std::string text = tok.decode(prompt);
  for (size_t i = 0; i < prompt.size(); ++i) {
    EXPECT_EQ(j["text_offset"][i].get<size_t>(), tok.decode(std::span(prompt).subspan(0, i)).size());
  }
  EXPECT_EQ(j["text_offset"][prompt.size()].get<size_t>(), text.size());
  // Without echo: only the generated token, and no top maps when not asked.
  const auto g = legacy_logprobs_json(tok, all, scores, prompt.size(), false, false);
  ASSERT_EQ(g["tokens"].size(), 1u);
  EXPECT_EQ(g["token_logprobs"][0].get<double>(), scores.back().logprob);
  EXPECT_EQ(g["text_offset"][0].get<size_t>(), 0u);
  EXPECT_TRUE(g["top_logprobs"].is_null());
}

TEST(LogprobsJson, CompleteUtf8Prefix) {
  EXPECT_EQ(complete_utf8_prefix(""), 0u);
  EXPECT_EQ(complete_utf8_prefix("abc"), 3u);
  EXPECT_EQ(complete_utf8_prefix("a\xC3"), 1u);              // 2-byte sequence cut after its lead
  EXPECT_EQ(complete_utf8_prefix("a\xC3\xA9"), 3u);          // é complete
  EXPECT_EQ(complete_utf8_prefix("a\xE2\x82"), 1u);          // € missing its last byte
  EXPECT_EQ(complete_utf8_prefix("a\xE2\x82\xAC"), 4u);
  EXPECT_EQ(complete_utf8_prefix("\xF0\x9F\x98"), 0u);       // emoji missing one byte
  EXPECT_EQ(complete_utf8_prefix("\xF0\x9F\x98\x80"), 4u);
  EXPECT_EQ(complete_utf8_prefix("a\x80\x80\x80\x80"), 5u);  // stray continuation bytes: nothing to wait for
}

}  // namespace
}  // namespace alspec::server
