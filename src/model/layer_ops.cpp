// The per-row operations of a transformer layer shared by Session (decode, prefill) and
// BatchForward (batched decode), so every path computes a row with the same operations.
#include "model/layer_ops.h"

#include <algorithm>

#include "alspec/kernels/ops.h"

namespace alspec {
namespace {

void apply_rope(const ModelConfig& c, int layer, float* v, int n_heads, int64_t pos) {
  const float* inv_freq = c.layer_inv_freq(layer).data();
  if (c.rope_style == RopeStyle::kNeox) {
    rope_neox(v, n_heads, c.head_dim, static_cast<int>(pos), inv_freq);
  } else {
    rope_interleaved(v, n_heads, c.head_dim, static_cast<int>(pos), inv_freq);
  }
}

void add_bias(float* y, const float* b, int64_t n) {
  if (b != nullptr) add_inplace(y, b, n);
}

// RMSNorm of each head in place (gemma3 QK-norm).
void head_norm(float* v, const float* w, int n_heads, int head_dim, float eps) {
  if (w == nullptr) return;
  for (int h = 0; h < n_heads; ++h) {
    float* x = v + static_cast<size_t>(h) * head_dim;
    rmsnorm(x, w, x, head_dim, eps);
  }
}

}  // namespace

void embed_row(const Model& m, int32_t token, float* x) {
  const ModelConfig& c = m.config();
  m.embed(token, x);
  if (c.embed_scale != 1.0f) scale_inplace(x, c.embed_scale, c.n_embd);
}

// Everything between the Q/K/V projections and the cache write, for one token: biases, QK-norm,
// RoPE with the layer's frequencies. Shared by decode and prefill so both stay bitwise equal.
void finish_qkv(const ModelConfig& c, const LayerWeights& L, int layer, float* q, float* k, float* v, int64_t pos) {
  add_bias(q, L.bq, c.q_dim());
  add_bias(k, L.bk, c.kv_dim());
  add_bias(v, L.bv, c.kv_dim());
  head_norm(q, L.q_norm, c.n_head, c.head_dim, c.rms_eps);
  head_norm(k, L.k_norm, c.n_head_kv, c.head_dim, c.rms_eps);
  apply_rope(c, layer, q, c.n_head, pos);
  apply_rope(c, layer, k, c.n_head_kv, pos);
}

// Adds a sub-layer output to the residual, through the post-norm when the model has one.
void residual_add(const ModelConfig& c, float* x, float* out, const float* post_norm) {
  if (post_norm != nullptr) rmsnorm(out, post_norm, out, c.n_embd, c.rms_eps);
  add_inplace(x, out, c.n_embd);
}

// Element-wise, so chunks on the device's threads give the same result for any thread count
// (a scalar exp per element: ~0.4 ms per 1B-model token on one thread, halved on two).
void gated_activation(Device& dev, const ModelConfig& c, const float* gate, const float* up, float* out) {
  gated_activation_rows(dev, c, gate, up, out, 1);
}

void gated_activation_rows(Device& dev, const ModelConfig& c, const float* gate, const float* up, float* out, int64_t n) {
  constexpr int64_t kChunk = 1024;
  const int64_t F = c.n_ff, per_row = (F + kChunk - 1) / kChunk;
  dev.parallel_for(static_cast<size_t>(per_row * n), [&](size_t task, int) {
    const int64_t row = static_cast<int64_t>(task) / per_row;
    const int64_t i = static_cast<int64_t>(task) % per_row * kChunk, m = std::min(kChunk, F - i);
    const int64_t at = row * F + i;
    if (c.gelu_mlp) {
      geglu_tanh(gate + at, up + at, out + at, m);
    } else {
      swiglu(gate + at, up + at, out + at, m);
    }
  });
}

// The cache rows a query at `pos` attends to: everything, or the last sliding_window rows on
// local layers. A window is a view that starts later in the same head-major planes.
DecodeQuery layer_query(const ModelConfig& c, const KvCache& kv, int layer, const float* q, int64_t pos, float* out) {
  KvCacheView view = kv.view(layer);
  int64_t first = 0;
  if (c.is_local_layer(layer)) first = std::max<int64_t>(0, pos + 1 - c.sliding_window);
  if (first > 0) {
    view.v = static_cast<const uint8_t*>(view.v) + static_cast<size_t>(first) * view.row_bytes();
    // K in key blocks moves by whole blocks and skips the rest inside the first one.
    const int64_t k_rows = view.k_blocks ? first - first % kKeyBlockRows : first;
    view.k = static_cast<const uint8_t*>(view.k) + static_cast<size_t>(k_rows) * view.row_bytes();
    view.k_first = first - k_rows;
    view.key_pages = nullptr;  // pages are aligned to row 0 of the cache, not of the window
  }
  return DecodeQuery{q, view, pos - first, out};
}

}  // namespace alspec
