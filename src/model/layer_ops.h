// Internal: the per-row operations of a transformer layer that Session (decode, prefill) and
// BatchForward (batched decode) share, so that every path computes a row with the same arithmetic.
#pragma once

#include <cstdint>

#include "alspec/kernels/attention.h"
#include "alspec/model/kv_cache.h"
#include "alspec/model/model.h"
#include "alspec/runtime/device.h"

namespace alspec {

// x[n_embd] = embedding(token), times the model's embedding scale when it has one.
void embed_row(const Model& m, int32_t token, float* x);

// Everything between the Q/K/V projections and the cache write, for one token: biases, QK-norm,
// RoPE with the layer's frequencies.
void finish_qkv(const ModelConfig& c, const LayerWeights& L, int layer, float* q, float* k, float* v, int64_t pos);

// Adds a sub-layer output to the residual, through the post-norm when the model has one.
void residual_add(const ModelConfig& c, float* x, float* out, const float* post_norm);

// out[n_ff] = act(gate) * up, in chunks on the device's threads (element-wise, so the same result
// for any thread count).
void gated_activation(Device& dev, const ModelConfig& c, const float* gate, const float* up, float* out);
// The same for n rows of n_ff (row-major, out may be gate) in one parallel loop.
void gated_activation_rows(Device& dev, const ModelConfig& c, const float* gate, const float* up, float* out, int64_t n);

// The cache rows a query at `pos` attends to: everything, or the last sliding_window rows on
// local layers.
DecodeQuery layer_query(const ModelConfig& c, const KvCache& kv, int layer, const float* q, int64_t pos, float* out);

}  // namespace alspec
