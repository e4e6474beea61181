// generate(): the prompt is prefilled in pieces of kPrefillCheckTokens with a cancellation check
// before each, and the pieces change no result.
#include "alspec/spec/generate.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "alspec/model/model.h"
#include "alspec/spec/engine.h"
#include "alspec/tokenizer/tokenizer.h"

namespace alspec {
namespace {

const Model& stories() {
  static std::unique_ptr<Model> m = Model::load(std::string(ALSPEC_SOURCE_DIR) + "/assets/models/stories260K.gguf");
  return *m;
}

EngineOptions options() {
  EngineOptions o;
  o.threads = 1;
  o.ctx_size = 512;
  return o;
}

// A prompt of n token ids (every id a valid, ordinary token of the vocabulary).
std::vector<int32_t> long_prompt(int64_t n) {
  std::vector<int32_t> p(static_cast<size_t>(n));
  p[0] = stories().tokenizer().bos_id();
  for (size_t i = 1; i < p.size(); ++i) p[i] = static_cast<int32_t>(100 + (i * 37) % 300);
  return p;
}

TEST(Generate, CancelledBetweenPrefillPieces) {
  Engine engine(stories(), options());
  GenerateRequest g;
  g.prompt = long_prompt(3 * kPrefillCheckTokens + 5);
  g.n_predict = 8;
  int asked = 0;
  g.keep_prefilling = [&] { return ++asked <= 2; };  // the client leaves after two pieces
  const GenerateResult r = generate(engine, g);
  EXPECT_EQ(r.finish_reason, "cancelled");
  EXPECT_TRUE(r.tokens.empty());
  EXPECT_EQ(asked, 3);
  EXPECT_EQ(engine.position(), 2 * kPrefillCheckTokens);  // nothing after the check that said no
}

TEST(Generate, PrefillPiecesChangeNothing) {
  const std::vector<int32_t> prompt = long_prompt(2 * kPrefillCheckTokens + 17);
  const int n_vocab = stories().config().n_vocab;
  // The whole prompt in one prefill call.
  Engine whole(stories(), options());
  std::vector<float> expected;
  whole.prefill(prompt, PrefillLogits::kLast, [&](int64_t, const float* l) { expected.assign(l, l + n_vocab); });
  // generate(): three pieces, each after a check.
  Engine engine(stories(), options());
  GenerateRequest g;
  g.prompt = prompt;
  g.n_predict = 4;
  g.sampling.temperature = 0;
  g.stop_at_eos = false;
  int asked = 0;
  g.keep_prefilling = [&] { return ++asked > 0; };
  std::vector<float> first;
  g.on_logits = [&](const float* l) {
    if (first.empty()) first.assign(l, l + n_vocab);
  };
  const GenerateResult r = generate(engine, g);
  EXPECT_EQ(asked, 3);
  EXPECT_EQ(r.tokens.size(), 4u);
  EXPECT_EQ(first, expected);  // bitwise
}

}  // namespace
}  // namespace alspec
