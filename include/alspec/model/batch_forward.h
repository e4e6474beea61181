// One decode step of several sequences at once (continuous batching), optionally with prompt
// chunks of other sequences in the same pass (chunked prefill). Each sequence is its own Session
// (KV cache, position) on the same Model and Device; per layer the weights are read once for the
// whole pass: ONE matmul over all rows (decode tokens and prompt tokens) for Q/K/V, o_proj,
// gate/up/down and ONE for the LM head rows, while norms, RoPE, the cache writes and attention
// stay per sequence (spread over the device's threads by sequence).
//
// Bitwise contract: row i of matmul equals matvec on x[i] (kernels/matmul.h), and every per-row
// operation is the one Session::decode / Session::prefill runs, so each sequence's logits equal
// those of its own unbatched decode or prefill bit for bit, whatever the batch around it and the
// thread count.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "alspec/core/function_ref.h"
#include "alspec/model/session.h"

namespace alspec {

// Prompt tokens of one sequence run in a pass: bitwise what Session::prefill gives for them
// (exact attention with the session's S and the sink-window plan, as prefill uses).
struct PrefillChunk {
  Session* session = nullptr;
  std::span<const int32_t> tokens;  // at [position(), position() + size)
  int64_t logits_from = 0;          // tokens [logits_from, size) get logits; size = none
  // on_logits(i, logits) for each token i >= logits_from of this chunk, in order.
  const FunctionRef<void(int64_t index, const float* logits)>* on_logits = nullptr;
};

class BatchForward {
 public:
  // Throws Error(kInvalidArgument) for a tensor-parallel shard (batched decode runs unsharded).
  BatchForward(const Model& model, Device& device);

  // Attention of `layer` for the decode rows: fills attn row i (q_dim floats) for sessions[i],
  // whose query for this layer is ready (Session::attention_query).
  using AttentionFn = FunctionRef<void(int layer, float* attn)>;

  // Advances sessions[i] by tokens[i] and each chunk's session by its tokens (every session on
  // this object's model and device, each at most once in the pass). Returns the decode rows'
  // logits, row i at i * n_vocab, valid until the next call; chunks get theirs via on_logits
  // before this returns. Throws Error(kInvalidArgument) before touching any session when one has
  // no room for its tokens.
  const float* step(std::span<Session* const> sessions, std::span<const int32_t> tokens, AttentionFn attention,
                    std::span<const PrefillChunk> prefills = {});

  // The same decode pass taken apart, for protocols that run the two halves of a layer on
  // different rows (the two-device protocol: a side skips the post-attention ops of the rows it
  // accepted). Row i of each call is sessions[i] of that call; the rows are the same arithmetic
  // as step()'s (one matmul per weight over the call's rows, bitwise a matvec per row).
  // Validates like step(), then begin_token for every row.
  void begin_decode(std::span<Session* const> sessions, std::span<const int32_t> tokens);
  // Attention norm, Q/K/V projection, then Session::set_attention_input (RoPE, cache write).
  void decode_pre_attention(std::span<Session* const> sessions, int layer);
  // o_proj, residual, FFN norm, gate/up, activation, down, residual of each row, whose attention
  // output is row i of `attn` (q_dim floats per row).
  void decode_post_attention(std::span<Session* const> sessions, int layer, const float* attn);
  // Final norm and LM head of each row (row i at i * n_vocab, valid until the next call); does
  // not advance the sessions (Session::finish_token does).
  const float* decode_logits(std::span<Session* const> sessions);

 private:
  // The residual of row r of a pass.
  using RowResidual = FunctionRef<float*(size_t row)>;
  void check_decode_rows(std::span<Session* const> sessions) const;  // model and device
  // One token per session, each session's own, with room for it and a vocabulary id.
  void check_decode(std::span<Session* const> sessions, std::span<const int32_t> tokens) const;
  // Scratch for `rows` rows of the layer ops and `logit_rows` rows of logits (grows only).
  void reserve_rows(size_t rows, size_t logit_rows);
  // Attention norm into xn_ and Q/K/V of rows [0, rows) into q_, k_, v_.
  void project_qkv(int layer, size_t rows, RowResidual x);
  // The post-attention ops of rows [0, rows) from their attention outputs `attn`.
  void post_attention(int layer, size_t rows, RowResidual x, const float* attn);
  // Final norm and LM head of rows [0, rows) into logits_.
  void output_logits(size_t rows, RowResidual x);

  const Model& model_;
  Device& device_;
  // Row-major scratch of the pass (decode rows first, then the chunks' tokens): residuals of the
  // prompt rows, normed residuals, Q/K/V, attention outputs, projections, gate/up, logits.
  std::vector<float> x_, xn_, q_, k_, v_, attn_, proj_, gate_, up_, logits_;
  std::vector<DecodeQuery> prompt_queries_;  // per prompt row of the pass
  std::vector<DecodeQuery> queries_;         // one flash_decode call's prompt rows
};

}  // namespace alspec
