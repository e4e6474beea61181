// Per-layer speculation budgets: the allocation on hand-computed tables, and the file format.
#include "alspec/spec/spec_budget.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "alspec/core/error.h"

namespace alspec {
namespace {

// Three layers, candidates 32 / 64 / 128, minimum 16 (rate 0 there). Mean budget 64 = 192 in all.
LayerHitTable three_layers() {
  LayerHitTable t;
  t.candidates = {32, 64, 128};
  t.rate = {{0.90, 0.00, 0.10},   // S = 32
            {0.95, 0.00, 0.40},   // S = 64
            {1.00, 0.05, 0.90}};  // S = 128
  return t;
}

TEST(SpecBudget, AllocatesRowsWhereTheyBuyHits) {
  // By hand: 192 rows, each layer 16/32/64/128. Best: layer 0 at 32 (0.90), layer 1 at 16 (0),
  // layer 2 at 128 (0.90): 1.80 with 176 rows. Uniform 64 gives 0.95 + 0 + 0.40 = 1.35.
  const LayerHitTable t = three_layers();
  const std::vector<int> s = allocate_spec_budgets(t, 64, 16);
  EXPECT_EQ(s, (std::vector<int>{32, 16, 128}));
  EXPECT_NEAR(expected_hit_rate(t, s), 1.80 / 3, 1e-12);
  EXPECT_NEAR(expected_hit_rate(t, {64, 64, 64}), 1.35 / 3, 1e-12);
}

TEST(SpecBudget, LargerBudgetAndTies) {
  const LayerHitTable t = three_layers();
  // 384 rows: layer 0 at 128 (1.0), layer 2 at 128 (0.9), layer 1 at 128 (0.05) = 384 exactly.
  EXPECT_EQ(allocate_spec_budgets(t, 128, 16), (std::vector<int>{128, 128, 128}));
  // Equal rates at 32 and 64: the smaller S wins (fewer rows read for the same hits).
  LayerHitTable flat;
  flat.candidates = {32, 64};
  flat.rate = {{0.5, 0.5}, {0.5, 0.5}};
  EXPECT_EQ(allocate_spec_budgets(flat, 64, 32), (std::vector<int>{32, 32}));
  // The minimum is a candidate: its measured rate counts.
  EXPECT_EQ(allocate_spec_budgets(t, 32, 32), (std::vector<int>{32, 32, 32}));
}

TEST(SpecBudget, RejectsImpossibleTables) {
  const LayerHitTable t = three_layers();
  EXPECT_THROW(allocate_spec_budgets(t, 8, 16), Error);  // below the minimum
  EXPECT_THROW(allocate_spec_budgets(LayerHitTable{}, 64, 16), Error);
  LayerHitTable ragged = t;
  ragged.rate[1].pop_back();
  EXPECT_THROW(allocate_spec_budgets(ragged, 64, 16), Error);
  EXPECT_THROW(allocate_spec_budgets(t, 64, 0), Error);
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("alspec_spec_budget_" + name)).string();
}

TEST(SpecBudget, FileRoundTrip) {
  SpecBudgets b;
  b.spec_chunk = {16, 256, 64};
  b.predictor = SpecPredictor::kQuestPages;
  b.lambda = 0.2f;
  b.mean_spec_chunk = 112;
  b.expected_hit_rate = 0.5;
  b.uniform_hit_rate = 0.3;
  b.calibration = "test";
  const std::string p = temp_path("roundtrip.json");
  save_spec_budgets(b, p);
  const SpecBudgets r = load_spec_budgets(p);
  EXPECT_EQ(r.spec_chunk, b.spec_chunk);
  EXPECT_EQ(r.predictor, b.predictor);
  EXPECT_EQ(r.lambda, b.lambda);
  EXPECT_EQ(r.mean_spec_chunk, b.mean_spec_chunk);
  EXPECT_EQ(r.expected_hit_rate, b.expected_hit_rate);
  EXPECT_EQ(r.uniform_hit_rate, b.uniform_hit_rate);
  EXPECT_EQ(r.calibration, b.calibration);
  std::remove(p.c_str());
}

TEST(SpecBudget, MalformedFilesGiveClearErrors) {
  EXPECT_THROW(load_spec_budgets(temp_path("does-not-exist.json")), Error);
  const auto write = [](const std::string& name, const std::string& text) {
    const std::string p = temp_path(name);
    std::ofstream(p) << text;
    return p;
  };
  const std::string ok = R"("format": "alspec-spec-budgets", "version": 1, "predictor": "sink-window", "lambda": 0.2, "mean_spec_chunk": 128)";
  for (const auto& [name, text] : std::vector<std::pair<std::string, std::string>>{
           {"notjson", "{"},
           {"format", R"({"format": "x", "version": 1})"},
           {"version", R"({"format": "alspec-spec-budgets", "version": 2})"},
           {"missing", "{" + ok + "}"},
           {"empty", "{" + ok + R"(, "spec_chunk": []})"},
           {"zero", "{" + ok + R"(, "spec_chunk": [16, 0]})"},
           {"type", "{" + ok + R"(, "spec_chunk": ["a"]})"},
           {"predictor", R"({"format": "alspec-spec-budgets", "version": 1, "predictor": "nope", "lambda": 0.2, "mean_spec_chunk": 128, "spec_chunk": [16]})"}}) {
    SCOPED_TRACE(name);
    const std::string p = write(name + ".json", text);
    EXPECT_THROW(load_spec_budgets(p), Error);
    std::remove(p.c_str());
  }
  const std::string p = write("good.json", "{" + ok + R"(, "spec_chunk": [16, 32]})");
  EXPECT_EQ(load_spec_budgets(p).spec_chunk, (std::vector<int>{16, 32}));
  std::remove(p.c_str());
}

}  // namespace
}  // namespace alspec
