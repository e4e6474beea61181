// The engine front ends use: one sequence decoded with the chosen attention mode on one device
// (exact, static, simulate) or two devices (alspec). Prefill is always exact.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "alspec/core/dtype.h"
#include "alspec/core/function_ref.h"
#include "alspec/model/model.h"
#include "alspec/model/session.h"
#include "alspec/runtime/process_groups.h"
#include "alspec/spec/spec_config.h"
#include "alspec/spec/spec_stats.h"

namespace alspec {

class BatchScheduler;

// A state-changing Engine call, reported to EngineOptions::mirror so that engines on other ranks
// can replay it (serve under mpirun: rank 0 drives, the other ranks follow with the same calls).
struct EngineCall {
  enum class Op : int {
    kCreate = 0,      // spec: the engine's mode, lambda and resolved S
    kDestroy,
    kTruncate,        // n
    kSetSpeculation,  // spec
    kPrefill,         // tokens, n = PrefillLogits
    kDecode,          // token
    kResetStats,
    kFillRandom,      // n, seed
    kStop,            // not an engine call: the driver is done (sent by the front end)
  };
  Op op = Op::kStop;
  AttentionMode mode = AttentionMode::kExact;
  float lambda = 0;
  int spec_chunk = 0;
  int64_t n = 0;
  uint64_t seed = 0;
  int32_t token = 0;
  std::span<const int32_t> tokens{};
};

struct EngineOptions {
  int threads = 0;           // threads per device; 0 = available cores / number of devices
  int64_t ctx_size = 0;      // 0 = min(model context, 4096)
  DType kv_type = DType::F16;
  SpecConfig spec;
  // O_spec rows (spec_predictor.h); fixed for the engine's life like S (it fixes the partition).
  SpecPredictor predictor = SpecPredictor::kSinkWindow;
  // Per-layer S (spec budgets, spec_budget.h), fixed for the engine's life; empty = spec.spec_chunk
  // at every layer.
  std::vector<int> layer_spec_chunk = {};
  int devices = 0;           // 0 = 2 for alspec, else 1
  std::vector<std::vector<int>> device_cores;  // per device; empty = unpinned (1 device) or one core each
  bool profile = false;      // time the parts of each layer (see LayerProfile)
  // Ranks of an MPI job (nullptr or one rank: this process alone). With T ranks the model must be
  // loaded with this rank's Shard; with 2T ranks the mode must be alspec, and each rank runs one
  // side of the protocol on one device.
  ProcessGroups* groups = nullptr;
  // Called with every state-changing call (after its arguments were validated, before it runs).
  std::function<void(const EngineCall&)> mirror;
  // Continuous batching: this engine's sequence runs on the scheduler's device, its decode steps
  // batched with the scheduler's other engines (threads, devices and device_cores are then the
  // scheduler's; groups must be one process). Any mode; alspec runs the two-device protocol on a
  // scheduler with two devices, else the simulate protocol on its one device (bitwise the same
  // tokens and logits; see batch_decoder.h). nullptr = own devices.
  BatchScheduler* scheduler = nullptr;
};

// The defaults every front end resolves the same way (engine, server slots, benchmarks):
// devices of a mode when none are asked for (alspec: 2, else 1), and threads per device when
// `cores` cores are shared evenly by `devices` devices (at least one each).
int default_device_count(AttentionMode mode);
int default_threads_per_device(int cores, int devices);

class Decoder;
class Device;

class Engine {
 public:
  Engine(const Model& model, EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const Model& model() const { return model_; }
  const EngineOptions& options() const { return options_; }
  AttentionMode mode() const { return options_.spec.mode; }
  int spec_chunk() const { return options_.spec.spec_chunk; }  // resolved S
  int64_t ctx_size() const { return options_.ctx_size; }        // resolved
  int n_devices() const;
  bool batched() const { return options_.scheduler != nullptr; }  // runs on a BatchScheduler
  int threads_per_device() const { return options_.threads; }

  int64_t position() const;
  void reset();                 // forget the sequence (keeps statistics)
  void truncate(int64_t n);     // keep the first n positions
  // Prompt caching. Keeps the longest prefix of `tokens` (at most max_keep) whose KV rows came
  // from exact prefills of the same tokens since the last reset, drops everything after it and
  // returns its length. Prefill is exact and per position independent of how the tokens are
  // split into calls, so continuing from there is bitwise identical to prefilling from scratch.
  int64_t reuse_prefix(std::span<const int32_t> tokens, int64_t max_keep);
  // Switches the attention mode, lambda and hooks without touching the KV cache (e.g. to score
  // several sweep points on one prefilled prompt). S (spec_chunk, 0 = the default) must resolve
  // to this engine's S, since it fixes the attention partition plan of every mode; alspec engines
  // (two devices) only change lambda and hooks. Throws Error(kInvalidArgument) otherwise.
  void set_speculation(const SpecConfig& spec);
  // Whether set_speculation(spec) would succeed: the same resolved S and the same device count.
  bool accepts_speculation(const SpecConfig& spec) const;
  // Exact prefill; see Session::prefill.
  void prefill(std::span<const int32_t> tokens, PrefillLogits which,
               FunctionRef<void(int64_t index, const float* logits)> on_logits);
  // One decode step in the configured mode; returns n_vocab logits valid until the next call.
  const float* decode(int32_t token);

  const SpecStats& stats() const;
  const LayerProfile& profile() const;
  void reset_stats();  // statistics and profile
  // Benchmarks only: the sequence becomes n positions of seeded random K/V (see Session::fill_random).
  void fill_random(int64_t n, uint64_t seed);

 private:
  void mirror_spec(EngineCall::Op op, const SpecConfig& spec);
  bool keeps_devices(AttentionMode from, AttentionMode to) const;

  const Model& model_;
  EngineOptions options_;
  std::vector<std::unique_ptr<Device>> devices_;
  std::unique_ptr<Decoder> decoder_;
  std::vector<int32_t> prefilled_;  // tokens at positions [0, size) written by exact prefill
};

}  // namespace alspec
