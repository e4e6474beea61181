// One decode step of several sequences at once (continuous batching). Each sequence is its own
// Session (KV cache, position) on the same Model and Device; per layer the weights are read once
// for the whole batch: ONE matmul over the n rows for Q/K/V, o_proj, gate/up/down and the LM head,
// while norms, RoPE, the cache writes and attention stay per sequence.
//
// Bitwise contract: row i of matmul equals matvec on x[i] (kernels/matmul.h), and every per-row
// operation is the one Session::decode runs, so each sequence's logits equal those of its own
// unbatched decode bit for bit, whatever the batch around it and the thread count.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "alspec/core/function_ref.h"
#include "alspec/model/session.h"

namespace alspec {

class BatchForward {
 public:
  // Throws Error(kInvalidArgument) for a tensor-parallel shard (batched decode runs unsharded).
  BatchForward(const Model& model, Device& device);

  // Attention of `layer` for the batch: fills attn row i (q_dim floats) for sessions[i], whose
  // query for this layer is ready (Session::attention_query).
  using AttentionFn = FunctionRef<void(int layer, float* attn)>;

  // Advances sessions[i] by tokens[i] (every session on this object's model and device, each at
  // most once). Returns the logits, row i at i * n_vocab, valid until the next call. Throws
  // Error(kInvalidArgument) before touching any session when one has no room for a token.
  const float* step(std::span<Session* const> sessions, std::span<const int32_t> tokens, AttentionFn attention);

 private:
  const Model& model_;
  Device& device_;
  // Row-major scratch of the batch: normed residuals, Q/K/V, attention outputs, projections,
  // gate/up, logits.
  std::vector<float> xn_, q_, k_, v_, attn_, proj_, gate_, up_, logits_;
};

}  // namespace alspec
