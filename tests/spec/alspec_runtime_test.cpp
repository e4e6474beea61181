// Invariants of the attention modes and the two-device protocol (issue: ALSpec runtime).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/model/model.h"
#include "alspec/spec/engine.h"
#include "alspec/spec/generate.h"
#include "alspec/tokenizer/tokenizer.h"

namespace alspec {
namespace {

const std::string kModel = std::string(ALSPEC_SOURCE_DIR) + "/assets/models/stories260K.gguf";

const Model& stories() {
  static std::unique_ptr<Model> m = Model::load(kModel);
  return *m;
}

struct RunResult {
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> logits;
  SpecStats stats;
  std::vector<TraceEvent> trace;
};

EngineOptions options(AttentionMode mode, float lambda, int S = 16,
                      SpecPredictor predictor = SpecPredictor::kSinkWindow) {
  EngineOptions o;
  o.predictor = predictor;
  o.threads = 1;
  o.ctx_size = 256;
  o.kv_type = DType::F32;
  o.spec.mode = mode;
  o.spec.lambda = lambda;
  o.spec.spec_chunk = S;
  return o;
}

RunResult run_engine(EngineOptions o, int n_predict = 120, float temperature = 0.0f, uint64_t seed = 7) {
  RunResult r;
  o.spec.trace = [&r](const TraceEvent& e) { r.trace.push_back(e); };
  Engine engine(stories(), o);
  GenerateRequest req;
  req.prompt = stories().tokenizer().encode("Once upon a time, there was a little dog", true);
  req.n_predict = n_predict;
  req.stop_at_eos = false;
  req.sampling.temperature = temperature;
  req.sampling.top_p = 0.95f;
  req.sampling.seed = seed;
  req.on_logits = [&r](const float* l) { r.logits.emplace_back(l, l + stories().config().n_vocab); };
  const GenerateResult g = generate(engine, req);
  r.tokens = g.tokens;
  r.stats = g.stats;
  return r;
}

void expect_bitwise_equal(const RunResult& a, const RunResult& b) {
  ASSERT_EQ(a.tokens, b.tokens);
  ASSERT_EQ(a.logits.size(), b.logits.size());
  for (size_t i = 0; i < a.logits.size(); ++i) {
    ASSERT_EQ(0, std::memcmp(a.logits[i].data(), b.logits[i].data(), a.logits[i].size() * sizeof(float)))
        << "logits differ at step " << i;
  }
}

TEST(AlspecRuntime, AlspecEqualsSimulateBitwiseGreedy) {
  const RunResult sim = run_engine(options(AttentionMode::kSimulate, 0.1f));
  const RunResult al = run_engine(options(AttentionMode::kAlspec, 0.1f));
  expect_bitwise_equal(sim, al);
  // Hit statistics agree, per layer.
  ASSERT_EQ(sim.stats.per_layer.size(), al.stats.per_layer.size());
  for (size_t l = 0; l < sim.stats.per_layer.size(); ++l) {
    EXPECT_EQ(sim.stats.per_layer[l].checks, al.stats.per_layer[l].checks) << "layer " << l;
    EXPECT_EQ(sim.stats.per_layer[l].hits, al.stats.per_layer[l].hits) << "layer " << l;
    EXPECT_EQ(sim.stats.per_layer[l].trivial, al.stats.per_layer[l].trivial) << "layer " << l;
  }
  // The test only means something if speculation both hit and missed.
  EXPECT_GT(sim.stats.checks(), 100);
  EXPECT_GT(sim.stats.hits(), 0);
  EXPECT_LT(sim.stats.hits(), sim.stats.checks());
}

TEST(AlspecRuntime, AlspecEqualsSimulateBitwiseSampled) {
  const RunResult sim = run_engine(options(AttentionMode::kSimulate, 0.15f), 100, 0.8f, 1234);
  const RunResult al = run_engine(options(AttentionMode::kAlspec, 0.15f), 100, 0.8f, 1234);
  expect_bitwise_equal(sim, al);
  EXPECT_EQ(sim.stats.hits(), al.stats.hits());
}

TEST(AlspecRuntime, LambdaZeroIsExact) {
  const RunResult exact = run_engine(options(AttentionMode::kExact, 0.1f));
  const RunResult sim0 = run_engine(options(AttentionMode::kSimulate, 0.0f));
  const RunResult al0 = run_engine(options(AttentionMode::kAlspec, 0.0f));
  expect_bitwise_equal(exact, sim0);
  expect_bitwise_equal(exact, al0);
  EXPECT_EQ(exact.stats.checks(), 0);  // exact mode verifies nothing
}

TEST(AlspecRuntime, HugeLambdaEqualsStatic) {
  const RunResult st = run_engine(options(AttentionMode::kStatic, 0.1f));
  const RunResult sim = run_engine(options(AttentionMode::kSimulate, 1e30f));
  expect_bitwise_equal(st, sim);
  EXPECT_EQ(sim.stats.hits(), sim.stats.checks());
}

TEST(AlspecRuntime, StaticDiffersFromExactAtLongContext) {
  // Sanity: the approximation is really used (otherwise every test above is vacuous).
  const RunResult exact = run_engine(options(AttentionMode::kExact, 0.1f));
  const RunResult st = run_engine(options(AttentionMode::kStatic, 0.1f));
  bool differs = false;
  for (size_t i = 0; i < exact.logits.size() && !differs; ++i) differs = exact.logits[i] != st.logits[i];
  EXPECT_TRUE(differs);
}

// Fault injection: forced decisions give the predicted role sequence (sender alternates after a
// hit, stays after a miss) and the same output as simulate under the same decisions.
TEST(AlspecRuntime, ForcedDecisionsGiveExpectedRolesAndSimulateOutput) {
  auto hook = [](int64_t step, int layer) -> std::optional<bool> { return (step * 7 + layer * 3) % 5 < 2; };
  auto o_sim = options(AttentionMode::kSimulate, 0.1f);
  o_sim.spec.force_decision = hook;
  auto o_al = options(AttentionMode::kAlspec, 0.1f);
  o_al.spec.force_decision = hook;
  const RunResult sim = run_engine(o_sim, 40);
  const RunResult al = run_engine(o_al, 40);
  expect_bitwise_equal(sim, al);
  ASSERT_EQ(al.trace.size(), sim.trace.size());
  const int n_layers = stories().config().n_layers;
  ASSERT_EQ(al.trace.size(), static_cast<size_t>(39 * n_layers));  // 40 tokens: 39 decode steps
  int sender = 0;  // device A sends first
  for (size_t i = 0; i < al.trace.size(); ++i) {
    const auto& e = al.trace[i];
    ASSERT_EQ(e.layer, static_cast<int>(i % static_cast<size_t>(n_layers)));
    ASSERT_EQ(e.step, static_cast<int64_t>(i / static_cast<size_t>(n_layers)));
    EXPECT_TRUE(e.forced);
    const bool accept = *hook(e.step, e.layer);
    EXPECT_EQ(e.accept, accept);
    EXPECT_EQ(e.sender, sender) << "step " << e.step << " layer " << e.layer;
    EXPECT_EQ(e.receiver, 1 - sender);
    EXPECT_EQ(e.sender_priority, accept ? 0 : 2);
    if (accept) sender = 1 - sender;  // the receiver's result wins and it sends next
  }
}

TEST(AlspecRuntime, TraceReportsDistancesConsistentWithDecision) {
  const RunResult sim = run_engine(options(AttentionMode::kSimulate, 0.1f), 60);
  ASSERT_FALSE(sim.trace.empty());
  for (const auto& e : sim.trace) {
    if (e.trivial) {
      EXPECT_TRUE(e.accept);
      continue;
    }
    EXPECT_EQ(e.accept, e.dist2 <= 0.1 * 0.1 * e.norm2) << "step " << e.step << " layer " << e.layer;
  }
}

TEST(AlspecRuntime, ErrorOnOneDeviceStopsBoth) {
  auto o = options(AttentionMode::kAlspec, 0.1f);
  o.spec.force_decision = [](int64_t step, int layer) -> std::optional<bool> {
    if (step == 3 && layer == 2) throw std::runtime_error("injected device failure");
    return std::nullopt;
  };
  Engine engine(stories(), o);
  GenerateRequest req;
  req.prompt = stories().tokenizer().encode("Once upon a time", true);
  req.n_predict = 20;
  try {
    generate(engine, req);
    FAIL() << "expected the injected failure";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("injected device failure"), std::string::npos) << e.what();
  }
}

// The quest predictor (spec_predictor.h) keeps every invariant: alspec == simulate bitwise,
// lambda 0 == exact (with the same predictor, i.e. the same partition plan), huge lambda == static.
// S = 64 (kQuestMinSpecChunk): sequences split from 129 rows on, so the runs decode past 200.
EngineOptions quest(AttentionMode mode, float lambda) {
  return options(mode, lambda, kQuestMinSpecChunk, SpecPredictor::kQuestPages);
}
constexpr int kQuestPredict = 200;

TEST(AlspecRuntime, QuestAlspecEqualsSimulateBitwise) {
  const RunResult sim = run_engine(quest(AttentionMode::kSimulate, 0.1f), kQuestPredict);
  const RunResult al = run_engine(quest(AttentionMode::kAlspec, 0.1f), kQuestPredict);
  expect_bitwise_equal(sim, al);
  for (size_t l = 0; l < sim.stats.per_layer.size(); ++l) {
    EXPECT_EQ(sim.stats.per_layer[l].hits, al.stats.per_layer[l].hits) << "layer " << l;
  }
  EXPECT_GT(sim.stats.checks(), 100);
  EXPECT_GT(sim.stats.hits(), 0);
  EXPECT_LT(sim.stats.hits(), sim.stats.checks());
  const RunResult sim_s = run_engine(quest(AttentionMode::kSimulate, 0.15f), kQuestPredict, 0.8f, 1234);
  const RunResult al_s = run_engine(quest(AttentionMode::kAlspec, 0.15f), kQuestPredict, 0.8f, 1234);
  expect_bitwise_equal(sim_s, al_s);
}

TEST(AlspecRuntime, QuestLambdaZeroIsExactAndHugeLambdaIsStatic) {
  const RunResult exact = run_engine(quest(AttentionMode::kExact, 0.1f), kQuestPredict);
  expect_bitwise_equal(exact, run_engine(quest(AttentionMode::kSimulate, 0.0f), kQuestPredict));
  expect_bitwise_equal(exact, run_engine(quest(AttentionMode::kAlspec, 0.0f), kQuestPredict));
  const RunResult st = run_engine(quest(AttentionMode::kStatic, 0.1f), kQuestPredict);
  expect_bitwise_equal(st, run_engine(quest(AttentionMode::kSimulate, 1e30f), kQuestPredict));
  // The predictor is really used: its static output differs from sink-window's at the same S.
  const RunResult st_sw = run_engine(options(AttentionMode::kStatic, 0.1f, kQuestMinSpecChunk), kQuestPredict);
  bool differs = false;
  for (size_t i = 0; i < st.logits.size() && !differs; ++i) differs = st.logits[i] != st_sw.logits[i];
  EXPECT_TRUE(differs);
}

// Truncating inside a key page and continuing gives the bits of a fresh run over the same tokens
// (the page bounds of the partial page are rebuilt, not left wider by the forgotten rows).
TEST(AlspecRuntime, QuestAfterTruncateEqualsAFreshRun) {
  const auto& tok = stories().tokenizer();
  const std::vector<int32_t> a = tok.encode("Once upon a time, there was a little dog named Max. He liked to run in the "
                                            "park with his friend, a big red ball. One day the ball rolled away.", true);
  const std::vector<int32_t> b = tok.encode(" The sun was warm and the birds sang in the tall green trees.", false);
  ASSERT_GT(a.size(), 37u);
  auto decode_run = [&](Engine& e, std::vector<int32_t> next) {
    std::vector<std::vector<float>> out;
    e.prefill(next, PrefillLogits::kNone, [](int64_t, const float*) {});
    int32_t t = next.back();
    for (int i = 0; i < 120; ++i) {  // past 2S = 128 rows: the quest plan runs
      const float* l = e.decode(t);
      out.emplace_back(l, l + stories().config().n_vocab);
      t = static_cast<int32_t>(std::max_element(l, l + stories().config().n_vocab) - l);
    }
    return out;
  };
  std::vector<int32_t> kept(a.begin(), a.begin() + 37);
  Engine reused(stories(), quest(AttentionMode::kSimulate, 0.1f));
  reused.prefill(a, PrefillLogits::kNone, [](int64_t, const float*) {});
  for (int i = 0; i < 30; ++i) reused.decode(5);
  reused.truncate(37);
  const auto got = decode_run(reused, b);
  Engine fresh(stories(), quest(AttentionMode::kSimulate, 0.1f));
  fresh.prefill(kept, PrefillLogits::kNone, [](int64_t, const float*) {});
  const auto want = decode_run(fresh, b);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(0, std::memcmp(got[i].data(), want[i].data(), got[i].size() * sizeof(float))) << "step " << i;
  }
}

TEST(AlspecRuntime, QuestNeedsItsMinimumSpecChunkAndDefaultsToIt) {
  EXPECT_THROW(Engine(stories(), options(AttentionMode::kSimulate, 0.1f, kQuestMinSpecChunk - 1, SpecPredictor::kQuestPages)), Error);
  const Engine e(stories(), options(AttentionMode::kSimulate, 0.1f, 0, SpecPredictor::kQuestPages));
  EXPECT_EQ(e.spec_chunk(), kQuestMinSpecChunk);  // ctx 256 alone would give S = 16
}

TEST(AlspecRuntime, RejectsImpossibleOptions) {
  auto o = options(AttentionMode::kAlspec, 0.1f);
  o.devices = 3;
  EXPECT_THROW(Engine(stories(), o), Error);
  auto o2 = options(AttentionMode::kExact, 0.1f);
  o2.devices = 2;
  EXPECT_THROW(Engine(stories(), o2), Error);
  auto o3 = options(AttentionMode::kSimulate, -1.0f);
  EXPECT_THROW(Engine(stories(), o3), Error);
  auto o4 = options(AttentionMode::kExact, 0.1f);
  o4.ctx_size = 100000;
  EXPECT_THROW(Engine(stories(), o4), Error);
}

// Per-layer S (spec budgets): the two-device protocol still equals simulate bit for bit, each
// layer's plan uses its own S (a layer with larger S has more trivial calls, L <= 2S), and a
// per-layer list of one value is the uniform S.
EngineOptions per_layer(AttentionMode mode, float lambda, std::vector<int> layer_s) {
  EngineOptions o = options(mode, lambda);
  o.layer_spec_chunk = std::move(layer_s);
  return o;
}

TEST(AlspecRuntime, PerLayerSpecChunkAlspecEqualsSimulateBitwise) {
  const int L = stories().config().n_layers;
  ASSERT_GE(L, 3);
  std::vector<int> s(static_cast<size_t>(L), 16);
  s[0] = 4;
  s[1] = 40;
  const RunResult sim = run_engine(per_layer(AttentionMode::kSimulate, 0.15f, s));
  const RunResult al = run_engine(per_layer(AttentionMode::kAlspec, 0.15f, s));
  expect_bitwise_equal(sim, al);
  for (size_t l = 0; l < sim.stats.per_layer.size(); ++l) {
    EXPECT_EQ(sim.stats.per_layer[l].hits, al.stats.per_layer[l].hits) << "layer " << l;
    EXPECT_EQ(sim.stats.per_layer[l].trivial, al.stats.per_layer[l].trivial) << "layer " << l;
  }
  EXPECT_GT(sim.stats.hits(), 0);
  EXPECT_LT(sim.stats.hits(), sim.stats.checks());
  // Trivial calls (L <= 2S) per layer follow that layer's S.
  EXPECT_LT(sim.stats.per_layer[0].trivial, sim.stats.per_layer[2].trivial);
  EXPECT_LT(sim.stats.per_layer[2].trivial, sim.stats.per_layer[1].trivial);
  // λ = 0 under the per-layer plans is exact mode under the same plans.
  expect_bitwise_equal(run_engine(per_layer(AttentionMode::kExact, 0.1f, s)),
                       run_engine(per_layer(AttentionMode::kSimulate, 0.0f, s)));
  // One S everywhere is the uniform S.
  expect_bitwise_equal(run_engine(options(AttentionMode::kSimulate, 0.15f)),
                       run_engine(per_layer(AttentionMode::kSimulate, 0.15f, std::vector<int>(static_cast<size_t>(L), 16))));
}

TEST(AlspecRuntime, PerLayerSpecChunkRejectsImpossibleValues) {
  const int L = stories().config().n_layers;
  EXPECT_THROW(Engine(stories(), per_layer(AttentionMode::kSimulate, 0.1f, std::vector<int>(static_cast<size_t>(L + 1), 16))), Error);
  std::vector<int> s(static_cast<size_t>(L), 16);
  s[1] = 0;
  EXPECT_THROW(Engine(stories(), per_layer(AttentionMode::kSimulate, 0.1f, s)), Error);
  std::vector<int> q(static_cast<size_t>(L), kQuestMinSpecChunk);
  q[2] = kQuestMinSpecChunk - 1;
  auto o = per_layer(AttentionMode::kSimulate, 0.1f, q);
  o.predictor = SpecPredictor::kQuestPages;
  o.spec.spec_chunk = kQuestMinSpecChunk;
  EXPECT_THROW(Engine(stories(), o), Error);
}

TEST(AlspecRuntime, ExplicitDeviceCores) {
  auto o = options(AttentionMode::kAlspec, 0.1f);
  o.device_cores = {{0}, {0}};  // both on core 0 still works (just slower)
  const RunResult a = run_engine(o, 30);
  const RunResult b = run_engine(options(AttentionMode::kSimulate, 0.1f), 30);
  expect_bitwise_equal(a, b);
}

}  // namespace
}  // namespace alspec
