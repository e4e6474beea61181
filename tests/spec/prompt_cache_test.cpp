// Prompt caching (Engine::reuse_prefix) and switching modes on one engine (set_speculation): both
// must give bitwise the same results as starting from scratch with a fresh engine.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/model/model.h"
#include "alspec/spec/engine.h"
#include "alspec/spec/generate.h"
#include "alspec/spec/scoring.h"
#include "alspec/tokenizer/tokenizer.h"

namespace alspec {
namespace {

const Model& stories() {
  static std::unique_ptr<Model> m = Model::load(std::string(ALSPEC_SOURCE_DIR) + "/assets/models/stories260K.gguf");
  return *m;
}

EngineOptions options(AttentionMode mode, float lambda) {
  EngineOptions o;
  o.threads = 1;
  o.ctx_size = 256;
  o.kv_type = DType::F16;
  o.spec.mode = mode;
  o.spec.lambda = lambda;
  o.spec.spec_chunk = 16;
  return o;
}

std::vector<int32_t> prompt(const std::string& text) { return stories().tokenizer().encode(text, true); }

struct Generation {
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> logits;
  int64_t hits = 0, checks = 0, reused = 0;
};

Generation generate_on(Engine& engine, const std::vector<int32_t>& p, bool reuse) {
  Generation r;
  GenerateRequest req;
  req.prompt = p;
  req.n_predict = 60;
  req.stop_at_eos = false;
  req.reuse_prefix = reuse;
  req.on_logits = [&](const float* l) { r.logits.emplace_back(l, l + stories().config().n_vocab); };
  if (!reuse) engine.reset();
  const GenerateResult g = generate(engine, req);
  r.tokens = g.tokens;
  r.hits = g.stats.hits();
  r.checks = g.stats.checks();
  r.reused = g.reused_prompt_tokens;
  return r;
}

void expect_same(const Generation& a, const Generation& b) {
  ASSERT_EQ(a.tokens, b.tokens);
  ASSERT_EQ(a.logits.size(), b.logits.size());
  for (size_t i = 0; i < a.logits.size(); ++i) {
    ASSERT_EQ(0, std::memcmp(a.logits[i].data(), b.logits[i].data(), a.logits[i].size() * sizeof(float))) << "step " << i;
  }
  EXPECT_EQ(a.hits, b.hits);
  EXPECT_EQ(a.checks, b.checks);
}

const std::string kShared = "Once upon a time, there was a little girl named Lily. She loved to play outside in the sun. ";

TEST(PromptCache, SplitPrefillIsBitwiseIdentical) {
  Engine engine(stories(), options(AttentionMode::kExact, 0.1f));
  const auto p = prompt(kShared + "One day she saw a big red ball.");
  const int n_vocab = stories().config().n_vocab;
  std::vector<std::vector<float>> whole;
  engine.prefill(p, PrefillLogits::kAll, [&](int64_t, const float* l) { whole.emplace_back(l, l + n_vocab); });
  for (int64_t split : {1, 7, 16, 17, static_cast<int>(p.size()) - 1}) {
    engine.reset();
    engine.prefill(std::span<const int32_t>(p).subspan(0, static_cast<size_t>(split)), PrefillLogits::kNone,
                   [](int64_t, const float*) {});
    engine.truncate(split);  // a no-op here; the cache now holds p[0, split)
    EXPECT_EQ(engine.reuse_prefix(p, static_cast<int64_t>(p.size()) - 1), split);
    engine.prefill(std::span<const int32_t>(p).subspan(static_cast<size_t>(split)), PrefillLogits::kAll,
                   [&](int64_t i, const float* l) {
                     ASSERT_EQ(0, std::memcmp(l, whole[static_cast<size_t>(split + i)].data(), n_vocab * sizeof(float)))
                         << "split " << split << " row " << i;
                   });
  }
}

TEST(PromptCache, GenerateWithReusedPrefixEqualsFreshEngine) {
  const auto a = prompt(kShared + "One day she saw a big red ball.");
  const auto b = prompt(kShared + "Her brother Tom had a toy car.");
  for (AttentionMode mode : {AttentionMode::kExact, AttentionMode::kSimulate, AttentionMode::kAlspec}) {
    Engine cached(stories(), options(mode, 0.15f));
    const Generation first = generate_on(cached, a, true);
    EXPECT_EQ(first.reused, 0);
    const Generation second = generate_on(cached, b, true);  // shares the kShared prefix with a
    EXPECT_GT(second.reused, 10);
    EXPECT_LT(second.reused, static_cast<int64_t>(b.size()));
    const Generation again = generate_on(cached, b, true);  // whole prompt but its last token
    EXPECT_EQ(again.reused, static_cast<int64_t>(b.size()) - 1);
    Engine fresh(stories(), options(mode, 0.15f));
    expect_same(first, generate_on(fresh, a, false));
    const Generation ref_b = generate_on(fresh, b, false);
    expect_same(second, ref_b);
    expect_same(again, ref_b);
    if (mode == AttentionMode::kSimulate) {
      EXPECT_GT(ref_b.hits, 0);  // speculation both hit and missed: the comparison means something
      EXPECT_LT(ref_b.hits, ref_b.checks);
    }
  }
}

TEST(PromptCache, SwitchingModesOnOneEngineEqualsFreshEngines) {
  const auto p = prompt(kShared + "One day she saw a big red ball.");
  Engine shared(stories(), options(AttentionMode::kExact, 0.1f));
  for (auto [mode, lambda] : {std::pair{AttentionMode::kExact, 0.1f}, {AttentionMode::kSimulate, 0.1f},
                              {AttentionMode::kStatic, 0.1f}, {AttentionMode::kSimulate, 0.25f},
                              {AttentionMode::kExact, 0.1f}}) {
    SpecConfig spec;
    spec.mode = mode;
    spec.lambda = lambda;
    spec.spec_chunk = 16;
    shared.set_speculation(spec);
    const Generation switched = generate_on(shared, p, true);
    Engine fresh(stories(), options(mode, lambda));
    expect_same(switched, generate_on(fresh, p, false));
  }
}

TEST(PromptCache, ScoringWithReusedPrefix) {
  const auto p = prompt(kShared + "One day she saw a big red ball. She ran to it and kicked it.");
  ScoreOptions o;
  o.prefill_until = 30;
  Engine fresh(stories(), options(AttentionMode::kSimulate, 0.2f));
  const auto ref = score_tokens(fresh, p, o);
  Engine cached(stories(), options(AttentionMode::kSimulate, 0.2f));
  o.reuse_prefix = true;
  score_tokens(cached, p, o);  // fills the cache
  const auto again = score_tokens(cached, p, o);
  ASSERT_EQ(again.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    const int64_t pos = static_cast<int64_t>(i) + 1;
    if (pos <= 29) {  // reused: tokens 0..prefill_until - 2, so positions 1..29 are not scored
      EXPECT_TRUE(std::isnan(again[i].logprob)) << pos;
    } else {
      EXPECT_EQ(again[i].logprob, ref[i].logprob) << pos;
      EXPECT_EQ(again[i].greedy, ref[i].greedy) << pos;
    }
  }
}

TEST(PromptCache, DecodedPositionsAreNeverReused) {
  Engine engine(stories(), options(AttentionMode::kSimulate, 0.2f));
  const auto p = prompt(kShared);
  engine.prefill(std::span<const int32_t>(p).subspan(0, 10), PrefillLogits::kNone, [](int64_t, const float*) {});
  for (size_t i = 10; i < p.size(); ++i) engine.decode(p[i]);  // speculative KV rows
  EXPECT_EQ(engine.reuse_prefix(p, static_cast<int64_t>(p.size())), 10);
  EXPECT_EQ(engine.position(), 10);
  engine.fill_random(20, 1);
  EXPECT_EQ(engine.reuse_prefix(p, static_cast<int64_t>(p.size())), 0);
}

TEST(PromptCache, SetSpeculationRejectsOtherSOrDeviceCount) {
  Engine single(stories(), options(AttentionMode::kSimulate, 0.1f));
  SpecConfig spec;
  spec.mode = AttentionMode::kSimulate;
  spec.spec_chunk = 32;
  EXPECT_THROW(single.set_speculation(spec), Error);
  spec.spec_chunk = 16;
  spec.mode = AttentionMode::kAlspec;
  EXPECT_THROW(single.set_speculation(spec), Error);
  spec.mode = AttentionMode::kStatic;
  spec.lambda = -1.0f;
  EXPECT_THROW(single.set_speculation(spec), Error);
  Engine two(stories(), options(AttentionMode::kAlspec, 0.1f));
  spec.lambda = 0.2f;
  EXPECT_THROW(two.set_speculation(spec), Error);
  spec.mode = AttentionMode::kAlspec;
  EXPECT_NO_THROW(two.set_speculation(spec));
  EXPECT_EQ(two.options().spec.lambda, 0.2f);
}

}  // namespace
}  // namespace alspec
