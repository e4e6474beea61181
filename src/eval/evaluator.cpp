#include "alspec/eval/evaluator.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "alspec/core/error.h"
#include "alspec/core/timer.h"
#include "alspec/eval/answer_extraction.h"
#include "alspec/eval/distribution_distance.h"
#include "alspec/eval/rolling_windows.h"
#include "alspec/spec/generate.h"
#include "alspec/spec/scoring.h"
#include "alspec/spec/spec_stats_json.h"
#include "alspec/tokenizer/tokenizer.h"

namespace alspec::eval {
namespace {
using json = nlohmann::json;

// results.json gets committed and read on other machines: a data file below the working directory
// (usually the repository root) is recorded relative to it, like the model and task paths, which
// are recorded as given; task loading resolves data paths to absolute ones.
std::string recorded_path(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path cwd = std::filesystem::weakly_canonical(std::filesystem::current_path(ec), ec);
  if (ec) return path;
  const std::filesystem::path rel = std::filesystem::path(path).lexically_relative(cwd);
  if (rel.empty() || *rel.begin() == "..") return path;
  return rel.string();
}

// A teacher-forced token sequence: positions [0, prefill_until) are prefilled exactly, the rest
// are decode steps in the engine's mode (see score_tokens).
struct Sequence {
  std::vector<int32_t> tokens;
  int64_t prefill_until = 1;
};

// Exact next-token distributions at the decode-produced positions (> prefill split) of each sequence.
using Reference = std::vector<std::vector<LogitRow>>;

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

std::string item_hash(const TaskItem& item) {
  std::string all = item.prompt + '\x1f' + item.target;
  for (const auto& c : item.choices) all += '\x1f' + c;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(fnv1a(all)));
  return buf;
}

// An item's statistics in items.jsonl: per-layer arrays {checks, hits, trivial}. This is the file's
// storage format (--resume reads existing files back), not a report: results.json sums the items
// into a SpecStats and prints it with spec_stats_json like the server and the CLI.
json stats_record(const SpecStats& s) {
  json c = json::array(), h = json::array(), t = json::array();
  for (const auto& l : s.per_layer) {
    c.push_back(l.checks);
    h.push_back(l.hits);
    t.push_back(l.trivial);
  }
  return {{"checks", c}, {"hits", h}, {"trivial", t}};
}

SpecStats stats_from_record(const json& st) {
  SpecStats s;
  s.reset(static_cast<int>(st["checks"].size()));
  for (size_t l = 0; l < s.per_layer.size(); ++l) {
    s.per_layer[l] = {.checks = st["checks"][l].get<int64_t>(),
                      .hits = st["hits"][l].get<int64_t>(),
                      .trivial = st["trivial"][l].get<int64_t>()};
  }
  return s;
}

json distance_json(const DistanceSum& d) {
  return {{"kl_sum", d.kl_sum}, {"top1_agree", d.top1_agree}, {"positions", d.positions}};
}

// Keeps the last `max` tokens, the first one (BOS) included when the sequence starts with BOS.
bool fit_left(std::vector<int32_t>& t, int64_t max, int32_t bos) {
  if (static_cast<int64_t>(t.size()) <= max) return false;
  const bool keep_bos = bos >= 0 && !t.empty() && t.front() == bos;
  const size_t drop = t.size() - static_cast<size_t>(max);
  t.erase(t.begin() + (keep_bos ? 1 : 0), t.begin() + (keep_bos ? 1 : 0) + static_cast<std::ptrdiff_t>(drop));
  return true;
}

// Everything about one item that does not depend on the sweep point.
struct PreparedItem {
  std::vector<int32_t> prompt;     // generation
  bool truncated = false;
  std::vector<Sequence> sequences; // multiple_choice: one per choice; rolling: one per window
  std::vector<int64_t> byte_lens;  // multiple_choice
  std::vector<int64_t> first_scored;  // per sequence: first position whose log-prob counts
  std::vector<int32_t> tokens;     // rolling
  std::vector<RollingWindow> windows;
  int64_t n_bytes = 0;
};

class TaskRunner {
 public:
  TaskRunner(const Model& model, const TaskSpec& task, int64_t ctx)
      : tok_(model.tokenizer()), task_(task), ctx_(ctx), n_vocab_(model.config().n_vocab) {
    rule_ = {task.answer_regex, task.answer_last_match, task.ignore};
  }

  PreparedItem prepare(const TaskItem& item) const {
    PreparedItem p;
    const int32_t bos = tok_.bos_id();
    switch (task_.type) {
      case OutputType::kGenerateUntil:
      case OutputType::kPasskey: {
        const int64_t room = ctx_ - task_.max_tokens;
        if (room < 2) {
          throw_invalid_argument(task_.file + ": field 'max_tokens': " + std::to_string(task_.max_tokens) +
                                 " leaves no room for a prompt in a context of " + std::to_string(ctx_));
        }
        p.prompt = tok_.encode(item.prompt, true);
        p.truncated = fit_left(p.prompt, room, bos);
        if (p.truncated && task_.type == OutputType::kPasskey) {  // cutting would remove the needle or the intro
          throw_invalid_argument(task_.file + ": field 'lengths': a " + item.meta["length"].dump() + "-token prompt plus " +
                                 std::to_string(task_.max_tokens) + " new tokens does not fit the context of " +
                                 std::to_string(ctx_));
        }
        break;
      }
      case OutputType::kMultipleChoice: {
        const std::vector<int32_t> ctx_ids = tok_.encode(item.prompt, true);
        for (const auto& choice : item.choices) {
          const std::string cont = task_.choice_prefix + choice;
          Sequence s;
          s.tokens = tok_.encode(item.prompt + cont, true);
          // The continuation starts where the joint tokenisation leaves the context's.
          size_t common = 0;
          while (common < ctx_ids.size() && common < s.tokens.size() && ctx_ids[common] == s.tokens[common]) ++common;
          common = std::clamp<size_t>(common, 1, s.tokens.size() - 1);
          const size_t cont_len = s.tokens.size() - common;
          p.truncated = fit_left(s.tokens, ctx_, bos) || p.truncated;
          const int64_t split = static_cast<int64_t>(s.tokens.size() - cont_len);
          if (split < 1) throw_invalid_argument(task_.data + ": a choice alone does not fit the context");
          // The last context token is a decode step too, so every continuation log-prob is speculative.
          s.prefill_until = std::max<int64_t>(1, split - 1);
          p.sequences.push_back(std::move(s));
          p.byte_lens.push_back(static_cast<int64_t>(cont.size()));
          p.first_scored.push_back(split);
        }
        break;
      }
      case OutputType::kLoglikelihoodRolling: {
        p.tokens = tok_.encode(item.prompt, true);
        p.n_bytes = static_cast<int64_t>(item.prompt.size());
        const int64_t window = task_.window > 0 ? std::min(task_.window, ctx_) : ctx_;
        const int64_t stride = task_.stride > 0 ? task_.stride : window / 2;
        p.windows = plan_rolling_windows(static_cast<int64_t>(p.tokens.size()), window, stride);
        for (const auto& w : p.windows) {
          Sequence s;
          s.tokens.assign(p.tokens.begin() + w.start, p.tokens.begin() + w.end);
          s.prefill_until = std::max<int64_t>(1, w.first_scored - w.start - 1);
          p.first_scored.push_back(w.first_scored - w.start);
          p.sequences.push_back(std::move(s));
        }
        break;
      }
    }
    return p;
  }

  // Scores the item in the engine's mode. `ref` null: this is the exact run; it fills `built`.
  json score(Engine& engine, const TaskItem& item, const PreparedItem& p, const Reference* ref, Reference* built,
             const json* exact_record) {
    engine.reset_stats();
    SpecStats stats;
    stats.reset(engine.model().config().n_layers);
    DistanceSum dist;
    json r;
    const double t0 = now_seconds();
    if (task_.type == OutputType::kGenerateUntil || task_.type == OutputType::kPasskey) {
      GenerateRequest req;
      req.prompt = p.prompt;
      req.reuse_prefix = true;  // sweep points and few-shot items share prompt prefixes
      req.n_predict = task_.max_tokens;
      req.stop = task_.stop;
      std::vector<LogitRow> gen_rows;
      if (!ref) req.on_logits = [&](const float* l) { gen_rows.push_back(make_logit_row(l, n_vocab_)); };
      const GenerateResult g = generate(engine, req);
      stats.merge(g.stats);
      const std::string answer = extract_answer(rule_, g.text);
      const std::string target_answer = extract_answer(rule_, item.target);
      r = {{"output", g.text}, {"answer", answer}, {"target_answer", target_answer},
           {"correct", !answer.empty() && answer == target_answer}, {"finish_reason", g.finish_reason},
           {"prompt_tokens", p.prompt.size()}, {"generated_tokens", g.tokens.size()}, {"truncated", p.truncated}};
      // Distance to exact: teacher-forced on the exact run's output.
      Sequence s;
      s.tokens = p.prompt;
      const auto& exact_tokens = ref ? (*exact_record)["tokens"].get<std::vector<int32_t>>() : g.tokens;
      s.tokens.insert(s.tokens.end(), exact_tokens.begin(), exact_tokens.end());
      s.prefill_until = static_cast<int64_t>(p.prompt.size());
      if (!ref) {
        r["tokens"] = g.tokens;
        // Row i of the generation predicted token i (position P + i); the reference rows are
        // positions P + 1 .. P + n - 1. In exact mode, teacher forcing the generated tokens repeats
        // the generation's decode steps bit for bit, so its rows are taken, not recomputed.
        auto& rows = built->emplace_back();
        for (size_t i = 1; i < g.tokens.size() && i < gen_rows.size(); ++i) rows.push_back(std::move(gen_rows[i]));
        for (const auto& row : rows) dist.add(row, row.logits.data(), n_vocab_);
      } else {
        teacher_forced(engine, s, &(*ref)[0], nullptr, dist);
      }
    } else {
      std::vector<double> lls;
      for (size_t k = 0; k < p.sequences.size(); ++k) {
        engine.reset_stats();
        std::vector<LogitRow>* out = nullptr;
        if (!ref) out = &built->emplace_back();
        const auto scores = teacher_forced(engine, p.sequences[k], ref ? &(*ref)[k] : nullptr, out, dist);
        if (!ref) {  // the exact run's distance is to itself: 0 by definition, counted for the positions
          for (const auto& row : *out) dist.add(row, row.logits.data(), n_vocab_);
        }
        stats.merge(engine.stats());
        const int64_t first = p.first_scored[k];
        double ll = 0;
        for (size_t i = static_cast<size_t>(first); i < p.sequences[k].tokens.size(); ++i) ll += scores[i - 1].logprob;
        lls.push_back(ll);
      }
      if (task_.type == OutputType::kMultipleChoice) {
        size_t pred = 0, pred_norm = 0;
        for (size_t k = 1; k < lls.size(); ++k) {
          if (lls[k] > lls[pred]) pred = k;
          if (lls[k] / static_cast<double>(p.byte_lens[k]) > lls[pred_norm] / static_cast<double>(p.byte_lens[pred_norm]))
            pred_norm = k;
        }
        r = {{"logliks", lls}, {"byte_lens", p.byte_lens}, {"gold", item.gold}, {"pred", pred},
             {"pred_norm", pred_norm}, {"correct", static_cast<int>(pred) == item.gold},
             {"correct_norm", static_cast<int>(pred_norm) == item.gold}, {"truncated", p.truncated}};
      } else {
        double ll = 0;
        for (double v : lls) ll += v;
        r = {{"ll_sum", ll}, {"n_tokens", p.tokens.size() - 1}, {"n_bytes", p.n_bytes}};
        if (!ref) {
          r["tokens"] = p.tokens;
          json w = json::array();
          for (const auto& win : p.windows) w.push_back({win.start, win.end, win.first_scored});
          r["windows"] = w;
        }
      }
    }
    r["seconds"] = now_seconds() - t0;
    r["stats"] = stats_record(stats);
    r["distance"] = distance_json(dist);
    if (task_.type == OutputType::kPasskey) r["meta"] = item.meta;
    return r;
  }


 private:
  // Runs score_tokens; rows at decode-produced positions go to `out` and/or are compared with `ref`.
  std::vector<TokenScore> teacher_forced(Engine& engine, const Sequence& s, const std::vector<LogitRow>* ref,
                                         std::vector<LogitRow>* out, DistanceSum& dist) {
    ScoreOptions o;
    o.prefill_until = s.prefill_until;
    o.reuse_prefix = true;  // only decode-produced positions are used, never reused prefill rows
    const int64_t split = std::clamp<int64_t>(s.prefill_until, 1, static_cast<int64_t>(s.tokens.size()));
    o.on_logits = [&](int64_t pos, const float* logits) {
      if (pos <= split) return;  // predicted by the exact prefill
      const size_t i = static_cast<size_t>(pos - split - 1);
      if (out) out->push_back(make_logit_row(logits, n_vocab_));
      if (ref && i < ref->size()) dist.add((*ref)[i], logits, n_vocab_);
    };
    if (s.tokens.size() < 2) return {};
    return score_tokens(engine, s.tokens, o);
  }

  const Tokenizer& tok_;
  const TaskSpec& task_;
  int64_t ctx_;
  int n_vocab_;
  AnswerRule rule_;
};

// items.jsonl: a header line, then one line per (task, item, sweep point).
class ItemLog {
 public:
  ItemLog(const std::string& dir, bool resume, const json& header) {
    if (dir.empty()) return;
    std::filesystem::create_directories(dir);
    path_ = (std::filesystem::path(dir) / "items.jsonl").string();
    if (resume && std::filesystem::exists(path_)) {
      std::ifstream in(path_);
      std::string line;
      bool first = true;
      while (std::getline(in, line)) {
        json j;
        try {
          j = json::parse(line);
        } catch (const json::parse_error&) {
          continue;  // a line cut short by an interruption
        }
        if (first) {
          first = false;
          if (!j.contains("header") || j["header"] != header) {
            throw_invalid_argument(path_ + ": --resume: recorded with other settings (" +
                                   (j.contains("header") ? j["header"].dump() : std::string("no header")) +
                                   "); use another --out or drop --resume");
          }
          continue;
        }
        if (j.contains("task") && j.contains("item") && j.contains("config") && j.contains("record")) {
          done_[j["task"].get<std::string>() + '\x1f' + j["config"].get<std::string>() + '\x1f' +
                std::to_string(j["item"].get<int64_t>()) + '\x1f' + j.value("hash", "")] = j["record"];
        }
      }
      out_.open(path_, std::ios::app);
    } else {
      out_.open(path_, std::ios::trunc);
      out_ << json{{"header", header}}.dump() << "\n" << std::flush;
    }
    if (!out_) throw Error(ErrorKind::kIo, path_ + ": cannot open for writing");
  }

  const json* find(const std::string& task, const std::string& config, int64_t item, const std::string& hash) const {
    const auto it = done_.find(task + '\x1f' + config + '\x1f' + std::to_string(item) + '\x1f' + hash);
    return it == done_.end() ? nullptr : &it->second;
  }

  void append(const std::string& task, const std::string& config, int64_t item, const std::string& hash,
              const json& record) {
    if (!out_.is_open()) return;
    out_ << json{{"task", task}, {"config", config}, {"item", item}, {"hash", hash}, {"record", record}}.dump() << "\n"
         << std::flush;  // one complete line per scored item survives an interruption
  }

 private:
  std::string path_;
  std::ofstream out_;
  std::map<std::string, json> done_;
};

double safe_div(double a, double b) { return b > 0 ? a / b : 0.0; }

}  // namespace

json summarize_task(const TaskSpec& task, const std::vector<RunConfig>& sweep,
                    const std::vector<std::vector<json>>& records_by_config) {
  json results = json::array();
  for (size_t c = 0; c < sweep.size(); ++c) {
    const auto& recs = records_by_config[c];
    SpecStats stats;
    double kl = 0, seconds = 0;
    int64_t top1 = 0, positions = 0;
    for (const auto& r : recs) {
      stats.merge(stats_from_record(r["stats"]));
      kl += r["distance"]["kl_sum"].get<double>();
      top1 += r["distance"]["top1_agree"].get<int64_t>();
      positions += r["distance"]["positions"].get<int64_t>();
      seconds += r["seconds"].get<double>();
    }
    json metrics = json::object();
    json score;
    std::string metric;
    const double n = static_cast<double>(recs.size());
    switch (task.type) {
      case OutputType::kGenerateUntil:
      case OutputType::kPasskey: {
        double correct = 0, truncated = 0;
        std::map<std::pair<int64_t, double>, std::pair<int64_t, int64_t>> grid;  // (length, depth) -> (n, correct)
        for (const auto& r : recs) {
          correct += r["correct"].get<bool>();
          truncated += r["truncated"].get<bool>();
          if (task.type == OutputType::kPasskey) {
            auto& cell = grid[{r["meta"]["target_length"].get<int64_t>(), r["meta"]["depth"].get<double>()}];
            ++cell.first;
            cell.second += r["correct"].get<bool>();
          }
        }
        metric = task.type == OutputType::kPasskey ? "accuracy" : "exact_match";
        metrics[metric] = safe_div(correct, n);
        metrics["truncated_prompts"] = truncated;
        if (task.type == OutputType::kPasskey) {
          json g = json::array();
          for (const auto& [k, v] : grid) {
            g.push_back({{"length", k.first}, {"depth", k.second}, {"n", v.first},
                         {"accuracy", safe_div(static_cast<double>(v.second), static_cast<double>(v.first))}});
          }
          metrics["grid"] = g;
        }
        score = metrics[metric];
        break;
      }
      case OutputType::kMultipleChoice: {
        double acc = 0, acc_norm = 0;
        for (const auto& r : recs) {
          acc += r["correct"].get<bool>();
          acc_norm += r["correct_norm"].get<bool>();
        }
        metric = "acc";
        metrics["acc"] = safe_div(acc, n);
        metrics["acc_norm"] = safe_div(acc_norm, n);
        score = metrics["acc"];
        break;
      }
      case OutputType::kLoglikelihoodRolling: {
        double ll = 0, tokens = 0, bytes = 0;
        for (const auto& r : recs) {
          ll += r["ll_sum"].get<double>();
          tokens += r["n_tokens"].get<double>();
          bytes += r["n_bytes"].get<double>();
        }
        metric = "perplexity";
        metrics["perplexity"] = tokens > 0 ? std::exp(-ll / tokens) : 0.0;
        metrics["bits_per_byte"] = bytes > 0 ? -ll / (std::log(2.0) * bytes) : 0.0;
        metrics["loglikelihood"] = ll;
        metrics["tokens"] = tokens;
        metrics["bytes"] = bytes;
        score = metrics["perplexity"];
        break;
      }
    }
    const RunConfig& cfg = sweep[c];
    json result =
        {{"config", {{"key", cfg.key()}, {"label", cfg.label()}, {"mode", attention_mode_name(cfg.mode)},
                     {"lambda", cfg.mode == AttentionMode::kSimulate || cfg.mode == AttentionMode::kAlspec ? json(cfg.lambda) : json()},
                     {"spec_chunk", cfg.spec_chunk > 0 ? json(cfg.spec_chunk) : json()},
                     {"predictor", spec_predictor_name(cfg.predictor)},
                     {"budgets", cfg.budgets.empty() ? json() : json(cfg.budgets)},
                     {"layer_spec_chunk", cfg.layer_spec_chunk.empty() ? json() : json(cfg.layer_spec_chunk)}}},
         {"n_items", recs.size()},
         {"metric", metric},
         {"higher_is_better", task.type != OutputType::kLoglikelihoodRolling},
         {"score", score},
         {"metrics", metrics},
         {"kl_mean", positions > 0 ? json(kl / static_cast<double>(positions)) : json()},
         {"top1", positions > 0 ? json(safe_div(static_cast<double>(top1), static_cast<double>(positions))) : json()},
         {"distance_positions", positions},
         {"seconds", seconds}};
    result.update(spec_stats_json(stats));  // checks, hits, trivial, hit_rate, per_layer
    results.push_back(std::move(result));
  }
  return results;
}

json run_evaluation(const Model& model, const std::vector<TaskSpec>& tasks, const EvalOptions& options,
                    const std::function<void(const EvalProgress&)>& progress) {
  if (options.shard_count < 1 || options.shard < 0 || options.shard >= options.shard_count) {
    throw_invalid_argument("eval: shard " + std::to_string(options.shard) + " of " + std::to_string(options.shard_count) +
                           " (expected 0 <= shard < count)");
  }
  if (options.sweep.empty() || options.sweep.front().mode != AttentionMode::kExact) {
    throw_invalid_argument("eval: the sweep must start with exact mode (the reference)");
  }
  const double t_start = now_seconds();
  // Items are scored item-major so that the exact reference of an item is held only while its
  // sweep points run. Sweep points share an engine whenever it accepts their settings (same S and
  // device count; switched with set_speculation), so a prompt is prefilled once per item and
  // engine, not once per sweep point. Prefill is always exact, hence shareable.
  std::vector<SpecConfig> specs;  // per sweep point
  std::vector<std::unique_ptr<Engine>> engine_pool;
  std::vector<Engine*> engines;  // per sweep point
  for (const auto& cfg : options.sweep) {
    SpecConfig& spec = specs.emplace_back(options.engine.spec);
    spec.mode = cfg.mode;
    spec.lambda = cfg.lambda;
    spec.spec_chunk = cfg.spec_chunk;
    Engine* engine = nullptr;
    for (const auto& e : engine_pool) {
      if (e->accepts_speculation(spec) && e->options().predictor == cfg.predictor &&
          e->options().layer_spec_chunk == cfg.layer_spec_chunk) {
        engine = e.get();
      }
    }
    if (engine == nullptr) {
      EngineOptions eo = options.engine;
      eo.spec = spec;
      eo.predictor = cfg.predictor;
      eo.layer_spec_chunk = cfg.layer_spec_chunk;
      engine = engine_pool.emplace_back(std::make_unique<Engine>(model, eo)).get();
    }
    engines.push_back(engine);
  }
  auto engine_for = [&](size_t c) -> Engine& {
    engines[c]->set_speculation(specs[c]);
    return *engines[c];
  };
  const int64_t ctx = engines.front()->ctx_size();
  const json header = {{"model", model.path()}, {"ctx_size", ctx}, {"kv_type", std::string(dtype_name(options.engine.kv_type))}};
  ItemLog log(options.out_dir, options.resume, header);

  std::vector<std::vector<TaskItem>> items;
  EvalProgress prog;
  for (const auto& t : tasks) {
    items.push_back(load_items(t, model.tokenizer(), options.limit));
    if (options.shard_count > 1) {
      std::erase_if(items.back(), [&](const TaskItem& it) { return it.index % options.shard_count != options.shard; });
    }
    prog.total += static_cast<int64_t>(items.back().size() * options.sweep.size());
  }
  auto report = [&] {
    prog.elapsed_seconds = now_seconds() - t_start;
    if (progress) progress(prog);
  };

  json task_results = json::array();
  for (size_t ti = 0; ti < tasks.size(); ++ti) {
    const TaskSpec& task = tasks[ti];
    TaskRunner runner(model, task, ctx);
    std::vector<std::vector<json>> records(options.sweep.size());
    prog.task = task.name;
    for (const TaskItem& item : items[ti]) {
      const std::string hash = item_hash(item);
      std::vector<const json*> found;
      bool all = true;
      for (const auto& cfg : options.sweep) {
        found.push_back(log.find(task.name, cfg.key(), item.index, hash));
        all = all && found.back();
      }
      if (all) {
        for (size_t c = 0; c < found.size(); ++c) records[c].push_back(*found[c]);
        prog.done += static_cast<int64_t>(found.size());
        prog.resumed += static_cast<int64_t>(found.size());
        report();
        continue;
      }
      const PreparedItem prepared = runner.prepare(item);
      // The exact run gives the reference distributions; it is recomputed (not re-recorded) on resume.
      prog.config = options.sweep[0].key();
      report();
      Reference reference;
      json exact = runner.score(engine_for(0), item, prepared, nullptr, &reference, nullptr);
      if (found[0]) {
        exact = *found[0];
        ++prog.resumed;
      } else {
        log.append(task.name, options.sweep[0].key(), item.index, hash, exact);
      }
      records[0].push_back(exact);
      ++prog.done;
      for (size_t c = 1; c < options.sweep.size(); ++c) {
        prog.config = options.sweep[c].key();
        if (found[c]) {
          records[c].push_back(*found[c]);
          ++prog.resumed;
        } else {
          report();
          const json r = runner.score(engine_for(c), item, prepared, &reference, nullptr, &exact);
          log.append(task.name, options.sweep[c].key(), item.index, hash, r);
          records[c].push_back(r);
        }
        ++prog.done;
      }
      report();
    }
    json tr = {{"name", task.name},
               {"file", task.file},
               {"output_type", output_type_name(task.type)},
               {"n_items", items[ti].size()},
               {"few_shot", task.few_shot},
               {"results", summarize_task(task, options.sweep, records)}};
    if (!task.data.empty()) tr["data"] = recorded_path(task.data);
    task_results.push_back(tr);
  }
  const auto& cfg = model.config();
  json out;
  out["model"] = {{"path", model.path()}, {"name", cfg.name}, {"arch", cfg.arch_name}, {"n_layers", cfg.n_layers},
                  {"n_vocab", cfg.n_vocab}, {"context_length", cfg.context_length}};
  out["settings"] = options.settings;
  out["settings"]["ctx_size"] = ctx;
  out["settings"]["kv_type"] = std::string(dtype_name(options.engine.kv_type));
  out["settings"]["threads"] = engines.front()->threads_per_device();
  out["settings"]["limit"] = options.limit;
  if (options.shard_count > 1) out["settings"]["shard"] = std::to_string(options.shard) + "/" + std::to_string(options.shard_count);
  json sweep = json::array();
  for (const auto& c : options.sweep) sweep.push_back(c.key());
  out["sweep"] = sweep;
  out["tasks"] = task_results;
  out["timings"] = {{"total_seconds", now_seconds() - t_start}, {"resumed_units", prog.resumed},
                    {"scored_units", prog.done - prog.resumed}};
  return out;
}

}  // namespace alspec::eval
