// One point of the sweep: attention mode, lambda and S.
#pragma once

#include <string>
#include <vector>

#include "alspec/spec/spec_config.h"

namespace alspec::eval {

struct RunConfig {
  AttentionMode mode = AttentionMode::kExact;
  float lambda = 0;  // meaningful for simulate/alspec only (0 otherwise)
  int spec_chunk = 0;  // S; 0 for exact
  SpecPredictor predictor = SpecPredictor::kSinkWindow;  // O_spec rows (sink-window for exact)
  // Per-layer S from a budgets file (spec_budget.h; spec_chunk is then its mean), named `budgets`.
  std::string budgets = {};
  std::vector<int> layer_spec_chunk = {};

  // Stable identifier used in items.jsonl and results.json, e.g. "exact", "static/S16",
  // "simulate/l0.1/S16"; other predictors than sink-window append their name: "simulate/l0.1/S64/quest";
  // per-layer S append the budgets' name: "simulate/l0.2/S128/quest/budgets:NAME".
  std::string key() const;
  std::string label() const;  // for tables: "exact", "static S=16", "simulate λ=0.1 S=16"
};

// The sweep: exact first (always, it is the reference), then static per S, then every
// speculative mode per lambda per S, each per predictor; duplicates removed. spec_chunks must be > 0.
std::vector<RunConfig> expand_sweep(const std::vector<AttentionMode>& modes, const std::vector<float>& lambdas,
                                    const std::vector<int>& spec_chunks,
                                    const std::vector<SpecPredictor>& predictors = {SpecPredictor::kSinkWindow});

// Per-layer S points added to a sweep: every speculative mode of `modes` at every lambda, with
// the file's predictor, mean S and per-layer S.
struct BudgetsPoint {
  std::string name;
  SpecPredictor predictor = SpecPredictor::kSinkWindow;
  int mean_spec_chunk = 0;
  std::vector<int> layer_spec_chunk;
};
void add_budget_points(std::vector<RunConfig>& sweep, const std::vector<AttentionMode>& modes,
                       const std::vector<float>& lambdas, const std::vector<BudgetsPoint>& budgets);

}  // namespace alspec::eval
