// `alspec score`: teacher-forced log-probabilities of a text or token sequence (perplexity), and
// optionally the raw logits of every position, e.g. to compare against another implementation.
#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "alspec/command.h"
#include "alspec/core/error.h"
#include "alspec/model/model.h"
#include "alspec/spec/scoring.h"
#include "alspec/spec/spec_stats_json.h"
#include "alspec/tokenizer/tokenizer.h"
#include "engine_options.h"
#include "json_output.h"
#include "parallel.h"

namespace alspec::cli {
namespace {

struct ScoreArgs {
  EngineArgs engine;
  std::string text;
  std::string tokens;
  std::string logits_out;
  int64_t logits_from = 0;
  int64_t prefill_until = 0;
  int top_k = 0;
  bool no_bos = false;
};

int run(const ScoreArgs& a) {
  const EngineOptions eo = a.engine.to_options();
  auto model = a.engine.load_model();
  const Tokenizer& tok = model->tokenizer();
  const std::vector<int32_t> ids = a.tokens.empty() ? tok.encode(a.text, !a.no_bos) : parse_token_ids(a.tokens, "--tokens");
  if (ids.size() < 2) throw_invalid_argument("score needs at least 2 tokens");
  Engine engine(*model, eo);
  std::ofstream logits_file;
  ScoreOptions so;
  so.prefill_until = a.prefill_until > 0 ? a.prefill_until : static_cast<int64_t>(ids.size());
  so.top_k = a.top_k;
  const int n_vocab = model->config().n_vocab;
  if (!a.logits_out.empty() && primary_rank()) {
    logits_file.open(a.logits_out, std::ios::binary);
    if (!logits_file) throw Error(ErrorKind::kIo, a.logits_out + ": cannot open for writing");
    // Rows from --logits-from on only: a 32K-token prompt's full logits would be ~20 GB.
    so.on_logits = [&logits_file, n_vocab, from = a.logits_from](int64_t pos, const float* l) {
      if (pos - 1 < from) return;  // the logits predicting token pos are row pos - 1
      logits_file.write(reinterpret_cast<const char*>(l), static_cast<std::streamsize>(sizeof(float) * n_vocab));
    };
  }
  const auto scores = score_tokens(engine, ids, so);
  double nll = 0;
  int64_t greedy = 0;
  nlohmann::json per = nlohmann::json::array();
  for (const auto& s : scores) {
    nll -= s.logprob;
    greedy += s.greedy ? 1 : 0;
    nlohmann::json t{{"token", s.token}, {"logprob", s.logprob}, {"greedy", s.greedy}};
    if (a.top_k > 0) {
      nlohmann::json top = nlohmann::json::array();
      for (const auto& [id, lp] : s.top) top.push_back({id, lp});
      t["top"] = top;
    }
    per.push_back(t);
  }
  const double n = static_cast<double>(scores.size());
  nlohmann::json j{{"model", a.engine.model},
                   {"tokens", ids},
                   {"scored", scores.size()},
                   {"nll", nll},
                   {"perplexity", std::exp(nll / n)},
                   {"greedy_fraction", static_cast<double>(greedy) / n},
                   {"per_token", per},
                   {"speculation", speculation_json(engine, engine.stats())}};
  std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return 0;
}

const CommandRegistrar kScore({"score", "Teacher-forced log-probabilities (perplexity) of a text or token ids",
                               [](CLI::App& app) {
  auto a = std::make_shared<ScoreArgs>();
  a->engine.add_to(app);
  auto* t = app.add_option("--text", a->text, "Text to score (BOS added per the model)");
  auto* k = app.add_option("--tokens", a->tokens, "Comma-separated token ids (or @FILE holding them) to score instead of --text");
  t->excludes(k);
  app.add_flag("--no-bos", a->no_bos, "Do not add BOS to --text");
  app.add_option("--prefill-until", a->prefill_until,
                 "Positions before this run as exact prefill, later ones as decode steps in the attention mode "
                 "(default: all prefill)");
  app.add_option("--top-k", a->top_k, "Also report the k most likely tokens per position");
  app.add_option("--logits-out", a->logits_out, "Write float32 logits [scored positions][n_vocab] to this file");
  app.add_option("--logits-from", a->logits_from,
                 "With --logits-out: only rows from this one on (row i follows tokens 0..i)")
      ->check(CLI::NonNegativeNumber);
  return std::function<int()>([a] {
    if (a->text.empty() && a->tokens.empty()) throw_invalid_argument("give --text or --tokens");
    if (a->logits_from > 0 && a->logits_out.empty()) throw_invalid_argument("--logits-from needs --logits-out");
    return run(*a);
  });
}});

}  // namespace
}  // namespace alspec::cli
