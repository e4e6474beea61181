// Internal: the decode strategies behind Engine.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "alspec/model/session.h"
#include "alspec/runtime/process_groups.h"
#include "alspec/spec/spec_config.h"
#include "alspec/spec/spec_stats.h"

namespace alspec {

class BatchScheduler;

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void prefill(std::span<const int32_t> tokens, PrefillLogits which,
                       FunctionRef<void(int64_t, const float*)> on_logits) = 0;
  virtual const float* decode(int32_t token) = 0;
  virtual int64_t position() const = 0;
  virtual void truncate(int64_t n) = 0;
  virtual void fill_random(int64_t n, uint64_t seed) = 0;
  virtual void set_spec(const SpecConfig& spec) = 0;  // checked by Engine::set_speculation
  const SpecStats& stats() const { return stats_; }
  void reset_stats(int n_layers) {
    stats_.reset(n_layers);
    profile_ = {};
  }
  const LayerProfile& profile() const { return profile_; }
  void set_profiling(bool on) { profiling_ = on; }

 protected:
  SpecStats stats_;
  LayerProfile profile_;
  bool profiling_ = false;
  int64_t step_ = 0;  // decode steps so far (for hooks and the trace)
};

// exact | static | simulate on one device; `tp` = this rank's tensor-parallel group (nullptr: one rank).
std::unique_ptr<Decoder> make_single_device_decoder(const Model& model, Device& device, const SessionOptions& so,
                                                    const SpecConfig& spec, Communicator* tp = nullptr);
// alspec across processes: this rank runs its group's side of the protocol (group 0 = device A)
// with its peer rank in the other group, and tensor parallelism inside its group.
std::unique_ptr<Decoder> make_distributed_alspec_decoder(const Model& model, Device& device, const SessionOptions& so,
                                                         const SpecConfig& spec, ProcessGroups& groups);
// Any mode, one sequence of a BatchScheduler: its steps are batched with the scheduler's other
// sequences (alspec: the two-device protocol on a two-device scheduler, else simulate; batch_decoder.h).
std::unique_ptr<Decoder> make_scheduled_decoder(BatchScheduler& scheduler, const SessionOptions& so,
                                                const SpecConfig& spec);
// alspec: the two-device priority protocol.
std::unique_ptr<Decoder> make_two_device_decoder(const Model& model, Device& a, Device& b, const SessionOptions& so,
                                                 const SpecConfig& spec);

// The speculation check over all KV heads of the tensor-parallel group: gathers every rank's per-group
// {dist2, norm2} terms (speculative_flash_decode's group_terms) and sums them in global group order
// from 0, which is bitwise the single-rank kernel's sum; accept iff dist2 <= lambda^2 * norm2.
SpecResult check_across_group(Communicator& tp, const SpecResult& local, std::span<const double> terms, float lambda);

// Applies the test hook, if any, to the kernel's decision.
bool decide(const SpecConfig& spec, int64_t step, int layer, bool kernel_accept, bool* forced);

// One device's speculation outcome for one sequence at one layer, from its (group-wide) check:
// the decision (test hook applied), the statistics and the trace event. Returns whether the
// sequence continues from O_spec (static mode always does).
bool settle_speculation(const SpecConfig& spec, int64_t step, int layer, const SpecResult& check, SpecStats& stats);

}  // namespace alspec
