// End to end on stories260K: one tiny task of each type through exact, static and simulate
// (lambda 0.1 and 1e9, S = 16), then the consistency the numbers must have, and resume.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "alspec/core/error.h"
#include "alspec/eval/evaluator.h"
#include "alspec/eval/report.h"
#include "alspec/spec/generate.h"
#include "alspec/tokenizer/tokenizer.h"

namespace alspec::eval {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

const std::string kTasks = std::string(ALSPEC_SOURCE_DIR) + "/tests/eval/tasks/";

class EvalSweep : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = Model::load(std::string(ALSPEC_SOURCE_DIR) + "/assets/models/stories260K.gguf").release();
    for (const char* f : {"tiny_generate.json", "tiny_choice.json", "tiny_rolling.json", "tiny_passkey.json"}) {
      tasks_.push_back(load_task(kTasks + f));
    }
    dir_ = (fs::temp_directory_path() / ("alspec-eval-sweep-" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    options_.engine.threads = 1;  // fast and immune to oversubscribed test machines
    options_.engine.kv_type = DType::F32;
    options_.sweep = expand_sweep({AttentionMode::kExact, AttentionMode::kStatic, AttentionMode::kSimulate}, {0.1f, 1e9f}, {16});
    // A per-layer S point (spec budgets): its own engine, checked against a fresh one below.
    add_budget_points(options_.sweep, {AttentionMode::kSimulate}, {0.1f},
                      {{"b5", SpecPredictor::kSinkWindow, 16, {8, 32, 16, 4, 16}}});
    options_.out_dir = dir_;
    results_ = new json(run_evaluation(*model_, tasks_, options_));
  }
  static void TearDownTestSuite() {
    delete results_;
    delete model_;
    fs::remove_all(dir_);
  }
  static const json& result(const std::string& task, const std::string& key) {
    for (const auto& t : (*results_)["tasks"]) {
      if (t["name"] != task) continue;
      for (const auto& r : t["results"]) {
        if (r["config"]["key"] == key) return r;
      }
    }
    throw std::runtime_error("no result " + task + " " + key);
  }
  static std::vector<json> records(const std::string& task, const std::string& key) {
    std::vector<json> out;
    std::ifstream in(fs::path(dir_) / "items.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      const json j = json::parse(line);
      if (j.value("task", "") == task && j.value("config", "") == key) out.push_back(j["record"]);
    }
    return out;
  }

  static inline Model* model_ = nullptr;
  static inline std::vector<TaskSpec> tasks_;
  static inline std::string dir_;
  static inline EvalOptions options_;
  static inline json* results_ = nullptr;
};

const std::vector<std::string> kTaskNames = {"tiny_generate", "tiny_choice", "tiny_rolling", "tiny_passkey"};

TEST_F(EvalSweep, ExactHasNoChecksAndIsAtZeroDistance) {
  for (const auto& t : kTaskNames) {
    const json& r = result(t, "exact");
    EXPECT_EQ(r["checks"], 0) << t;
    EXPECT_TRUE(r["hit_rate"].is_null()) << t;
    ASSERT_GT(r["distance_positions"].get<int64_t>(), 0) << t;
    EXPECT_EQ(r["kl_mean"].get<double>(), 0.0) << t;  // generation: its own logits vs the teacher-forced pass
    EXPECT_EQ(r["top1"].get<double>(), 1.0) << t;
  }
}

TEST_F(EvalSweep, ScoresAreInRangeAndSpeculationIsChecked) {
  for (const auto& t : kTaskNames) {
    for (const std::string key : {"exact", "static/S16", "simulate/l0.1/S16", "simulate/l1e+09/S16"}) {
      const json& r = result(t, key);
      if (r["metric"] == "perplexity") {
        EXPECT_GT(r["score"].get<double>(), 1.0) << t << " " << key;
        EXPECT_GT(r["metrics"]["bits_per_byte"].get<double>(), 0.0);
      } else {
        EXPECT_GE(r["score"].get<double>(), 0.0) << t << " " << key;
        EXPECT_LE(r["score"].get<double>(), 1.0) << t << " " << key;
      }
      if (key != "exact") {
        EXPECT_GE(r["kl_mean"].get<double>(), -1e-9) << t << " " << key;
        EXPECT_GE(r["top1"].get<double>(), 0.0);
        EXPECT_LE(r["top1"].get<double>(), 1.0);
      }
    }
    const json& sim = result(t, "simulate/l0.1/S16");
    ASSERT_GT(sim["checks"].get<int64_t>(), 0) << t << ": contexts are longer than 2S = 32";
    EXPECT_GE(sim["hit_rate"].get<double>(), 0.0);
    EXPECT_LE(sim["hit_rate"].get<double>(), 1.0);
    int64_t layer_checks = 0;
    for (const auto& l : sim["per_layer"]) layer_checks += l["checks"].get<int64_t>();
    EXPECT_EQ(layer_checks, sim["checks"].get<int64_t>());
    const json& huge = result(t, "simulate/l1e+09/S16");
    EXPECT_EQ(huge["hits"], huge["checks"]) << t << ": lambda -> infinity accepts every check";
  }
}

// The sweep shares one engine and its prompt cache between sweep points and items; every record
// must still be what a fresh engine gives for that item alone.
TEST_F(EvalSweep, SharedEnginesGiveFreshEngineResults) {
  for (const char* task_name : {"tiny_generate", "tiny_passkey"}) {
    const TaskSpec* task = nullptr;
    for (const auto& t : tasks_) {
      if (t.name == task_name) task = &t;
    }
    ASSERT_NE(task, nullptr);
    const auto items = load_items(*task, model_->tokenizer(), 0);
    for (const RunConfig& cfg : options_.sweep) {
      const auto recs = records(task_name, cfg.key());
      ASSERT_EQ(recs.size(), items.size());
      EngineOptions eo = options_.engine;
      eo.spec.mode = cfg.mode;
      eo.spec.lambda = cfg.lambda;
      eo.spec.spec_chunk = cfg.spec_chunk;
      eo.predictor = cfg.predictor;
      eo.layer_spec_chunk = cfg.layer_spec_chunk;
      Engine fresh(*model_, eo);
      for (size_t i = 0; i < items.size(); ++i) {
        fresh.reset();
        GenerateRequest req;
        req.prompt = model_->tokenizer().encode(items[i].prompt, true);
        req.n_predict = task->max_tokens;
        req.stop = task->stop;
        const GenerateResult g = generate(fresh, req);
        EXPECT_EQ(recs[i]["output"], g.text) << task_name << " " << cfg.key() << " item " << i;
        int64_t hits = 0;
        for (const auto& h : recs[i]["stats"]["hits"]) hits += h.get<int64_t>();
        EXPECT_EQ(hits, g.stats.hits()) << task_name << " " << cfg.key() << " item " << i;
      }
    }
  }
}

// results.json records a data file below the working directory relative to it (it gets committed).
TEST_F(EvalSweep, DataPathRecordedRelativeToWorkingDirectory) {
  const fs::path before = fs::current_path();
  EvalOptions o = options_;
  o.sweep = expand_sweep({AttentionMode::kExact}, {0.1f}, {16});
  o.out_dir = dir_ + "-paths";
  fs::remove_all(o.out_dir);
  fs::current_path(ALSPEC_SOURCE_DIR);
  const json inside = run_evaluation(*model_, {tasks_[0]}, o);  // tiny_generate
  // A fresh folder is never an ancestor of the source tree (the temp folder itself can be, when
  // the checkout lives under it).
  const fs::path elsewhere = fs::temp_directory_path() / ("alspec-eval-outside-" + std::to_string(::getpid()));
  fs::create_directories(elsewhere);
  fs::current_path(elsewhere);
  const json outside = run_evaluation(*model_, {tasks_[0]}, o);
  fs::current_path(before);
  fs::remove_all(elsewhere);
  fs::remove_all(o.out_dir);
  EXPECT_EQ(inside["tasks"][0]["data"], "tests/eval/tasks/tiny_generate.jsonl");
  EXPECT_EQ(outside["tasks"][0]["data"], tasks_[0].data);  // not below: absolute, as resolved
  EXPECT_TRUE(fs::path(tasks_[0].data).is_absolute());
}

// Two shards, their items.jsonl concatenated and resumed, give the unsharded results.
TEST_F(EvalSweep, ShardsMergeIntoTheSameResults) {
  std::vector<TaskSpec> one = {tasks_[1]};  // tiny_choice
  std::string merged_lines;
  for (int k = 0; k < 2; ++k) {
    EvalOptions o = options_;
    o.shard = k;
    o.shard_count = 2;
    o.out_dir = dir_ + "-shard" + std::to_string(k);
    fs::remove_all(o.out_dir);
    const json r = run_evaluation(*model_, one, o);
    EXPECT_LT(r["tasks"][0]["n_items"].get<int64_t>(), result("tiny_choice", "exact")["n_items"].get<int64_t>());
    std::ifstream in(fs::path(o.out_dir) / "items.jsonl");
    std::string line;
    bool header = true;
    while (std::getline(in, line)) {
      if (!header || k == 0) merged_lines += line + "\n";
      header = false;
    }
    fs::remove_all(o.out_dir);
  }
  EvalOptions o = options_;
  o.out_dir = dir_ + "-merged";
  o.resume = true;
  fs::remove_all(o.out_dir);
  fs::create_directories(o.out_dir);
  std::ofstream(fs::path(o.out_dir) / "items.jsonl") << merged_lines;
  const json merged = run_evaluation(*model_, one, o);
  fs::remove_all(o.out_dir);
  EXPECT_EQ(merged["timings"]["scored_units"], 0);
  for (const auto& r : merged["tasks"][0]["results"]) {
    const json& full = result("tiny_choice", r["config"]["key"]);
    for (const char* f : {"n_items", "score", "checks", "hits", "kl_mean", "top1"}) {
      EXPECT_EQ(r[f], full[f]) << r["config"]["key"] << " " << f;
    }
  }
  o.shard = 2;
  o.shard_count = 2;
  EXPECT_THROW(run_evaluation(*model_, one, o), Error);
}

// lambda -> infinity accepts every approximation, which is exactly what static does.
TEST_F(EvalSweep, SimulateWithHugeLambdaEqualsStatic) {
  for (const auto& t : kTaskNames) {
    EXPECT_EQ(result(t, "static/S16")["score"], result(t, "simulate/l1e+09/S16")["score"]) << t;
    EXPECT_NEAR(result(t, "static/S16")["kl_mean"].get<double>(), result(t, "simulate/l1e+09/S16")["kl_mean"].get<double>(),
                1e-9) << t;
  }
  const auto st = records("tiny_choice", "static/S16"), sim = records("tiny_choice", "simulate/l1e+09/S16");
  ASSERT_EQ(st.size(), sim.size());
  for (size_t i = 0; i < st.size(); ++i) {
    for (size_t k = 0; k < st[i]["logliks"].size(); ++k) {
      EXPECT_NEAR(st[i]["logliks"][k].get<double>(), sim[i]["logliks"][k].get<double>(), 1e-9) << i << " " << k;
    }
  }
  const auto sr = records("tiny_rolling", "static/S16"), simr = records("tiny_rolling", "simulate/l1e+09/S16");
  for (size_t i = 0; i < sr.size(); ++i) EXPECT_NEAR(sr[i]["ll_sum"].get<double>(), simr[i]["ll_sum"].get<double>(), 1e-9);
  const auto sg = records("tiny_generate", "static/S16"), simg = records("tiny_generate", "simulate/l1e+09/S16");
  for (size_t i = 0; i < sg.size(); ++i) EXPECT_EQ(sg[i]["output"], simg[i]["output"]);
  // Static attention is lossy on this model: it must differ from exact somewhere.
  EXPECT_GT(result("tiny_rolling", "static/S16")["kl_mean"].get<double>(), 0.0);
}

TEST_F(EvalSweep, RollingPerplexityUsesEveryTokenOnce) {
  const auto ex = records("tiny_rolling", "exact");
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_GT(ex[0]["windows"].size(), 1u) << "the first story spans several 128-token windows";
  double ll = 0, n = 0;
  for (const auto& r : ex) {
    ll += r["ll_sum"].get<double>();
    n += static_cast<double>(r["tokens"].size() - 1);
  }
  EXPECT_NEAR(result("tiny_rolling", "exact")["score"].get<double>(), std::exp(-ll / n), 1e-9);
}

TEST_F(EvalSweep, PasskeyGridCoversLengthsAndDepths) {
  const json& grid = result("tiny_passkey", "exact")["metrics"]["grid"];
  EXPECT_EQ(grid.size(), 6u);
  for (const auto& c : grid) EXPECT_EQ(c["n"], 1);
}

TEST_F(EvalSweep, ReportHasTableOneLayout) {
  const std::string md = render_report(*results_);
  EXPECT_NE(md.find("| task | exact | static S=16 | simulate λ=0.1 S=16 | simulate λ=1e+09 S=16 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| tiny_rolling (perplexity ↓) |"), std::string::npos);
  EXPECT_NE(md.find("Passkey retrieval accuracy"), std::string::npos);
}

// A run cut short keeps its complete lines; --resume scores only what is missing and ends with
// the same numbers.
TEST_F(EvalSweep, ResumeAfterInterruptionGivesTheSameResults) {
  const fs::path log = fs::path(dir_) / "items.jsonl";
  std::vector<std::string> lines;
  {
    std::ifstream in(log);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  ASSERT_GT(lines.size(), 10u);
  {
    std::ofstream out(log, std::ios::trunc);
    for (size_t i = 0; i < lines.size() / 2; ++i) out << lines[i] << "\n";
    out << lines[lines.size() / 2].substr(0, 20);  // a line cut mid-write
  }
  EvalOptions o = options_;
  o.resume = true;
  int64_t resumed = 0, total = 0;
  const json again = run_evaluation(*model_, tasks_, o, [&](const EvalProgress& p) {
    resumed = p.resumed;
    total = p.total;
  });
  EXPECT_EQ(resumed, static_cast<int64_t>(lines.size() / 2 - 1));  // minus the header line
  EXPECT_EQ(total, static_cast<int64_t>(lines.size() - 1));
  for (size_t t = 0; t < again["tasks"].size(); ++t) {
    for (size_t c = 0; c < again["tasks"][t]["results"].size(); ++c) {
      json a = again["tasks"][t]["results"][c], b = (*results_)["tasks"][t]["results"][c];
      a.erase("seconds");
      b.erase("seconds");
      EXPECT_EQ(a, b) << again["tasks"][t]["name"] << " " << a["config"]["key"];
    }
  }
  // Other settings must not silently mix with the recorded ones.
  EvalOptions other = o;
  other.engine.kv_type = DType::F16;
  EXPECT_THROW(run_evaluation(*model_, tasks_, other), Error);
}

}  // namespace
}  // namespace alspec::eval
