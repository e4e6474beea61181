// Continuous batching for many sequences on one device. Sequences (Engines built with
// EngineOptions::scheduler, each with its own Session and KV cache) submit decode steps and
// prefills from their own threads; one loop thread owns the device and runs, per iteration, ONE
// pass over the weights (BatchDecoder / BatchForward: the weights are read once per layer for the
// whole pass) with a decode step of every sequence waiting for one and at most `prefill_chunk`
// prompt tokens of the waiting prefills, oldest first (several prompts share the pass), so a long
// prompt never stalls running sequences for more than one chunk per step.
// Sequences join and leave between steps. Per sequence the results are bitwise those of an
// unbatched Engine (BatchDecoder's contract; prefill is exact and independent of its chunking).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <thread>
#include <vector>

#include "alspec/core/function_ref.h"
#include "alspec/model/session.h"
#include "alspec/spec/batch_decoder.h"
#include "alspec/spec/two_device_batch_decoder.h"

namespace alspec {

struct BatchSchedulerOptions {
  int threads = 0;         // threads of the shared device; 0 = every available core
  std::vector<int> cores;  // cores to pin them to; empty = unpinned
  int prefill_chunk = 64;  // prompt tokens per pass, over all waiting prefills (>= 1)
  // After a step, how long the next one waits for the sequences of the previous step to submit
  // their next token (they sample and stream in between); a sequence that is late joins the step
  // after. Bounded, so a slow client or a finished sequence delays the batch by at most this.
  double gather_seconds = 0.002;
  // A sequence that submits a decode step while the device is idle and no other sequence is
  // expected (a lone client) runs the step on its own thread instead of handing it to the loop
  // thread and waiting to be woken (two thread wake-ups per token). Same results either way.
  bool direct = true;
  // 1: every sequence on one device (alspec sequences run the simulate protocol there). 2: two
  // devices of `threads` threads each; alspec sequences live on both and run the two-device
  // protocol in the batch (TwoDeviceBatchDecoder), the other modes run on the first device.
  int devices = 1;
};

// Totals since start, for /metrics.
struct BatchSchedulerStats {
  int64_t steps = 0;           // batched decode steps
  int64_t rows = 0;            // sequence-steps decoded (rows / steps = mean batch size)
  int64_t prefill_tokens = 0;  // prompt tokens prefilled
  int64_t prefill_chunks = 0;  // pieces of prompts run (one per prompt per pass)
  int64_t direct_steps = 0;    // of `steps`, run on the submitting thread (BatchSchedulerOptions::direct)
  int running = 0;             // sequences with a step or prefill waiting now
};

class BatchScheduler {
 public:
  BatchScheduler(const Model& model, BatchSchedulerOptions options);
  ~BatchScheduler();  // finishes the work already submitted, then stops the loop
  BatchScheduler(const BatchScheduler&) = delete;
  BatchScheduler& operator=(const BatchScheduler&) = delete;

  const Model& model() const { return model_; }
  Device& device() { return *device_; }
  // The second device (BatchSchedulerOptions::devices == 2), else nullptr.
  Device* second_device() { return device_b_.get(); }
  int devices() const { return device_b_ ? 2 : 1; }
  int threads() const;  // per device
  BatchSchedulerStats stats() const;

  // Thread-safe; block until the loop has run the work; rethrow its errors. The session must be
  // on device() and not used by anyone else meanwhile.
  // One decode step of `session` in `spec`'s mode, batched with the others; n_vocab logits into `logits`.
  // An alspec sequence on two devices passes its session on second_device() as `peer` and its
  // protocol state as `pair` (both or neither).
  void decode(Session& session, int32_t token, const SpecConfig& spec, int64_t step, SpecStats& stats, float* logits,
              Session* peer = nullptr, PairState* pair = nullptr);
  // Session::prefill, run in chunks of at most prefill_chunk tokens in the decode passes (on both
  // devices for a sequence with a `peer`, which gets no logits). Validated (room, token ids)
  // before anything runs.
  void prefill(Session& session, std::span<const int32_t> tokens, PrefillLogits which,
               FunctionRef<void(int64_t index, const float* logits)> on_logits, Session* peer = nullptr);
  // The session will not decode soon (its sequence ended or restarts): the next step does not wait for it.
  void leave(const Session& session);

 private:
  struct Job;
  void submit(Job& job);
  // Throws unless `peer` is nullptr or `session`'s other side (TwoDeviceBatchDecoder::check_sides).
  void check_peer(const Session& session, const Session* peer) const;
  void loop();
  // Runs one pass of `batch` (decode jobs) and `taken[k]` prompt tokens of each prefill job, with
  // `lock` (on mu_) released meanwhile; then records the outcome and wakes the submitters. The
  // caller holds the device (busy_).
  void run_pass(std::unique_lock<std::mutex>& lock, std::span<Job* const> batch, std::span<Job* const> prefill_jobs,
                std::span<const size_t> taken);

  const Model& model_;
  BatchSchedulerOptions options_;
  std::unique_ptr<Device> device_;
  std::unique_ptr<Device> device_b_;  // devices == 2
  BatchDecoder decoder_;
  std::unique_ptr<BatchDecoder> decoder_b_;             // the peers' prompt chunks on device_b_
  std::unique_ptr<TwoDeviceBatchDecoder> pair_decoder_;  // decode passes with two devices
  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // the loop waits for work
  std::condition_variable done_cv_;  // submitters wait for their job
  std::vector<Job*> decodes_;        // waiting for the next step
  std::deque<Job*> prefills_;        // oldest first
  std::set<const Session*> expected_;  // in the last step, next token not yet submitted
  BatchSchedulerStats stats_;
  bool stopping_ = false;
  bool busy_ = false;  // the device runs a pass (on the loop thread or a submitter's)
  std::vector<BatchRow> rows_;
  std::thread thread_;
};

}  // namespace alspec
