#include "alspec/spec/spec_budget.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>

#include "alspec/core/error.h"
#include "alspec/spec/spec_stats_json.h"

namespace alspec {

std::vector<int> allocate_spec_budgets(const LayerHitTable& table, int mean_spec_chunk, int min_spec_chunk) {
  if (table.candidates.empty() || table.rate.size() != table.candidates.size() || table.rate[0].empty()) {
    throw_invalid_argument("spec budgets: empty hit-rate table");
  }
  const size_t layers = table.rate[0].size();
  for (const auto& r : table.rate) {
    if (r.size() != layers) throw_invalid_argument("spec budgets: hit-rate rows of different lengths");
  }
  if (min_spec_chunk < 1) throw_invalid_argument("spec budgets: the smallest S must be >= 1");
  const int64_t total = static_cast<int64_t>(mean_spec_chunk) * static_cast<int64_t>(layers);
  if (total < static_cast<int64_t>(min_spec_chunk) * static_cast<int64_t>(layers)) {
    throw_invalid_argument("spec budgets: mean S " + std::to_string(mean_spec_chunk) + " is below the smallest S " +
                           std::to_string(min_spec_chunk));
  }
  // Options per layer: (S, rate). The smallest S first, then the candidates above it.
  std::vector<int> values{min_spec_chunk};
  for (int s : table.candidates) {
    if (s > min_spec_chunk) values.push_back(s);
  }
  int unit = 0;
  for (int v : values) unit = std::gcd(unit, v);
  const int64_t B = total / unit;
  if (B > 4'000'000) throw_invalid_argument("spec budgets: budget too fine-grained for the allocation");
  auto rate_of = [&](int s, size_t l) {
    for (size_t c = 0; c < table.candidates.size(); ++c) {
      if (table.candidates[c] == s) return table.rate[c][l];
    }
    return 0.0;
  };
  // best[b]: the largest summed rate of the layers so far using at most b units; choice[l][b]
  // the S of layer l at that optimum (ties: the option listed first, i.e. the smaller S).
  const double kNone = -std::numeric_limits<double>::infinity();
  std::vector<double> best(static_cast<size_t>(B + 1), 0.0), next(static_cast<size_t>(B + 1));
  std::vector<std::vector<int>> choice(layers, std::vector<int>(static_cast<size_t>(B + 1), 0));
  for (size_t l = 0; l < layers; ++l) {
    for (int64_t b = 0; b <= B; ++b) {
      double top = kNone;
      int pick = 0;
      for (int v : values) {
        const int64_t cost = v / unit;
        if (cost > b || best[static_cast<size_t>(b - cost)] == kNone) continue;
        const double h = best[static_cast<size_t>(b - cost)] + rate_of(v, l);
        if (h > top + 1e-12) {
          top = h;
          pick = v;
        }
      }
      next[static_cast<size_t>(b)] = top;
      choice[l][static_cast<size_t>(b)] = pick;
    }
    best.swap(next);
  }
  // The smallest budget reaching the optimum.
  int64_t b = B;
  while (b > 0 && best[static_cast<size_t>(b - 1)] >= best[static_cast<size_t>(B)] - 1e-12) --b;
  std::vector<int> s(layers);
  for (size_t l = layers; l-- > 0;) {
    s[l] = choice[l][static_cast<size_t>(b)];
    b -= s[l] / unit;
  }
  return s;
}

double expected_hit_rate(const LayerHitTable& table, const std::vector<int>& spec_chunk) {
  if (spec_chunk.empty()) return 0.0;
  double sum = 0.0;
  for (size_t l = 0; l < spec_chunk.size(); ++l) {
    for (size_t c = 0; c < table.candidates.size(); ++c) {
      if (table.candidates[c] == spec_chunk[l] && l < table.rate[c].size()) sum += table.rate[c][l];
    }
  }
  return sum / static_cast<double>(spec_chunk.size());
}

namespace {
constexpr const char* kFormat = "alspec-spec-budgets";
}

SpecBudgets load_spec_budgets(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(ErrorKind::kIo, path + ": cannot open the spec budgets file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw_invalid_argument(path + ": not JSON (" + e.what() + ")");
  }
  auto bad = [&](const std::string& what) { throw_invalid_argument(path + ": " + what); };
  if (!j.is_object() || j.value("format", "") != kFormat) bad(std::string("not a spec budgets file (format \"") + kFormat + "\")");
  if (j.value("version", 0) != 1) bad("unsupported version (this build reads version 1)");
  SpecBudgets b;
  try {
    b.predictor = parse_spec_predictor(j.at("predictor").get<std::string>());
    b.lambda = j.at("lambda").get<float>();
    b.mean_spec_chunk = j.at("mean_spec_chunk").get<int>();
    b.spec_chunk = j.at("spec_chunk").get<std::vector<int>>();
    b.expected_hit_rate = j.value("expected_hit_rate", 0.0);
    b.uniform_hit_rate = j.value("uniform_hit_rate", 0.0);
    b.calibration = j.value("calibration", "");
  } catch (const nlohmann::json::exception& e) {
    bad(std::string("missing or mistyped field (") + e.what() + ")");
  }
  if (b.spec_chunk.empty()) bad("spec_chunk is empty");
  for (int s : b.spec_chunk) {
    if (s < 1) bad("spec_chunk values must be >= 1");
  }
  if (!(b.lambda >= 0) || !std::isfinite(b.lambda)) bad("lambda must be a finite value >= 0");
  if (b.mean_spec_chunk < 1) bad("mean_spec_chunk must be >= 1");
  return b;
}

void save_spec_budgets(const SpecBudgets& b, const std::string& path) {
  nlohmann::json j = {{"format", kFormat},
                      {"version", 1},
                      {"predictor", spec_predictor_name(b.predictor)},
                      {"lambda", json_decimal(b.lambda)},
                      {"mean_spec_chunk", b.mean_spec_chunk},
                      {"spec_chunk", b.spec_chunk},
                      {"expected_hit_rate", b.expected_hit_rate},
                      {"uniform_hit_rate", b.uniform_hit_rate},
                      {"calibration", b.calibration}};
  std::ofstream out(path);
  if (!out) throw Error(ErrorKind::kIo, path + ": cannot open for writing");
  out << j.dump(1) << "\n";
  if (!out) throw Error(ErrorKind::kIo, path + ": write failed");
}

}  // namespace alspec
