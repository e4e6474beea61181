// Continuous batching through Engines on a BatchScheduler: concurrent generate() calls of
// different modes, sampling and prompt lengths (chunked prefill) give bitwise the tokens and
// logits of unbatched engines, while their decode steps really are batched.
#include "alspec/spec/batch_scheduler.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/model/model.h"
#include "alspec/spec/engine.h"
#include "alspec/spec/generate.h"
#include "alspec/tokenizer/tokenizer.h"
#include "repo_paths.h"

namespace alspec {
namespace {

const Model& stories() {
  static std::unique_ptr<Model> m = Model::load(testing_paths::stories260k_gguf());
  return *m;
}

struct Output {
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> logits;
  std::string finish_reason;
  SpecStats stats;
};

struct Plan {
  std::string prompt;
  int n_predict = 0;
  AttentionMode mode = AttentionMode::kExact;
  float temperature = 0;
  uint64_t seed = 0;
};

EngineOptions engine_options(const Plan& p, BatchScheduler* scheduler) {
  EngineOptions o;
  o.threads = 1;
  o.ctx_size = 256;
  o.kv_type = DType::F32;
  o.spec.mode = p.mode;
  o.spec.lambda = 0.15f;
  o.spec.spec_chunk = 16;
  o.scheduler = scheduler;
  return o;
}

Output run(Engine& engine, const Plan& p) {
  GenerateRequest req;
  req.prompt = stories().tokenizer().encode(p.prompt, true);
  req.n_predict = p.n_predict;
  req.stop_at_eos = false;
  req.sampling.temperature = p.temperature;
  req.sampling.seed = p.seed;
  Output out;
  req.on_logits = [&](const float* l) { out.logits.emplace_back(l, l + stories().config().n_vocab); };
  const GenerateResult g = generate(engine, req);
  out.tokens = g.tokens;
  out.finish_reason = g.finish_reason;
  out.stats = g.stats;
  return out;
}

std::string long_prompt() {
  std::string s = "Once upon a time";
  for (int i = 0; i < 12; ++i) s += ", the little cat and the big dog played in the sun";
  return s;
}

TEST(BatchScheduler, ConcurrentEnginesEqualUnbatchedBitwise) {
  const std::vector<Plan> plans = {
      {"Once upon a time", 80, AttentionMode::kExact, 0, 0},
      {"The little dog ran to the park and", 60, AttentionMode::kSimulate, 0.8f, 5},
      {long_prompt(), 40, AttentionMode::kAlspec, 0.7f, 6},  // > 100 prompt tokens: chunked prefill
      {"Lily had a red ball", 70, AttentionMode::kStatic, 0, 0},
      {"Tom and Sue went to the big park", 90, AttentionMode::kAlspec, 0, 0},
  };
  ASSERT_GT(stories().tokenizer().encode(long_prompt(), true).size(), 100u);
  std::vector<Output> alone;
  for (const Plan& p : plans) {
    Engine e(stories(), engine_options(p, nullptr));
    alone.push_back(run(e, p));
  }
  // One device (alspec runs the simulate protocol there) and two (the two-device protocol).
  for (int devices : {1, 2}) {
    SCOPED_TRACE("scheduler devices " + std::to_string(devices));
    BatchScheduler scheduler(stories(), {.threads = 3 - devices, .cores = {}, .prefill_chunk = 16, .gather_seconds = 0.05,
                                         .direct = true, .devices = devices});
    std::vector<std::unique_ptr<Engine>> engines;
    for (const Plan& p : plans) engines.push_back(std::make_unique<Engine>(stories(), engine_options(p, &scheduler)));
    EXPECT_TRUE(engines[0]->batched());
    EXPECT_EQ(engines[0]->n_devices(), 1);
    EXPECT_EQ(engines[2]->n_devices(), devices);  // alspec: on both devices of a two-device scheduler
    std::vector<Output> batched(plans.size());
    for (int round = 0; round < 2; ++round) {  // the second round reuses the engines (and their caches)
      std::vector<std::thread> threads;
      for (size_t i = 0; i < plans.size(); ++i) {
        threads.emplace_back([&, i] {
          engines[i]->reset();
          batched[i] = run(*engines[i], plans[i]);
        });
      }
      for (auto& t : threads) t.join();
      for (size_t i = 0; i < plans.size(); ++i) {
        ASSERT_EQ(alone[i].tokens, batched[i].tokens) << "sequence " << i << " round " << round;
        ASSERT_EQ(alone[i].logits.size(), batched[i].logits.size());
        for (size_t k = 0; k < alone[i].logits.size(); ++k) {
          ASSERT_EQ(0, std::memcmp(alone[i].logits[k].data(), batched[i].logits[k].data(),
                                   alone[i].logits[k].size() * sizeof(float)))
              << "sequence " << i << " step " << k;
        }
        EXPECT_EQ(alone[i].stats.hits(), batched[i].stats.hits()) << "sequence " << i;
        EXPECT_EQ(alone[i].stats.checks(), batched[i].stats.checks()) << "sequence " << i;
      }
    }
    const BatchSchedulerStats s = scheduler.stats();
    int64_t decoded = 0;
    for (const Output& o : alone) decoded += 2 * static_cast<int64_t>(o.tokens.size() - 1);
    EXPECT_EQ(s.rows, decoded);
    EXPECT_LT(s.steps, s.rows);  // steps carried several sequences
    EXPECT_GT(s.prefill_chunks, 2 * 100 / 16);  // the long prompt went in 16-token chunks
    EXPECT_EQ(s.running, 0);
  }
}

// On a two-device scheduler an engine cannot move a sequence between one device and two in
// place: switching to or from alspec is refused (the pool makes a new engine), the rest is not.
TEST(BatchScheduler, TwoDeviceSchedulerKeepsAlspecOnTwoDevices) {
  BatchScheduler scheduler(stories(), {.threads = 1, .cores = {}, .prefill_chunk = 16, .devices = 2});
  EXPECT_EQ(scheduler.devices(), 2);
  Engine exact(stories(), engine_options({"", 0, AttentionMode::kExact, 0, 0}, &scheduler));
  SpecConfig s = exact.options().spec;
  s.mode = AttentionMode::kSimulate;
  EXPECT_TRUE(exact.accepts_speculation(s));
  s.mode = AttentionMode::kAlspec;
  EXPECT_FALSE(exact.accepts_speculation(s));
  EXPECT_THROW(exact.set_speculation(s), Error);
  EXPECT_THROW(BatchScheduler(stories(), {.threads = 1, .cores = {}, .prefill_chunk = 16, .devices = 3}), Error);
}

// A lone sequence on an idle device runs its steps on its own thread (no hand-off to the loop
// thread), with the same results; with `direct` off every step goes through the loop.
TEST(BatchScheduler, LoneSequenceRunsItsStepsDirectly) {
  const Plan p{"The little dog ran to the park and", 40, AttentionMode::kSimulate, 0.8f, 7};
  Engine alone_engine(stories(), engine_options(p, nullptr));
  const Output alone = run(alone_engine, p);
  for (bool direct : {true, false}) {
    SCOPED_TRACE(direct ? "direct" : "through the loop");
    BatchScheduler scheduler(stories(), {.threads = 2, .cores = {}, .prefill_chunk = 8, .gather_seconds = 0.002,
                                         .direct = direct});
    Engine e(stories(), engine_options(p, &scheduler));
    const Output o = run(e, p);
    ASSERT_EQ(alone.tokens, o.tokens);
    ASSERT_EQ(alone.logits.size(), o.logits.size());
    for (size_t k = 0; k < o.logits.size(); ++k) {
      ASSERT_EQ(0, std::memcmp(alone.logits[k].data(), o.logits[k].data(), o.logits[k].size() * sizeof(float)));
    }
    const BatchSchedulerStats s = scheduler.stats();
    EXPECT_EQ(s.steps, static_cast<int64_t>(o.tokens.size()) - 1);
    EXPECT_EQ(s.direct_steps, direct ? s.steps : 0);
  }
}

TEST(BatchScheduler, CancelledPrefillAndErrorsStayWithTheirSequence) {
  BatchScheduler scheduler(stories(), {.threads = 1, .cores = {}, .prefill_chunk = 8, .gather_seconds = 0.002});
  Plan p{long_prompt(), 10, AttentionMode::kExact, 0, 0};
  Engine e(stories(), engine_options(p, &scheduler));
  GenerateRequest req;
  req.prompt = stories().tokenizer().encode(p.prompt, true);
  int asked = 0;
  req.keep_prefilling = [&] { return ++asked < 1; };
  EXPECT_EQ(generate(e, req).finish_reason, "cancelled");
  EXPECT_EQ(e.position(), 0);
  // Too long for the cache: refused before anything runs; the scheduler keeps serving.
  const std::vector<int32_t> too_long(300, 1);
  EXPECT_THROW(e.prefill(too_long, PrefillLogits::kLast, [](int64_t, const float*) {}), Error);
  EXPECT_EQ(e.position(), 0);
  EXPECT_THROW(e.decode(stories().config().n_vocab), Error);
  Output o = run(e, {"Once upon a time", 5, AttentionMode::kExact, 0, 0});
  EXPECT_EQ(o.tokens.size(), 5u);
  // Bad settings are refused as they are without batching.
  EngineOptions bad = engine_options(p, &scheduler);
  bad.spec.lambda = -1;
  EXPECT_THROW(Engine(stories(), bad), Error);
}

}  // namespace
}  // namespace alspec
