// `alspec eval`: task scores, speculation hit rates and distance to exact over a sweep of attention
// modes, lambdas and S (docs/eval.md); writes results.json, report.md, items.jsonl and PNG plots.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "alspec/command.h"
#include "alspec/core/error.h"
#include "alspec/core/timer.h"
#include "alspec/eval/evaluator.h"
#include "alspec/eval/report.h"
#include "alspec/model/model.h"
#include "alspec/spec/spec_budget.h"
#include "engine_options.h"
#include "parallel.h"
#include "plot_script.h"

namespace alspec::cli {
namespace {
namespace fs = std::filesystem;

struct EvalArgs {
  EngineArgs engine;
  std::vector<std::string> tasks;
  std::vector<std::string> modes{"exact", "static", "simulate"};
  std::vector<float> lambdas{0.05f, 0.1f, 0.15f, 0.2f, 0.25f};
  std::vector<int> spec_chunks{0};
  std::vector<std::string> predictors{"sink-window"};
  std::vector<std::string> spec_budgets;  // per-layer S files: extra sweep points
  int64_t limit = 0;
  std::string shard;
  std::string out;
  bool resume = false;
  bool no_plot = false;
  bool no_progress = false;
  std::string python;
};

std::string format_duration(double s) {
  char buf[32];
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}

// One line redrawn in place: bar, counts, what runs now, elapsed and ETA (from the units scored
// in this run, so resumed units do not distort the rate).
class ProgressBar {
 public:
  void update(const eval::EvalProgress& p) {
    const double now = now_seconds();
    if (p.done < p.total && now - last_ < 0.2) return;
    last_ = now;
    const int width = 30;
    const double frac = p.total > 0 ? static_cast<double>(p.done) / static_cast<double>(p.total) : 1.0;
    const int fill = static_cast<int>(frac * width);
    std::string bar(static_cast<size_t>(fill), '=');
    if (fill < width) bar += '>' + std::string(static_cast<size_t>(width - fill - 1), ' ');
    const int64_t scored = p.done - p.resumed;
    std::string eta = "?";
    if (scored > 0) eta = format_duration(p.elapsed_seconds / static_cast<double>(scored) * static_cast<double>(p.total - p.done));
    std::fprintf(stderr, "\r[%s] %3d%% %lld/%lld %s %s | %s elapsed, ETA %s   ", bar.c_str(), static_cast<int>(100 * frac),
                 static_cast<long long>(p.done), static_cast<long long>(p.total), p.task.c_str(), p.config.c_str(),
                 format_duration(p.elapsed_seconds).c_str(), eta.c_str());
    if (p.done == p.total) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

 private:
  double last_ = 0;
};

void make_plots(const EvalArgs& a, const fs::path& results) {
  run_plot_script("alspec eval", "scripts/plot_eval.py", results, a.out, a.python);
}

int run(const EvalArgs& a) {
  EngineOptions eo = a.engine.to_options();
  std::vector<eval::TaskSpec> tasks;
  for (const auto& t : a.tasks) tasks.push_back(eval::load_task(t));
  for (size_t i = 0; i < tasks.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (tasks[i].name == tasks[j].name) throw_invalid_argument(tasks[i].file + ": task name '" + tasks[i].name + "' is used twice");
    }
  }
  std::vector<AttentionMode> modes;
  for (const auto& m : a.modes) modes.push_back(parse_attention_mode(m));
  auto model = a.engine.load_model();
  const int64_t ctx = eo.ctx_size > 0 ? eo.ctx_size : std::min<int64_t>(model->config().context_length, 4096);
  std::vector<int> chunks;
  for (int s : a.spec_chunks) chunks.push_back(s == 0 ? default_spec_chunk(ctx) : s);
  eval::EvalOptions o;
  o.engine = eo;
  std::vector<SpecPredictor> predictors;
  for (const auto& p : a.predictors) predictors.push_back(parse_spec_predictor(p));
  o.sweep = eval::expand_sweep(modes, a.lambdas, chunks, predictors);
  std::vector<eval::BudgetsPoint> budgets;
  for (const auto& f : a.spec_budgets) {
    const SpecBudgets b = load_spec_budgets(f);
    budgets.push_back({fs::path(f).stem().string(), b.predictor, b.mean_spec_chunk, b.spec_chunk});
  }
  eval::add_budget_points(o.sweep, modes, a.lambdas, budgets);
  o.limit = a.limit;
  if (!a.shard.empty()) {
    const auto slash = a.shard.find('/');
    try {
      if (slash == std::string::npos) throw std::invalid_argument("no slash");
      size_t used = 0;
      o.shard = std::stoi(a.shard.substr(0, slash), &used);
      if (used != slash) throw std::invalid_argument("trailing");
      o.shard_count = std::stoi(a.shard.substr(slash + 1), &used);
      if (used != a.shard.size() - slash - 1) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      throw_invalid_argument("--shard " + a.shard + ": expected K/N, e.g. 0/2");
    }
  }
  // Under mpirun every rank scores every item (SPMD); only rank 0 writes.
  const bool primary = primary_rank();
  if (eo.groups != nullptr && eo.groups->distributed() && a.resume) {
    throw_invalid_argument("--resume is not supported under mpirun with several ranks (the ranks would skip different items)");
  }
  o.out_dir = primary ? a.out : "";
  o.resume = a.resume;
  o.settings = {{"alspec_version", ALSPEC_VERSION}, {"modes", a.modes}, {"lambdas", a.lambdas}, {"spec_chunks", chunks},
                {"predictors", a.predictors}, {"spec_budgets", a.spec_budgets},
                {"task_files", a.tasks}};
  ProgressBar bar;
  const bool show = !a.no_progress && primary;
  const nlohmann::json results =
      eval::run_evaluation(*model, tasks, o, [&](const eval::EvalProgress& p) { if (show) bar.update(p); });
  if (!primary) return 0;
  const fs::path out(a.out);
  const fs::path results_path = out / "results.json";
  {
    std::ofstream f(results_path);
    f << results.dump(2) << "\n";
    if (!f) throw Error(ErrorKind::kIo, results_path.string() + ": cannot write");
  }
  {
    std::ofstream f(out / "report.md");
    f << eval::render_report(results);
    if (!f) throw Error(ErrorKind::kIo, (out / "report.md").string() + ": cannot write");
  }
  if (!a.no_plot) make_plots(a, results_path);
  std::fprintf(stderr, "alspec eval: wrote %s, %s\n", results_path.c_str(), (out / "report.md").c_str());
  return 0;
}

const CommandRegistrar kEval({"eval", "Task scores and speculation hit rates over modes, lambdas and S", [](CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  a->engine.add_to(app, false);
  app.add_option("--task", a->tasks, "Task file(s), comma-separated (format: docs/eval.md)")->required()->delimiter(',');
  app.add_option("--modes", a->modes, "Attention modes: exact,static,simulate,alspec (exact always runs)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--lambdas", a->lambdas, "Speculation thresholds for simulate/alspec")->delimiter(',')->capture_default_str();
  app.add_option("--spec-chunk", a->spec_chunks, "S values (0 = auto from the context size)")->delimiter(',')->capture_default_str();
  app.add_option("--spec-budgets", a->spec_budgets,
                 "Per-layer S files (predictor-sweep --budgets-out): each adds sweep points for the speculative "
                 "modes at every λ, named by the file's stem")
      ->delimiter(',');
  app.add_option("--predictors", a->predictors,
                 "O_spec predictors to sweep: sink-window, quest (quest needs S >= 64; docs/attention.md)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--limit", a->limit, "Score only the first N items of each task (0 = all)");
  app.add_option("-o,--out", a->out, "Output directory")->required();
  app.add_option("--shard", a->shard,
                 "K/N: score only items with index % N == K (split a run over N processes; merge by concatenating "
                 "their items.jsonl and rerunning with --resume)");
  app.add_flag("--resume", a->resume, "Keep the items already scored in OUT/items.jsonl and score the rest");
  app.add_flag("--no-plot", a->no_plot, "Do not run scripts/plot_eval.py");
  app.add_flag("--no-progress", a->no_progress, "No progress bar on stderr");
  app.add_option("--python", a->python, "Python with matplotlib for the plots (default: .venv next to the sources, then python3)");
  return std::function<int()>([a] { return run(*a); });
}});

}  // namespace
}  // namespace alspec::cli
