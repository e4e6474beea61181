// `alspec eval`: every task item scored in exact mode (once) and in every other sweep point, with
// the quality metrics, speculation statistics and distance to exact; resumable via items.jsonl.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "alspec/eval/run_config.h"
#include "alspec/eval/task.h"
#include "alspec/model/model.h"
#include "alspec/spec/engine.h"

namespace alspec::eval {

struct EvalOptions {
  EngineOptions engine;             // threads, ctx_size, kv_type (spec is set per sweep point)
  std::vector<RunConfig> sweep;     // from expand_sweep; must start with exact
  int64_t limit = 0;                // > 0: first N items per task
  // Sharding: score only items whose index % shard_count == shard (after --limit), so that N
  // processes can split one evaluation; their items.jsonl files concatenated and rerun with
  // resume (no sharding) give the merged results without recomputation.
  int shard = 0, shard_count = 1;
  std::string out_dir;              // items.jsonl goes here (empty: nothing written)
  bool resume = false;              // reuse the records already in out_dir/items.jsonl
  nlohmann::json settings = nlohmann::json::object();  // echoed into results.json
};

struct EvalProgress {
  int64_t done = 0, total = 0;      // units: (item, sweep point) pairs
  int64_t resumed = 0;              // units taken from items.jsonl
  std::string task, config;         // what runs now
  double elapsed_seconds = 0;
};

// Runs the sweep and returns the results object (schema in docs/eval.md): per task and sweep
// point the score and metrics, hit rate overall and per layer, mean KL(exact || mode) and top-1
// agreement, timings. Records go to out_dir/items.jsonl as each item is scored.
nlohmann::json run_evaluation(const Model& model, const std::vector<TaskSpec>& tasks, const EvalOptions& options,
                              const std::function<void(const EvalProgress&)>& progress = {});

// Per-sweep-point summary of one task from its item records (exposed for tests).
nlohmann::json summarize_task(const TaskSpec& task, const std::vector<RunConfig>& sweep,
                              const std::vector<std::vector<nlohmann::json>>& records_by_config);

}  // namespace alspec::eval
