// One sequence being decoded on one device: its KV cache, position and scratch buffers, and
// the forward pass split into the ops a speculative strategy composes per layer.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "alspec/core/dtype.h"
#include "alspec/core/function_ref.h"
#include "alspec/kernels/attention.h"
#include "alspec/model/kv_cache.h"
#include "alspec/model/model.h"
#include "alspec/runtime/communicator.h"
#include "alspec/runtime/device.h"

namespace alspec {

struct SessionOptions {
  int64_t ctx_size = 0;      // KV capacity; 0 = min(model context length, 4096)
  DType kv_type = DType::F16;
  // Attention partition: with the same S, exact attention is bitwise equal to the exact output of
  // the speculative kernel, so exact and speculative runs are comparable bit for bit.
  int spec_chunk = 0;
  // Per-layer S (speculation budgets, spec/spec_budget.h): empty = spec_chunk at every layer; else
  // one S >= 1 per layer, used by that layer's attention in every mode (plan and O_spec rows).
  std::vector<int> layer_spec_chunk = {};
  // Which rows O_spec uses; it also fixes the decode partition plan (exact decode uses the same
  // plan, see flash_decode). Prefill always uses the sink-window plan: it never speculates.
  SpecPredictor predictor = SpecPredictor::kSinkWindow;
  int prefill_batch = 64;    // tokens per prefill pass (bounds scratch memory)
};

// Which prefill positions get logits.
enum class PrefillLogits { kNone, kLast, kAll };

class Session {
 public:
  // `tp`: the tensor-parallel group this rank belongs to (its size and rank must match the
  // model's Shard); nullptr = a group of one. Collectives of a sharded model go through it.
  Session(const Model& model, Device& device, SessionOptions options, Communicator* tp = nullptr);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const Model& model() const { return model_; }
  Device& device() const { return device_; }
  const SessionOptions& options() const { return options_; }
  // S at `layer`: options().layer_spec_chunk[layer] when given, else options().spec_chunk.
  int spec_chunk(int layer) const {
    return options_.layer_spec_chunk.empty() ? options_.spec_chunk
                                             : options_.layer_spec_chunk[static_cast<size_t>(layer)];
  }
  int64_t position() const { return pos_; }
  int64_t capacity() const { return kv_.capacity(); }
  const KvCache& kv_cache() const { return kv_; }
  // Forgets the sequence (rows are overwritten when reused). truncate() keeps the first n.
  void reset() { pos_ = 0; }
  void truncate(int64_t n);
  // Benchmarks only: sets the sequence to n positions whose K/V rows are seeded random values
  // (prefilling 16K real tokens would take minutes on a laptop-class CPU).
  void fill_random(int64_t n, uint64_t seed);

  // Exact, batched prefill of `tokens` at [position(), position() + n). on_logits(i, logits)
  // is called for token i (all tokens, or only the last) with n_vocab logits.
  void prefill(std::span<const int32_t> tokens, PrefillLogits which,
               FunctionRef<void(int64_t index, const float* logits)> on_logits);
  // Throws Error(kInvalidArgument), as prefill would, unless `tokens` are vocabulary ids that fit
  // the cache after position().
  void check_prefill(std::span<const int32_t> tokens) const;
  // Exact decode of one token; returns the n_vocab logits (valid until the next call).
  const float* decode(int32_t token);

  // --- Building blocks of one decode step (used by the speculation strategies) ---
  void begin_token(int32_t token);      // residual = embedding(token)
  void attention_input(int layer);      // norm, Q/K/V (+bias), RoPE, store K/V at position()
  DecodeQuery attention_query(int layer, float* out) const;  // q of this token vs. the layer's cache
  // attention_input with Q/K/V projected elsewhere (BatchForward: rows of one matmul, bitwise the
  // fused matvec attention_input runs): biases, QK-norm, RoPE, store K/V at position().
  void set_attention_input(int layer, const float* q, const float* k, const float* v);
  // o_proj (chunks reduced across the TP group when sharded), (post-norm,) residual add.
  void attention_projection(int layer, const float* attn);
  // FFN norm, gate/up, activation, down (chunks reduced across the TP group), residual add.
  void mlp(int layer);
  // The post-attention ops: attention_projection then mlp.
  void attention_output(int layer, const float* attn) {
    attention_projection(layer, attn);
    mlp(layer);
  }
  Communicator& tp_comm() const { return *tp_; }  // Final norm + LM head (skipped when !logits, returning nullptr); advances position().
  const float* finish_token(bool logits = true);
  std::span<float> residual() { return x_; }
  AttentionShape attention_shape() const;

 private:
  // BatchForward runs prompt chunks of several sessions in one pass (continuous batching) through
  // the same two steps prefill() uses for its rows: prompt_row and end_prompt_rows.
  friend class BatchForward;
  // Prompt row i (position position() + i) of `layer`, Q/K/V projected: biases, QK-norm, RoPE,
  // K/V stored; returns its exact attention query writing to `out`.
  DecodeQuery prompt_row(int layer, int64_t i, float* q, float* k, float* v, float* out);
  // After n prompt rows: keep the last row's residual, advance position() by n.
  void end_prompt_rows(const float* last_residual, int64_t n);
  void check_room(int64_t n) const;
  void finish_attention_input(int layer);  // q_, k_, v_ projected: finish them, store K/V
  // y[n][n_embd] = W x for the chunked wo / w_down: this rank's chunk products, all-gathered,
  // summed in chunk order. x is n rows of the rank's local columns.
  void reduce_chunks(const std::vector<WeightMatrix>& chunks, const float* x, int64_t n, CommOp op, float* y);
  // LM head of n normalised rows xn into out[n][n_vocab] (all-gathers vocabulary slices).
  void lm_head(const float* xn, int64_t n, float* out);

  const Model& model_;
  Device& device_;
  SessionOptions options_;
  KvCache kv_;
  int64_t pos_ = 0;
  // Decode scratch.
  std::vector<float> x_, xn_, q_, k_, v_, attn_, tmp_, gate_, up_, logits_;
  std::unique_ptr<Communicator> own_tp_;
  Communicator* tp_ = nullptr;
  // Chunk scratch: gathered columns, this rank's partial products, all ranks' partial products.
  std::vector<float> chunk_x_, partial_, gathered_, local_logits_;
};

// Default KV capacity for a model: min(context length, 4096).
int64_t default_context_size(const ModelConfig& c);

}  // namespace alspec
