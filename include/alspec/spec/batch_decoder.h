// A decode step of several sequences with per-sequence speculation (continuous batching).
//
// Each row is one sequence (its own Session, attention mode, lambda, hooks and statistics). The
// weights are read once per layer for the batch (BatchForward); attention runs per sequence, and
// in the speculative modes each sequence has its own check over all its heads and its own
// decision, exactly as SingleDeviceDecoder makes them. Hence every sequence's logits, decisions
// and statistics equal those of its unbatched decode in the same mode bit for bit.
//
// alspec rows run the simulate protocol on this one device: the two-device protocol's output is
// bitwise simulate's (tests/spec/alspec_runtime_test.cpp), so the sequence's tokens and logits
// are those alspec would give; only the second device's overlap is not used (docs/server.md).
// TwoDeviceBatchDecoder (two_device_batch_decoder.h) runs them on two devices.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "alspec/kernels/attention.h"
#include "alspec/model/batch_forward.h"
#include "alspec/spec/spec_config.h"
#include "alspec/spec/spec_stats.h"

namespace alspec {

// The two-device protocol's state of one sequence between its steps: each side's priority word
// (spec §5; device A starts as the sender).
struct PairState {
  int priority[2] = {1, 0};
};

struct BatchRow {
  Session* session = nullptr;
  int32_t token = 0;
  const SpecConfig* spec = nullptr;  // mode and lambda; S is the session's spec_chunk
  int64_t step = 0;                  // the sequence's own decode step (hooks and trace)
  SpecStats* stats = nullptr;        // receives the sequence's checks (sized for the model's layers)
  // TwoDeviceBatchDecoder, alspec rows only: the sequence on the second device (same options and
  // position as `session`, identical cache) and its protocol state. Ignored by BatchDecoder.
  Session* peer = nullptr;
  PairState* pair = nullptr;
};

class BatchAttention;

class BatchDecoder {
 public:
  BatchDecoder(const Model& model, Device& device);
  ~BatchDecoder();
  // Advances every row by its token; row i's logits at i * n_vocab, valid until the next call.
  // `prefills`: prompt chunks of other sequences run in the same pass (BatchForward::step).
  const float* step(std::span<const BatchRow> rows, std::span<const PrefillChunk> prefills = {});

 private:
  BatchForward forward_;
  std::unique_ptr<BatchAttention> attention_;
  std::vector<Session*> sessions_;
  std::vector<int32_t> tokens_;
};

}  // namespace alspec
