// Per-layer speculation budgets. Hits cluster by layer: at the same S some layers pass the check
// on almost every call and others almost never (docs/results/predictor-sweep). A budget file
// gives each layer its own S (O_spec reads 2S rows there) so that the rows go where they buy
// hits, at the same mean S: calibrated from the per-layer hit rates of `alspec predictor-sweep`
// on a few prompts (--budgets-out), then used by every command that speculates
// (--spec-budgets FILE). The check is unchanged: a layer accepts iff its error is <= lambda.
#pragma once

#include <string>
#include <vector>

#include "alspec/kernels/spec_predictor.h"

namespace alspec {

// Measured hit rates: rate[c][l] of the calls at layer l that pass the check with S = candidates[c].
struct LayerHitTable {
  std::vector<int> candidates;            // S values, increasing
  std::vector<std::vector<double>> rate;  // [candidate][layer], in [0, 1]
};

// One S per layer maximising the summed hit rate subject to mean(S) <= mean_spec_chunk, each S
// either min_spec_chunk (a layer not worth rows; its rate is the table's if min_spec_chunk is a
// candidate, else taken as 0) or a candidate >= min_spec_chunk. Exact (dynamic programming over
// the budget in units of the gcd of the values); among equal sums the smaller total, then
// smaller S at earlier layers. Throws Error(kInvalidArgument) on an empty or ragged table, or a
// budget below n_layers * min_spec_chunk.
std::vector<int> allocate_spec_budgets(const LayerHitTable& table, int mean_spec_chunk, int min_spec_chunk);

// Expected hit rate of a per-layer choice: mean over layers of table.rate[c(S_l)][l] (0 for an S
// that is not a candidate).
double expected_hit_rate(const LayerHitTable& table, const std::vector<int>& spec_chunk);

struct SpecBudgets {
  std::vector<int> spec_chunk;  // S per layer
  SpecPredictor predictor = SpecPredictor::kSinkWindow;
  float lambda = 0;             // the threshold the calibration maximised hits for
  int mean_spec_chunk = 0;      // the budget: the uniform S it replaces
  double expected_hit_rate = 0;          // on the calibration calls
  double uniform_hit_rate = 0;           // uniform S = mean_spec_chunk on the same calls (0: not measured)
  std::string calibration;      // how it was calibrated (model, text, lengths), free text
};

// JSON file: {"format": "alspec-spec-budgets", "version": 1, "predictor", "lambda",
// "mean_spec_chunk", "spec_chunk": [...], "expected_hit_rate", "uniform_hit_rate", "calibration"}.
// load checks the format and values (Error(kIo) / Error(kInvalidArgument) naming the file).
SpecBudgets load_spec_budgets(const std::string& path);
void save_spec_budgets(const SpecBudgets& b, const std::string& path);

}  // namespace alspec
