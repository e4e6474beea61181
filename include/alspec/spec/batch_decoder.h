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
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "alspec/kernels/attention.h"
#include "alspec/model/batch_forward.h"
#include "alspec/spec/spec_config.h"
#include "alspec/spec/spec_stats.h"

namespace alspec {

struct BatchRow {
  Session* session = nullptr;
  int32_t token = 0;
  const SpecConfig* spec = nullptr;  // mode and lambda; S is the session's spec_chunk
  int64_t step = 0;                  // the sequence's own decode step (hooks and trace)
  SpecStats* stats = nullptr;        // receives the sequence's checks (sized for the model's layers)
};

class BatchDecoder {
 public:
  BatchDecoder(const Model& model, Device& device);
  // Advances every row by its token; row i's logits at i * n_vocab, valid until the next call.
  // `prefills`: prompt chunks of other sequences run in the same pass (BatchForward::step).
  const float* step(std::span<const BatchRow> rows, std::span<const PrefillChunk> prefills = {});

 private:
  void attention(std::span<const BatchRow> rows, int layer, float* attn);

  const Model& model_;
  BatchForward forward_;
  std::vector<Session*> sessions_;
  std::vector<int32_t> tokens_;
  std::vector<float> approx_;         // O_spec rows
  std::vector<DecodeQuery> exact_queries_;
  std::vector<SpecDecodeQuery> spec_queries_;
  std::vector<size_t> spec_rows_;     // batch row of each speculative query
  std::vector<SpecResult> results_;
  std::vector<bool> done_;
};

}  // namespace alspec
