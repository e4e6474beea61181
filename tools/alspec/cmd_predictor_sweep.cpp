// `alspec predictor-sweep`: how often each predictor's O_spec passes the check, for several S, λ
// and predictors at once, on the exact trajectory. One exact run (prefill, then decode steps in
// exact mode); at every decode attention call each (S, predictor) pair runs the speculative kernel
// on the same query and cache and its dist2/norm2 is recorded, so all pairs are compared on
// exactly the same calls, and one prefill serves every pair (an eval sweep prefills once per S
// and predictor, which at 32K tokens takes many minutes each). A call is a hit at λ iff
// dist2 <= λ² norm2, the kernel's own test. Quality under speculation (KL, scores) needs the
// approximations to feed forward: that is `alspec eval`.
//
// Two sources: running text (--text: one pass through the file; at each of --lengths the next
// --decode tokens are fed teacher-forced as decode steps, then prefill resumes), or a passkey task
// (--passkey: per item, prefill the prompt and decode greedily in exact mode; the retrieved
// answer is scored as eval does).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <numeric>
#include <optional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "alspec/command.h"
#include "alspec/core/error.h"
#include "alspec/core/read_file.h"
#include "alspec/core/timer.h"
#include "alspec/eval/answer_extraction.h"
#include "alspec/eval/task.h"
#include "alspec/model/model.h"
#include "alspec/model/session.h"
#include "alspec/spec/spec_budget.h"
#include "alspec/spec/spec_config.h"
#include "alspec/tokenizer/tokenizer.h"

namespace alspec::cli {
namespace {

struct SweepArgs {
  std::string model;
  int threads = 1;
  int64_t ctx_size = 0;
  std::string kv_type = "f16";
  std::string text;
  int64_t text_offset = 0;
  std::vector<int64_t> lengths;
  int decode = 32;
  std::string passkey;
  int64_t limit = 0;
  std::vector<int> spec_chunks{64, 128};
  std::vector<std::string> predictors{"sink-window", "quest"};
  std::vector<float> lambdas{0.05f, 0.1f, 0.2f};
  std::string out;
  // Per-layer S calibration (spec_budget.h) from the per-layer counts of all measured calls.
  std::string budgets_out;  // prefix: PREFIX.<predictor>.l<λ>.json per predictor and λ
  int budget_mean = 128;
  int budget_min = 0;            // default: 16, or kQuestMinSpecChunk for quest
};

struct Pair {
  int S;
  SpecPredictor predictor;
};

// Hits per (pair, λ) over one measurement window; checks exclude calls with L <= 2S. Also per
// layer: hits cluster by layer, and per-layer budgets are chosen from these counts.
struct Tally {
  std::vector<int64_t> checks;              // per pair
  std::vector<std::vector<int64_t>> hits;   // [pair][λ]
  std::vector<double> rel_err_sum;          // per pair: sum of sqrt(dist2 / norm2)
  std::vector<std::vector<int64_t>> layer_checks;             // [pair][layer]
  std::vector<std::vector<std::vector<int64_t>>> layer_hits;  // [pair][λ][layer]
  Tally(size_t pairs, size_t lambdas, int layers)
      : checks(pairs, 0),
        hits(pairs, std::vector<int64_t>(lambdas, 0)),
        rel_err_sum(pairs, 0.0),
        layer_checks(pairs, std::vector<int64_t>(static_cast<size_t>(layers), 0)),
        layer_hits(pairs, std::vector<std::vector<int64_t>>(lambdas, std::vector<int64_t>(static_cast<size_t>(layers), 0))) {}
};

class Sweeper {
 public:
  Sweeper(const SweepArgs& a, const Model& model, Device& dev, SessionOptions so)
      : a_(a), model_(model), dev_(dev), session_(model, dev, so) {
    for (int s : a.spec_chunks) {
      for (const auto& p : a.predictors) {
        const SpecPredictor pred = parse_spec_predictor(p);
        if (pred == SpecPredictor::kQuestPages && s < kQuestMinSpecChunk) {
          throw_invalid_argument("--predictors quest needs --spec-chunk >= " + std::to_string(kQuestMinSpecChunk));
        }
        pairs_.push_back({s, pred});
      }
    }
    const size_t n = static_cast<size_t>(model.config().n_head) * static_cast<size_t>(model.config().head_dim);
    exact_.resize(n);
    scratch_exact_.resize(n);
    spec_.resize(n);
  }

  Session& session() { return session_; }

  // One exact decode step of `token`, every pair measured at every layer; returns the logits.
  const float* step(int32_t token, Tally& t) {
    const auto& c = model_.config();
    const AttentionShape shape = session_.attention_shape();
    session_.begin_token(token);
    for (int l = 0; l < c.n_layers; ++l) {
      session_.attention_input(l);
      for (size_t i = 0; i < pairs_.size(); ++i) {
        // Pair 0's O_exact is the trajectory's attention output (pair 0 = the session's plan).
        float* exact = i == 0 ? exact_.data() : scratch_exact_.data();
        const SpecDecodeQuery q{session_.attention_query(l, exact), spec_.data()};
        SpecResult r{};
        speculative_flash_decode(dev_, shape, std::span<const SpecDecodeQuery>(&q, 1), pairs_[i].S, 0.0f,
                                 std::span<SpecResult>(&r, 1), [] {}, {}, pairs_[i].predictor);
        if (r.full_coverage) continue;
        t.checks[i] += 1;
        t.layer_checks[i][static_cast<size_t>(l)] += 1;
        t.rel_err_sum[i] += r.norm2 > 0 ? std::sqrt(r.dist2 / r.norm2) : 0.0;
        for (size_t k = 0; k < a_.lambdas.size(); ++k) {
          const double lambda2 = static_cast<double>(a_.lambdas[k]) * static_cast<double>(a_.lambdas[k]);
          if (r.dist2 <= lambda2 * r.norm2) {
            t.hits[i][k] += 1;
            t.layer_hits[i][k][static_cast<size_t>(l)] += 1;
          }
        }
      }
      session_.attention_output(l, exact_.data());
    }
    return session_.finish_token();
  }

  // One JSON line per (pair, λ); the counts are also added to the run's totals.
  void report(const nlohmann::json& where, const Tally& t, std::ostream& out) {
    add_to_totals(t);
    for (size_t i = 0; i < pairs_.size(); ++i) {
      for (size_t k = 0; k < a_.lambdas.size(); ++k) {
        nlohmann::json j = where;
        j["spec_chunk"] = pairs_[i].S;
        j["predictor"] = spec_predictor_name(pairs_[i].predictor);
        j["lambda"] = a_.lambdas[k];
        j["checks"] = t.checks[i];
        j["hits"] = t.hits[i][k];
        j["hit_rate"] = t.checks[i] > 0 ? static_cast<double>(t.hits[i][k]) / static_cast<double>(t.checks[i]) : 0.0;
        j["mean_rel_err"] = t.checks[i] > 0 ? t.rel_err_sum[i] / static_cast<double>(t.checks[i]) : 0.0;
        j["layer_checks"] = t.layer_checks[i];
        j["layer_hits"] = t.layer_hits[i][k];
        out << j.dump() << "\n";
      }
    }
    out.flush();
  }

  size_t n_pairs() const { return pairs_.size(); }

  // Writes --budgets-out: per-layer S for every predictor and λ of the sweep, from the totals.
  void write_budgets(const std::string& calibration) const {
    for (const auto& name : a_.predictors) {
      for (size_t k = 0; k < a_.lambdas.size(); ++k) {
        char lam[32];
        std::snprintf(lam, sizeof lam, "%g", static_cast<double>(a_.lambdas[k]));
        write_budget(parse_spec_predictor(name), k, a_.budgets_out + "." + name + ".l" + lam + ".json", calibration);
      }
    }
  }

  void write_budget(SpecPredictor pred, size_t ki, const std::string& path, const std::string& calibration) const {
    const float lambda = a_.lambdas[ki];
    LayerHitTable table;
    std::vector<size_t> pair_of;
    for (size_t i = 0; i < pairs_.size(); ++i) {
      if (pairs_[i].predictor == pred) pair_of.push_back(i);
    }
    std::sort(pair_of.begin(), pair_of.end(), [&](size_t x, size_t y) { return pairs_[x].S < pairs_[y].S; });
    double uniform = 0.0;
    for (size_t i : pair_of) {
      table.candidates.push_back(pairs_[i].S);
      std::vector<double> rate(totals_->layer_checks[i].size());
      for (size_t l = 0; l < rate.size(); ++l) {
        const int64_t n = totals_->layer_checks[i][l];
        rate[l] = n > 0 ? static_cast<double>(totals_->layer_hits[i][ki][l]) / static_cast<double>(n) : 0.0;
      }
      table.rate.push_back(rate);
      if (pairs_[i].S == a_.budget_mean) uniform = std::accumulate(rate.begin(), rate.end(), 0.0) / static_cast<double>(rate.size());
    }
    const int min_s = a_.budget_min > 0 ? a_.budget_min : (pred == SpecPredictor::kQuestPages ? kQuestMinSpecChunk : 16);
    SpecBudgets b;
    b.spec_chunk = allocate_spec_budgets(table, a_.budget_mean, min_s);
    b.predictor = pred;
    b.lambda = lambda;
    b.mean_spec_chunk = a_.budget_mean;
    b.expected_hit_rate = expected_hit_rate(table, b.spec_chunk);
    b.uniform_hit_rate = uniform;
    b.calibration = calibration;
    save_spec_budgets(b, path);
    std::fprintf(stderr, "predictor-sweep: budgets for %s, lambda %.3g, mean S %d: hit rate %.1f%% on these calls (uniform S: %.1f%%) -> %s\n",
                 spec_predictor_name(pred), static_cast<double>(lambda), a_.budget_mean, 100 * b.expected_hit_rate,
                 100 * uniform, path.c_str());
  }

 private:
  const SweepArgs& a_;
  const Model& model_;
  Device& dev_;
  Session session_;
  std::vector<Pair> pairs_;
  std::vector<float> exact_, scratch_exact_, spec_;
  std::optional<Tally> totals_;  // every call reported so far

  void add_to_totals(const Tally& t) {
    if (!totals_) {
      totals_ = t;
      return;
    }
    for (size_t i = 0; i < t.checks.size(); ++i) {
      for (size_t l = 0; l < t.layer_checks[i].size(); ++l) totals_->layer_checks[i][l] += t.layer_checks[i][l];
      for (size_t k = 0; k < t.hits[i].size(); ++k) {
        for (size_t l = 0; l < t.layer_hits[i][k].size(); ++l) totals_->layer_hits[i][k][l] += t.layer_hits[i][k][l];
      }
    }
  }
};

double log_softmax_at(const float* logits, int n, int32_t id) {
  const float m = *std::max_element(logits, logits + n);
  double s = 0.0;
  for (int i = 0; i < n; ++i) s += std::exp(static_cast<double>(logits[i] - m));
  return static_cast<double>(logits[id] - m) - std::log(s);
}

// Running text: one pass; at each length L the decode steps attend to L, L+1, ... cached tokens.
void sweep_text(const SweepArgs& a, const Model& model, Sweeper& sw, std::ostream& out) {
  std::string text = read_file(a.text);
  if (a.text_offset > 0) text = text.substr(std::min<size_t>(text.size(), static_cast<size_t>(a.text_offset)));
  std::vector<int64_t> lengths = a.lengths;
  std::sort(lengths.begin(), lengths.end());
  const int64_t need = lengths.back() + a.decode;
  // ~4 characters per token in English prose; 8 leaves room.
  text.resize(std::min(text.size(), static_cast<size_t>(need) * 8));
  const std::vector<int32_t> ids = model.tokenizer().encode(text, true);
  if (static_cast<int64_t>(ids.size()) < need) {
    throw_invalid_argument(a.text + ": " + std::to_string(ids.size()) + " tokens, the sweep needs " + std::to_string(need));
  }
  Session& s = sw.session();
  const int n_vocab = model.config().n_vocab;
  for (int64_t L : lengths) {
    // Prefill up to L - 1 tokens, then decode steps feed tokens L - 1, L, ...: the first step's
    // attention sees L cached rows.
    if (L - 1 < s.position()) throw_invalid_argument("--lengths must be at least --decode apart");
    const double t0 = now_seconds();
    s.prefill(std::span<const int32_t>(ids).subspan(static_cast<size_t>(s.position()),
                                                    static_cast<size_t>(L - 1 - s.position())),
              PrefillLogits::kNone, [](int64_t, const float*) {});
    const double t1 = now_seconds();
    Tally t(sw.n_pairs(), a.lambdas.size(), model.config().n_layers);
    double nll = 0.0;
    for (int i = 0; i < a.decode; ++i) {
      const int64_t p = L - 1 + i;
      const float* logits = sw.step(ids[static_cast<size_t>(p)], t);
      nll -= log_softmax_at(logits, n_vocab, ids[static_cast<size_t>(p + 1)]);
    }
    const double t2 = now_seconds();
    sw.report({{"source", "text"}, {"file", a.text}, {"length", L}, {"decode_steps", a.decode},
               {"exact_perplexity", std::exp(nll / a.decode)}, {"prefill_seconds", t1 - t0},
               {"decode_seconds", t2 - t1}, {"kv_bytes", s.kv_cache().bytes()},
               {"key_page_bytes", s.kv_cache().key_page_bytes()}},
              t, out);
    std::fprintf(stderr, "predictor-sweep: length %lld done (prefill %.1f s, decode %.1f s)\n",
                 static_cast<long long>(L), t1 - t0, t2 - t1);
  }
}

// Passkey items: exact greedy retrieval, every pair measured on the answer's decode steps.
void sweep_passkey(const SweepArgs& a, const Model& model, Sweeper& sw, std::ostream& out) {
  const eval::TaskSpec task = eval::load_task(a.passkey);
  if (task.type != eval::OutputType::kPasskey) throw_invalid_argument(a.passkey + ": not a passkey task");
  const std::vector<eval::TaskItem> items = eval::load_items(task, model.tokenizer(), a.limit);
  const eval::AnswerRule rule{task.answer_regex.empty() ? "([0-9]+)" : task.answer_regex, task.answer_last_match,
                              task.ignore};
  Session& s = sw.session();
  const Tokenizer& tok = model.tokenizer();
  const int n_vocab = model.config().n_vocab;
  for (const eval::TaskItem& item : items) {
    const std::vector<int32_t> ids = tok.encode(item.prompt, true);
    s.reset();
    const double t0 = now_seconds();
    s.prefill(std::span<const int32_t>(ids).first(ids.size() - 1), PrefillLogits::kNone, [](int64_t, const float*) {});
    const double t1 = now_seconds();
    Tally t(sw.n_pairs(), a.lambdas.size(), model.config().n_layers);
    std::vector<int32_t> generated;
    int32_t next = ids.back();
    for (int i = 0; i < task.max_tokens; ++i) {
      const float* logits = sw.step(next, t);
      next = static_cast<int32_t>(std::max_element(logits, logits + n_vocab) - logits);
      if (tok.is_end_of_generation(next)) break;
      generated.push_back(next);
    }
    const double t2 = now_seconds();
    const std::string text = tok.decode(generated);
    const std::string answer = eval::extract_answer(rule, text);
    const std::string target = eval::extract_answer(rule, item.target);
    sw.report({{"source", "passkey"}, {"task", a.passkey}, {"item", item.index}, {"length", ids.size()},
               {"meta", item.meta}, {"exact_output", text}, {"exact_correct", !answer.empty() && answer == target},
               {"prefill_seconds", t1 - t0}, {"decode_seconds", t2 - t1}, {"kv_bytes", s.kv_cache().bytes()},
               {"key_page_bytes", s.kv_cache().key_page_bytes()}},
              t, out);
    std::fprintf(stderr, "predictor-sweep: passkey item %lld (%zu tokens): '%s' vs %s (prefill %.1f s)\n",
                 static_cast<long long>(item.index), ids.size(), answer.c_str(), target.c_str(), t1 - t0);
  }
}

int run(const SweepArgs& a) {
  if (a.text.empty() == a.passkey.empty()) throw_invalid_argument("give one of --text and --passkey");
  if (!a.text.empty() && a.lengths.empty()) throw_invalid_argument("--text needs --lengths");
  if (a.spec_chunks.empty() || a.predictors.empty() || a.lambdas.empty()) {
    throw_invalid_argument("--spec-chunk, --predictors and --lambdas need at least one value each");
  }
  for (int s : a.spec_chunks) {
    if (s < 1) throw_invalid_argument("--spec-chunk values must be >= 1");
  }
  const auto kv = dtype_from_name(a.kv_type);
  if (!kv || !is_kv_cache_type(*kv)) throw_invalid_argument("--kv-type '" + a.kv_type + "' is not one of f32, f16, bf16, q8_0");
  auto model = Model::load(a.model);
  Device dev({.name = "cpu0", .threads = std::max(1, a.threads), .cores = {}});
  SessionOptions so;
  so.ctx_size = a.ctx_size;
  so.kv_type = *kv;
  // The trajectory is exact mode's under the first pair's plan (S and predictor), except that a
  // sweep listing quest runs it under quest's plan: only quest sessions keep the key page bounds
  // (KvCache), and without them the quest pairs would silently fall back to sink-window's rows.
  so.spec_chunk = a.spec_chunks.front();
  so.predictor = parse_spec_predictor(a.predictors.front());
  for (const auto& p : a.predictors) {
    if (parse_spec_predictor(p) == SpecPredictor::kQuestPages) so.predictor = SpecPredictor::kQuestPages;
  }
  Sweeper sw(a, *model, dev, so);
  std::ofstream file;
  if (!a.out.empty()) {
    file.open(a.out, std::ios::app);
    if (!file) throw Error(ErrorKind::kIo, a.out + ": cannot open for writing");
  }
  std::ostream& out = a.out.empty() ? std::cout : file;
  if (!a.text.empty()) {
    sweep_text(a, *model, sw, out);
  } else {
    sweep_passkey(a, *model, sw, out);
  }
  if (!a.budgets_out.empty()) {
    std::ostringstream cal;
    cal << "predictor-sweep, model " << a.model << ", kv " << a.kv_type;
    if (!a.text.empty()) {
      cal << ", text " << a.text << " from byte " << a.text_offset << ", lengths";
      for (int64_t L : a.lengths) cal << " " << L;
      cal << ", " << a.decode << " decode steps each";
    } else {
      cal << ", passkey " << a.passkey;
    }
    sw.write_budgets(cal.str());
  }
  return 0;
}

const CommandRegistrar kPredictorSweep(
    {"predictor-sweep", "Hit rates of several S, λ and predictors on one exact run (running text or passkey)",
     [](CLI::App& app) {
       auto a = std::make_shared<SweepArgs>();
       app.add_option("-m,--model", a->model, "GGUF model file")->required();
       app.add_option("-t,--threads", a->threads, "Threads")->capture_default_str();
       app.add_option("-c,--ctx-size", a->ctx_size, "KV cache capacity in tokens (0 = min(model context, 4096))");
       app.add_option("--kv-type", a->kv_type, "KV cache element type: f32, f16, bf16, q8_0")->capture_default_str();
       app.add_option("--text", a->text, "Running text file: one pass, measured at each of --lengths");
       app.add_option("--text-offset", a->text_offset, "Skip this many bytes of --text")->capture_default_str();
       app.add_option("--lengths", a->lengths, "Cached tokens at which --decode teacher-forced steps are measured")
           ->delimiter(',');
       app.add_option("--decode", a->decode, "Decode steps per length (--text)")->capture_default_str();
       app.add_option("--passkey", a->passkey, "Passkey task file (docs/eval.md): exact greedy retrieval per item");
       app.add_option("--limit", a->limit, "Passkey items to run (0 = all)");
       app.add_option("--spec-chunk", a->spec_chunks, "S values")->delimiter(',')->capture_default_str();
       app.add_option("--predictors", a->predictors, "sink-window, quest")->delimiter(',')->capture_default_str();
       app.add_option("--lambdas", a->lambdas, "Thresholds")->delimiter(',')->capture_default_str();
       app.add_option("-o,--out", a->out, "Append JSON lines here (default: stdout)");
       app.add_option("--budgets-out", a->budgets_out,
                      "PREFIX: per predictor and λ, write PREFIX.<predictor>.l<λ>.json, per-layer S (a --spec-budgets "
                      "file) chosen from the per-layer hit rates of all calls of this run");
       app.add_option("--budget-mean", a->budget_mean, "Mean S of --budgets-out (the uniform S it replaces)")
           ->capture_default_str();
       app.add_option("--budget-min", a->budget_min, "Smallest S of a layer (default: 16; quest 64)");
       return std::function<int()>([a] { return run(*a); });
     }});

}  // namespace
}  // namespace alspec::cli
