#include "alspec/eval/run_config.h"

#include <algorithm>
#include <sstream>

#include "alspec/core/error.h"

namespace alspec::eval {
namespace {

std::string number(double v) {
  std::ostringstream s;
  s << v;  // shortest natural form: 0.1, 0.05, 1e+09
  return s.str();
}

bool speculative(AttentionMode m) { return m == AttentionMode::kSimulate || m == AttentionMode::kAlspec; }

}  // namespace

std::string RunConfig::key() const {
  if (mode == AttentionMode::kExact) return "exact";
  std::string k = attention_mode_name(mode);
  if (speculative(mode)) k += "/l" + number(lambda);
  k += "/S" + std::to_string(spec_chunk);
  if (predictor != SpecPredictor::kSinkWindow) k += std::string("/") + spec_predictor_name(predictor);
  if (!budgets.empty()) k += "/budgets:" + budgets;
  return k;
}

std::string RunConfig::label() const {
  if (mode == AttentionMode::kExact) return "exact";
  std::string k = attention_mode_name(mode);
  if (speculative(mode)) k += " λ=" + number(lambda);
  k += " S=" + std::to_string(spec_chunk);
  if (predictor != SpecPredictor::kSinkWindow) k += std::string(" ") + spec_predictor_name(predictor);
  if (!budgets.empty()) k += " budgets " + budgets;
  return k;
}

void add_budget_points(std::vector<RunConfig>& sweep, const std::vector<AttentionMode>& modes,
                       const std::vector<float>& lambdas, const std::vector<BudgetsPoint>& budgets) {
  for (const BudgetsPoint& b : budgets) {
    for (AttentionMode m : modes) {
      if (!speculative(m)) continue;
      for (float l : lambdas) {
        RunConfig c{m, l, b.mean_spec_chunk, b.predictor, b.name, b.layer_spec_chunk};
        const auto same = [&](const RunConfig& o) { return o.key() == c.key(); };
        if (std::none_of(sweep.begin(), sweep.end(), same)) sweep.push_back(c);
      }
    }
  }
}

std::vector<RunConfig> expand_sweep(const std::vector<AttentionMode>& modes, const std::vector<float>& lambdas,
                                    const std::vector<int>& spec_chunks, const std::vector<SpecPredictor>& predictors) {
  for (int s : spec_chunks) {
    if (s <= 0) throw_invalid_argument("--spec-chunk values must be > 0 (got " + std::to_string(s) + ")");
  }
  for (float l : lambdas) {
    if (!(l >= 0.0f) || l > 3.0e38f) throw_invalid_argument("--lambdas values must be finite and >= 0");
  }
  std::vector<RunConfig> out{RunConfig{}};
  auto add = [&](RunConfig c) {
    const auto same = [&](const RunConfig& o) { return o.key() == c.key(); };
    if (std::none_of(out.begin(), out.end(), same)) out.push_back(c);
  };
  const auto has = [&](AttentionMode m) { return std::find(modes.begin(), modes.end(), m) != modes.end(); };
  if (predictors.empty()) throw_invalid_argument("--predictors needs at least one predictor");
  for (SpecPredictor p : predictors) {
    for (int s : spec_chunks) {
      if (p == SpecPredictor::kQuestPages && s < kQuestMinSpecChunk) {
        throw_invalid_argument("--predictors quest needs --spec-chunk values >= " + std::to_string(kQuestMinSpecChunk) +
                               " (got " + std::to_string(s) + ")");
      }
    }
  }
  for (SpecPredictor p : predictors) {
    for (int s : spec_chunks) {
      if (has(AttentionMode::kStatic)) add({AttentionMode::kStatic, 0.0f, s, p});
    }
  }
  for (AttentionMode m : {AttentionMode::kSimulate, AttentionMode::kAlspec}) {
    if (!has(m)) continue;
    if (lambdas.empty()) throw_invalid_argument("mode " + std::string(attention_mode_name(m)) + " needs --lambdas");
    for (SpecPredictor p : predictors) {
      for (int s : spec_chunks) {
        for (float l : lambdas) add({m, l, s, p});
      }
    }
  }
  return out;
}

}  // namespace alspec::eval
