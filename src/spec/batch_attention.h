// Internal: the attention of a batched pass's decode rows, each row in its own mode (exact,
// static, simulate; alspec rows on one device run the simulate protocol) with its own check and
// decision, exactly as SingleDeviceDecoder makes them. One exact and one speculative kernel call
// per distinct (S, predictor); each row's result is its own whatever the rest of the call.
#pragma once

#include <span>
#include <vector>

#include "alspec/kernels/attention.h"
#include "alspec/spec/batch_decoder.h"

namespace alspec {

class BatchAttention {
 public:
  // Fills attn row i (q_dim floats) for rows[i], whose query for `layer` is ready.
  void run(std::span<const BatchRow> rows, int layer, float* attn);

 private:
  std::vector<float> approx_;  // O_spec rows
  std::vector<DecodeQuery> exact_queries_;
  std::vector<SpecDecodeQuery> spec_queries_;
  std::vector<size_t> spec_rows_;  // batch row of each speculative query
  std::vector<SpecResult> results_;
  std::vector<bool> done_;
};

}  // namespace alspec
