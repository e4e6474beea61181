// Options shared by every front end that runs a model: model path, threads, context, KV type,
// attention mode and speculation knobs, devices.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "alspec/model/model.h"
#include "alspec/spec/engine.h"

namespace alspec::cli {

struct EngineArgs {
  std::string model;
  int threads = 0;
  int64_t ctx_size = 0;
  std::string kv_type = "f16";
  std::string attention = "exact";
  float lambda = 0.1f;
  int spec_chunk = 0;
  std::string predictor = "sink-window";
  std::string spec_budgets;  // per-layer S file (alspec/spec/spec_budget.h)
  int devices = 0;
  std::string device_cores;
  int tp = 1;         // tensor-parallel ranks per group (mpirun -np T or 2T)
  int tp_chunks = 0;  // C: reduction chunks of o_proj/down; 0 = default (mpirun: from n_head_kv; alone: 1)

  // Registers the options on `app`; `model_default` is used when --model is not given.
  void add_to(CLI::App& app, bool with_attention = true);
  // --tp, --tp-chunks (part of add_to; for front ends that register options one by one).
  void add_parallel_to(CLI::App& app);
  // Validates and converts; throws Error(kInvalidArgument) on impossible values.
  // Under mpirun: the job's process groups (load_model() creates them first).
  EngineOptions to_options() const;
  // The model for this process (this rank's shard under mpirun; see parallel.h), after the
  // cross-rank checks.
  std::unique_ptr<Model> load_model() const;
};

// --spec-budgets FILE: per-layer S and the file's predictor into `o` (after --spec-chunk and
// --predictor are set: it rejects a conflicting one).
void apply_spec_budgets(const std::string& path, EngineOptions& o);

// Parses "1,2,3" into token ids; Error(kInvalidArgument) naming `option` otherwise.
std::vector<int32_t> parse_token_ids(const std::string& s, const std::string& option);

}  // namespace alspec::cli
