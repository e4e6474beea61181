#include "alspec/spec/engine.h"

#include <algorithm>
#include <string>

#include "alspec/core/error.h"
#include "alspec/runtime/device.h"
#include "alspec/spec/batch_scheduler.h"
#include "decoder.h"

namespace alspec {

Engine::Engine(const Model& model, EngineOptions options) : model_(model), options_(std::move(options)) {
  validate(options_.spec);
  auto& o = options_;
  const bool distributed = o.groups != nullptr && o.groups->distributed();
  const bool split_groups = distributed && o.groups->n_groups == 2;  // alspec across two rank groups
  if (distributed) {
    if (split_groups && o.spec.mode != AttentionMode::kAlspec) {
      throw_invalid_argument("mpirun with 2T ranks (--tp " + std::to_string(o.groups->tp) +
                             ", " + std::to_string(o.groups->world_size) + " ranks) runs --attention alspec only; use " +
                             std::to_string(o.groups->tp) + " ranks for " + attention_mode_name(o.spec.mode));
    }
    if (!split_groups && o.spec.mode == AttentionMode::kAlspec) {
      throw_invalid_argument("--attention alspec under mpirun needs 2T ranks (two speculation groups of --tp " +
                             std::to_string(o.groups->tp) + " ranks), got " + std::to_string(o.groups->world_size));
    }
    // Every rank runs one device (the second alspec "device" is the other group of ranks).
    o.devices = 1;
    if (o.device_cores.size() > 1) o.device_cores.resize(1);
  }
  if (model.shard().count != (o.groups ? o.groups->tp : 1)) {
    throw_invalid_argument("the model is split " + std::to_string(model.shard().count) + " ways but the job has " +
                           std::to_string(o.groups ? o.groups->tp : 1) + " ranks per group");
  }
  if (o.scheduler != nullptr) {
    if (distributed) throw_invalid_argument("continuous batching runs in one process (not under mpirun)");
    // The scheduler's one device runs every mode, alspec as simulate.
    o.devices = 1;
    o.device_cores.clear();
    o.threads = o.scheduler->threads();
  }
  const bool two = o.spec.mode == AttentionMode::kAlspec && !split_groups && o.scheduler == nullptr;
  if (o.devices == 0) o.devices = two ? 2 : 1;
  if (two && o.devices != 2) throw_invalid_argument("--attention alspec runs on exactly 2 devices (--devices 2)");
  if (!two && o.devices != 1) {
    throw_invalid_argument(std::string("--devices ") + std::to_string(o.devices) + " needs --attention alspec");
  }
  if (!o.device_cores.empty() && static_cast<int>(o.device_cores.size()) != o.devices) {
    throw_invalid_argument("--device-cores lists " + std::to_string(o.device_cores.size()) + " core sets for " +
                           std::to_string(o.devices) + " devices");
  }
  const auto cores = available_cores();
  const int n_cores = std::max<int>(1, static_cast<int>(cores.size()));
  if (o.threads < 0) throw_invalid_argument("--threads must be >= 0");
  if (o.threads == 0) {
    o.threads = o.device_cores.empty() ? default_threads_per_device(n_cores, o.devices) : static_cast<int>(o.device_cores[0].size());
  }
  // Two devices without explicit cores: one disjoint slice of the available cores each.
  if (two && o.device_cores.empty() && n_cores >= 2 * o.threads) {
    for (int d = 0; d < 2; ++d) {
      o.device_cores.emplace_back(cores.begin() + d * o.threads, cores.begin() + (d + 1) * o.threads);
    }
  }
  const auto& c = model.config();
  if (o.ctx_size < 0) throw_invalid_argument("--ctx-size must be >= 0");
  if (o.ctx_size == 0) o.ctx_size = default_context_size(c);
  if (o.ctx_size > c.context_length) {
    throw_invalid_argument("--ctx-size " + std::to_string(o.ctx_size) + " exceeds the model's context length " +
                           std::to_string(c.context_length));
  }
  if (o.spec.spec_chunk == 0) o.spec.spec_chunk = default_spec_chunk(o.ctx_size, o.predictor);
  for (int d = 0; d < (o.scheduler != nullptr ? 0 : o.devices); ++d) {
    DeviceOptions dopt;
    dopt.name = "cpu" + std::to_string(d);
    dopt.threads = o.threads;
    if (!o.device_cores.empty()) dopt.cores = o.device_cores[static_cast<size_t>(d)];
    devices_.push_back(std::make_unique<Device>(dopt));
  }
  SessionOptions so;
  so.ctx_size = o.ctx_size;
  so.kv_type = o.kv_type;
  so.spec_chunk = o.spec.spec_chunk;
  so.predictor = o.predictor;
  so.layer_spec_chunk = o.layer_spec_chunk;
  // One process: each session has its own single-rank group (engines may run on several threads).
  Communicator* tp = distributed ? o.groups->tp_comm.get() : nullptr;
  if (o.scheduler != nullptr) {
    if (&o.scheduler->model() != &model) throw_invalid_argument("the batch scheduler runs another model");
    decoder_ = make_scheduled_decoder(*o.scheduler, so, o.spec);
  } else if (split_groups) {
    decoder_ = make_distributed_alspec_decoder(model, *devices_[0], so, o.spec, *o.groups);
  } else if (two) {
    if (tp != nullptr && tp->size() > 1) throw_invalid_argument("--attention alspec with --tp > 1 needs 2T ranks");
    decoder_ = make_two_device_decoder(model, *devices_[0], *devices_[1], so, o.spec);
  } else {
    decoder_ = make_single_device_decoder(model, *devices_[0], so, o.spec, tp);
  }
  decoder_->set_profiling(o.profile);
  mirror_spec(EngineCall::Op::kCreate, o.spec);
}

Engine::~Engine() {
  if (!options_.mirror) return;
  try {
    options_.mirror(EngineCall{.op = EngineCall::Op::kDestroy});
  } catch (...) {  // a destructor must not throw; the driver's job stops on transport errors anyway
  }
}

void Engine::mirror_spec(EngineCall::Op op, const SpecConfig& spec) {
  if (!options_.mirror) return;
  EngineCall c{.op = op};
  c.mode = spec.mode;
  c.lambda = spec.lambda;
  c.spec_chunk = spec.spec_chunk;
  options_.mirror(c);
}

int default_device_count(AttentionMode mode) { return mode == AttentionMode::kAlspec ? 2 : 1; }
int default_threads_per_device(int cores, int devices) { return std::max(1, cores / std::max(1, devices)); }

int Engine::n_devices() const {
  if (batched()) return options_.scheduler->devices() == 2 && mode() == AttentionMode::kAlspec ? 2 : 1;
  return static_cast<int>(devices_.size());
}
int64_t Engine::position() const { return decoder_->position(); }
void Engine::reset() { truncate(0); }
void Engine::truncate(int64_t n) {
  if (options_.mirror) options_.mirror(EngineCall{.op = EngineCall::Op::kTruncate, .n = n});
  decoder_->truncate(n);
  if (static_cast<int64_t>(prefilled_.size()) > n) prefilled_.resize(static_cast<size_t>(n));
}

int64_t Engine::reuse_prefix(std::span<const int32_t> tokens, int64_t max_keep) {
  const size_t limit = std::min({prefilled_.size(), tokens.size(), static_cast<size_t>(std::max<int64_t>(0, max_keep))});
  size_t keep = 0;
  while (keep < limit && prefilled_[keep] == tokens[keep]) ++keep;
  truncate(static_cast<int64_t>(keep));
  return static_cast<int64_t>(keep);
}

namespace {
int resolved_chunk(const SpecConfig& spec, int64_t ctx_size, SpecPredictor predictor) {
  return spec.spec_chunk == 0 ? default_spec_chunk(ctx_size, predictor) : spec.spec_chunk;
}
bool two_devices(AttentionMode m) { return m == AttentionMode::kAlspec; }
}  // namespace

// Whether switching between `from` and `to` keeps the engine's devices: on its own devices or on
// a two-device scheduler, alspec sequences live on two devices and the others on one.
bool Engine::keeps_devices(AttentionMode from, AttentionMode to) const {
  if (batched() && options_.scheduler->devices() == 1) return true;
  return two_devices(from) == two_devices(to);
}

bool Engine::accepts_speculation(const SpecConfig& spec) const {
  return resolved_chunk(spec, options_.ctx_size, options_.predictor) == options_.spec.spec_chunk &&
         keeps_devices(options_.spec.mode, spec.mode);
}

void Engine::set_speculation(const SpecConfig& spec) {
  validate(spec);
  SpecConfig s = spec;
  s.spec_chunk = resolved_chunk(spec, options_.ctx_size, options_.predictor);
  if (s.spec_chunk != options_.spec.spec_chunk) {
    throw_invalid_argument("set_speculation: S = " + std::to_string(s.spec_chunk) + " differs from this engine's S = " +
                           std::to_string(options_.spec.spec_chunk) + " (S fixes the attention partition plan)");
  }
  if (!keeps_devices(options_.spec.mode, s.mode)) {
    throw_invalid_argument(std::string("set_speculation: cannot switch between ") + attention_mode_name(options_.spec.mode) +
                           " and " + attention_mode_name(s.mode) + " (alspec runs on two devices)");
  }
  mirror_spec(EngineCall::Op::kSetSpeculation, s);
  decoder_->set_spec(s);
  options_.spec = std::move(s);
}

void Engine::prefill(std::span<const int32_t> tokens, PrefillLogits which,
                     FunctionRef<void(int64_t, const float*)> on_logits) {
  const bool extends = static_cast<int64_t>(prefilled_.size()) == position();
  if (options_.mirror) {
    options_.mirror(EngineCall{.op = EngineCall::Op::kPrefill, .n = static_cast<int64_t>(which), .tokens = tokens});
  }
  decoder_->prefill(tokens, which, on_logits);
  if (extends) prefilled_.insert(prefilled_.end(), tokens.begin(), tokens.end());
}

const float* Engine::decode(int32_t token) {
  if (token < 0 || token >= model_.config().n_vocab) {
    throw_invalid_argument("token id " + std::to_string(token) + " is outside the vocabulary");
  }
  if (options_.mirror) options_.mirror(EngineCall{.op = EngineCall::Op::kDecode, .token = token});
  return decoder_->decode(token);
}

const SpecStats& Engine::stats() const { return decoder_->stats(); }
const LayerProfile& Engine::profile() const { return decoder_->profile(); }
void Engine::fill_random(int64_t n, uint64_t seed) {
  if (options_.mirror) options_.mirror(EngineCall{.op = EngineCall::Op::kFillRandom, .n = n, .seed = seed});
  prefilled_.clear();
  decoder_->fill_random(n, seed);
}
void Engine::reset_stats() {
  if (options_.mirror) options_.mirror(EngineCall{.op = EngineCall::Op::kResetStats});
  decoder_->reset_stats(model_.config().n_layers);
}

}  // namespace alspec
