#include "alspec/model/batch_forward.h"

#include <algorithm>
#include <string>

#include "alspec/core/error.h"
#include "alspec/kernels/matmul.h"
#include "alspec/kernels/ops.h"
#include "model/layer_ops.h"

namespace alspec {

BatchForward::BatchForward(const Model& model, Device& device) : model_(model), device_(device) {
  if (model.shard().chunked()) {
    throw_invalid_argument("batched decode runs on an unsharded model (got shard " + std::to_string(model.shard().rank) +
                           " of " + std::to_string(model.shard().count) + ", " +
                           std::to_string(model.shard().chunks) + " chunks)");
  }
}

const float* BatchForward::step(std::span<Session* const> sessions, std::span<const int32_t> tokens, AttentionFn attention) {
  const auto& c = model_.config();
  if (sessions.size() != tokens.size()) throw_invalid_argument("batched decode: one token per session");
  for (size_t i = 0; i < sessions.size(); ++i) {
    if (&sessions[i]->model() != &model_ || &sessions[i]->device() != &device_) {
      throw_invalid_argument("batched decode: every session must use the batch's model and device");
    }
    sessions[i]->check_prefill(tokens.subspan(i, 1));  // room for the token, a vocabulary id
  }
  const int64_t n = static_cast<int64_t>(sessions.size());
  const size_t N = sessions.size(), E = static_cast<size_t>(c.n_embd);
  const size_t QD = static_cast<size_t>(c.q_dim()), KD = static_cast<size_t>(c.kv_dim()), F = static_cast<size_t>(c.n_ff);
  xn_.resize(N * E);
  q_.resize(N * QD);
  k_.resize(N * KD);
  v_.resize(N * KD);
  attn_.resize(N * QD);
  proj_.resize(N * E);
  gate_.resize(N * F);
  up_.resize(N * F);
  logits_.resize(N * static_cast<size_t>(c.n_vocab));
  for (size_t i = 0; i < N; ++i) sessions[i]->begin_token(tokens[i]);
  auto x = [&](size_t i) { return sessions[i]->residual().data(); };
  for (int l = 0; l < c.n_layers; ++l) {
    const auto& L = model_.layer(l);
    for (size_t i = 0; i < N; ++i) rmsnorm(x(i), L.attn_norm, &xn_[i * E], c.n_embd, c.rms_eps);
    const MatvecTarget qkv[] = {{&L.wq, q_.data()}, {&L.wk, k_.data()}, {&L.wv, v_.data()}};
    matmul_fused(device_, qkv, xn_.data(), n);
    for (size_t i = 0; i < N; ++i) sessions[i]->set_attention_input(l, &q_[i * QD], &k_[i * KD], &v_[i * KD]);
    attention(l, attn_.data());
    matmul(device_, L.wo, attn_.data(), n, proj_.data());
    for (size_t i = 0; i < N; ++i) {
      residual_add(c, x(i), &proj_[i * E], L.post_attn_norm);
      rmsnorm(x(i), L.ffn_norm, &xn_[i * E], c.n_embd, c.rms_eps);
    }
    const MatvecTarget gate_up[] = {{&L.w_gate, gate_.data()}, {&L.w_up, up_.data()}};
    matmul_fused(device_, gate_up, xn_.data(), n);
    gated_activation_rows(device_, c, gate_.data(), up_.data(), gate_.data(), n);
    matmul(device_, L.w_down, gate_.data(), n, proj_.data());
    for (size_t i = 0; i < N; ++i) residual_add(c, x(i), &proj_[i * E], L.post_ffn_norm);
  }
  for (size_t i = 0; i < N; ++i) rmsnorm(x(i), model_.output_norm(), &xn_[i * E], c.n_embd, c.rms_eps);
  matmul(device_, model_.output(), xn_.data(), n, logits_.data());
  for (Session* s : sessions) s->finish_token(/*logits=*/false);  // advances the position
  return logits_.data();
}

}  // namespace alspec
