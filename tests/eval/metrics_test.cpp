// Answer extraction, rolling windows, KL / top-1, sweep expansion.
#include <gtest/gtest.h>

#include <cmath>

#include "alspec/core/error.h"
#include "alspec/eval/answer_extraction.h"
#include "alspec/eval/distribution_distance.h"
#include "alspec/eval/rolling_windows.h"
#include "alspec/eval/run_config.h"

namespace alspec::eval {
namespace {

TEST(AnswerExtraction, FirstLastGroupAndIgnore) {
  const std::string text = "She had 3 apples, then 1,250 more. #### 1,253.\nQuestion: x #### 7";
  AnswerRule gsm{"#### (\\-?[0-9\\.\\,]+)", false, {",", "\\.$"}};
  EXPECT_EQ(extract_answer(gsm, text), "1253");
  gsm.last_match = true;
  EXPECT_EQ(extract_answer(gsm, text), "7");
  EXPECT_EQ(extract_answer({"[0-9]+", false, {}}, "ab 42 c"), "42");  // no group: the whole match
  EXPECT_EQ(extract_answer({"#### ([0-9]+)", false, {}}, "no answer"), "");
  EXPECT_EQ(extract_answer({"", false, {}}, "  as is \n"), "as is");
  EXPECT_THROW(extract_answer({"(", false, {}}, "x"), Error);
}

TEST(RollingWindows, EveryPositionScoredOnce) {
  for (int64_t n : {1, 2, 5, 128, 129, 300, 1000}) {
    for (auto [w, s] : std::vector<std::pair<int64_t, int64_t>>{{128, 64}, {128, 127}, {128, 1}, {2, 1}, {16, 5}}) {
      const auto plan = plan_rolling_windows(n, w, s);
      std::vector<int> count(static_cast<size_t>(n), 0);
      int64_t prev_end = 1;
      for (const auto& win : plan) {
        EXPECT_LE(win.end - win.start, w);
        EXPECT_GT(win.first_scored, win.start);
        EXPECT_EQ(win.first_scored, std::max(prev_end, win.start + 1));
        for (int64_t i = win.first_scored; i < win.end; ++i) ++count[static_cast<size_t>(i)];
        prev_end = win.end;
      }
      for (int64_t i = 1; i < n; ++i) EXPECT_EQ(count[static_cast<size_t>(i)], 1) << n << " " << w << " " << s << " @" << i;
    }
  }
  const auto plan = plan_rolling_windows(300, 128, 64);
  ASSERT_EQ(plan.size(), 4u);
  EXPECT_EQ(plan[1].start, 64);
  EXPECT_EQ(plan[1].first_scored, 128);  // 64 tokens of context, 64 new
  EXPECT_THROW(plan_rolling_windows(10, 8, 8), Error);
  EXPECT_THROW(plan_rolling_windows(10, 1, 1), Error);
}

TEST(DistributionDistance, KlMatchesClosedFormAndTop1) {
  const std::vector<float> a = {0.0f, std::log(3.0f)};      // p = (1/4, 3/4)
  const std::vector<float> b = {std::log(2.0f), 0.0f};      // q = (2/3, 1/3)
  const LogitRow p = make_logit_row(a.data(), 2);
  const double expect = 0.25 * std::log(0.25 / (2.0 / 3.0)) + 0.75 * std::log(0.75 / (1.0 / 3.0));
  EXPECT_NEAR(kl_divergence(p, make_logit_row(b.data(), 2)), expect, 1e-7);
  EXPECT_EQ(kl_divergence(p, p), 0.0);  // identical distributions: exactly 0
  DistanceSum d;
  d.add(p, a.data(), 2);
  d.add(p, b.data(), 2);
  EXPECT_EQ(d.positions, 2);
  EXPECT_EQ(d.top1_agree, 1);
  EXPECT_NEAR(d.kl_sum, expect, 1e-7);
  // Shift invariance: logits + c are the same distribution.
  const std::vector<float> shifted = {5.0f, 5.0f + std::log(3.0f)};
  EXPECT_NEAR(kl_divergence(p, shifted.data(), 2), 0.0, 1e-6);
}

TEST(RunConfig, SweepOrderKeysAndDuplicates) {
  const auto sweep = expand_sweep({AttentionMode::kSimulate, AttentionMode::kStatic, AttentionMode::kExact},
                                  {0.1f, 0.05f, 0.1f}, {16, 32});
  std::vector<std::string> keys;
  for (const auto& c : sweep) keys.push_back(c.key());
  const std::vector<std::string> expect = {"exact",           "static/S16",       "static/S32",       "simulate/l0.1/S16",
                                           "simulate/l0.05/S16", "simulate/l0.1/S32", "simulate/l0.05/S32"};
  EXPECT_EQ(keys, expect);
  EXPECT_EQ(sweep[3].label(), "simulate λ=0.1 S=16");
  EXPECT_EQ(expand_sweep({AttentionMode::kStatic}, {}, {16}).front().key(), "exact");  // exact always first
  EXPECT_THROW(expand_sweep({AttentionMode::kSimulate}, {0.1f}, {0}), Error);
  EXPECT_THROW(expand_sweep({AttentionMode::kSimulate}, {}, {16}), Error);
}

TEST(RunConfig, BudgetPointsPerSpeculativeModeAndLambda) {
  auto sweep = expand_sweep({AttentionMode::kSimulate, AttentionMode::kStatic}, {0.1f, 0.2f}, {64});
  add_budget_points(sweep, {AttentionMode::kSimulate, AttentionMode::kStatic}, {0.1f, 0.2f},
                    {{"cal8k", SpecPredictor::kQuestPages, 128, {64, 256, 64}}});
  std::vector<std::string> keys;
  for (const auto& c : sweep) keys.push_back(c.key());
  // static never speculates per check, so no budget points for it.
  const std::vector<std::string> expect = {"exact", "static/S64", "simulate/l0.1/S64", "simulate/l0.2/S64",
                                           "simulate/l0.1/S128/quest/budgets:cal8k",
                                           "simulate/l0.2/S128/quest/budgets:cal8k"};
  EXPECT_EQ(keys, expect);
  EXPECT_EQ(sweep.back().label(), "simulate λ=0.2 S=128 quest budgets cal8k");
  EXPECT_EQ(sweep.back().layer_spec_chunk, (std::vector<int>{64, 256, 64}));
}

TEST(RunConfig, PredictorsAreASweepDimension) {
  const auto sweep = expand_sweep({AttentionMode::kSimulate, AttentionMode::kStatic}, {0.1f}, {64},
                                  {SpecPredictor::kSinkWindow, SpecPredictor::kQuestPages});
  std::vector<std::string> keys;
  for (const auto& c : sweep) keys.push_back(c.key());
  // sink-window keys are unchanged; other predictors append their name.
  const std::vector<std::string> expect = {"exact", "static/S64", "static/S64/quest", "simulate/l0.1/S64",
                                           "simulate/l0.1/S64/quest"};
  EXPECT_EQ(keys, expect);
  EXPECT_EQ(sweep.back().label(), "simulate λ=0.1 S=64 quest");
  EXPECT_EQ(sweep.back().predictor, SpecPredictor::kQuestPages);
  // quest needs S >= 64 (kQuestMinSpecChunk); an empty list is an error.
  EXPECT_THROW(expand_sweep({AttentionMode::kSimulate}, {0.1f}, {32}, {SpecPredictor::kQuestPages}), Error);
  EXPECT_THROW(expand_sweep({AttentionMode::kSimulate}, {0.1f}, {64}, {}), Error);
}

}  // namespace
}  // namespace alspec::eval
