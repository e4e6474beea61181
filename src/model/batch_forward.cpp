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

void BatchForward::reserve_rows(size_t rows, size_t logit_rows) {
  const auto& c = model_.config();
  const size_t E = static_cast<size_t>(c.n_embd), QD = static_cast<size_t>(c.q_dim());
  const size_t KD = static_cast<size_t>(c.kv_dim()), F = static_cast<size_t>(c.n_ff);
  auto grow = [](std::vector<float>& v, size_t n) {
    if (v.size() < n) v.resize(n);
  };
  grow(xn_, std::max(rows, logit_rows) * E);
  grow(q_, rows * QD);
  grow(k_, rows * KD);
  grow(v_, rows * KD);
  grow(attn_, rows * QD);
  grow(proj_, rows * E);
  grow(gate_, rows * F);
  grow(up_, rows * F);
  grow(logits_, logit_rows * static_cast<size_t>(c.n_vocab));
}

void BatchForward::project_qkv(int layer, size_t rows, RowResidual x) {
  const auto& c = model_.config();
  const auto& L = model_.layer(layer);
  const size_t E = static_cast<size_t>(c.n_embd);
  device_.parallel_for(rows, [&](size_t r, int) { rmsnorm(x(r), L.attn_norm, &xn_[r * E], c.n_embd, c.rms_eps); });
  const MatvecTarget qkv[] = {{&L.wq, q_.data()}, {&L.wk, k_.data()}, {&L.wv, v_.data()}};
  matmul_fused(device_, qkv, xn_.data(), static_cast<int64_t>(rows));
}

void BatchForward::post_attention(int layer, size_t rows, RowResidual x, const float* attn) {
  const auto& c = model_.config();
  const auto& L = model_.layer(layer);
  const size_t E = static_cast<size_t>(c.n_embd);
  const auto n = static_cast<int64_t>(rows);
  matmul(device_, L.wo, attn, n, proj_.data());
  device_.parallel_for(rows, [&](size_t r, int) {
    residual_add(c, x(r), &proj_[r * E], L.post_attn_norm);
    rmsnorm(x(r), L.ffn_norm, &xn_[r * E], c.n_embd, c.rms_eps);
  });
  const MatvecTarget gate_up[] = {{&L.w_gate, gate_.data()}, {&L.w_up, up_.data()}};
  matmul_fused(device_, gate_up, xn_.data(), n);
  gated_activation_rows(device_, c, gate_.data(), up_.data(), gate_.data(), n);
  matmul(device_, L.w_down, gate_.data(), n, proj_.data());
  device_.parallel_for(rows, [&](size_t r, int) { residual_add(c, x(r), &proj_[r * E], L.post_ffn_norm); });
}

void BatchForward::output_logits(size_t rows, RowResidual x) {
  const auto& c = model_.config();
  const size_t E = static_cast<size_t>(c.n_embd);
  if (rows == 0) return;
  device_.parallel_for(rows, [&](size_t k, int) { rmsnorm(x(k), model_.output_norm(), &xn_[k * E], c.n_embd, c.rms_eps); });
  matmul(device_, model_.output(), xn_.data(), static_cast<int64_t>(rows), logits_.data());
}

void BatchForward::check_decode_rows(std::span<Session* const> sessions) const {
  for (const Session* s : sessions) {
    if (s == nullptr || &s->model() != &model_ || &s->device() != &device_) {
      throw_invalid_argument("batched decode: every session must use the batch's model and device");
    }
  }
}

void BatchForward::check_decode(std::span<Session* const> sessions, std::span<const int32_t> tokens) const {
  if (sessions.size() != tokens.size()) throw_invalid_argument("batched decode: one token per session");
  check_decode_rows(sessions);
  for (size_t i = 0; i < sessions.size(); ++i) {
    sessions[i]->check_prefill(tokens.subspan(i, 1));  // room for the token, a vocabulary id
  }
}

void BatchForward::begin_decode(std::span<Session* const> sessions, std::span<const int32_t> tokens) {
  check_decode(sessions, tokens);
  reserve_rows(sessions.size(), sessions.size());
  device_.parallel_for(sessions.size(), [&](size_t i, int) { sessions[i]->begin_token(tokens[i]); });
}

void BatchForward::decode_pre_attention(std::span<Session* const> sessions, int layer) {
  const auto& c = model_.config();
  const size_t QD = static_cast<size_t>(c.q_dim()), KD = static_cast<size_t>(c.kv_dim());
  reserve_rows(sessions.size(), 0);
  project_qkv(layer, sessions.size(), [&](size_t r) { return sessions[r]->residual().data(); });
  device_.parallel_for(sessions.size(), [&](size_t r, int) {
    sessions[r]->set_attention_input(layer, &q_[r * QD], &k_[r * KD], &v_[r * KD]);
  });
}

void BatchForward::decode_post_attention(std::span<Session* const> sessions, int layer, const float* attn) {
  reserve_rows(sessions.size(), 0);
  post_attention(layer, sessions.size(), [&](size_t r) { return sessions[r]->residual().data(); }, attn);
}

const float* BatchForward::decode_logits(std::span<Session* const> sessions) {
  reserve_rows(0, sessions.size());
  output_logits(sessions.size(), [&](size_t r) { return sessions[r]->residual().data(); });
  return logits_.data();
}

const float* BatchForward::step(std::span<Session* const> sessions, std::span<const int32_t> tokens, AttentionFn attention,
                                std::span<const PrefillChunk> prefills) {
  const auto& c = model_.config();
  check_decode(sessions, tokens);
  const size_t N = sessions.size(), C = prefills.size();
  size_t R = N;            // rows of the pass: decode rows, then every chunk's tokens
  size_t logit_rows = N;   // rows through the LM head: decode rows, then the chunks' requested ones
  std::vector<size_t> first_row(C + 1);
  for (size_t u = 0; u < C; ++u) {
    const PrefillChunk& p = prefills[u];
    check_decode_rows(std::span<Session* const>(&p.session, 1));
    p.session->check_prefill(p.tokens);
    const auto n = static_cast<int64_t>(p.tokens.size());
    if (p.logits_from < 0 || p.logits_from > n || (p.logits_from < n && p.on_logits == nullptr)) {
      throw_invalid_argument("batched prefill: logits_from out of range or no on_logits");
    }
    first_row[u] = R;
    R += p.tokens.size();
    logit_rows += static_cast<size_t>(n - p.logits_from);
  }
  first_row[C] = R;
  if (R == 0) return nullptr;
  const size_t P = R - N, E = static_cast<size_t>(c.n_embd);
  const size_t QD = static_cast<size_t>(c.q_dim()), KD = static_cast<size_t>(c.kv_dim());
  const size_t V = static_cast<size_t>(c.n_vocab);
  x_.resize(P * E);
  prompt_queries_.resize(P);
  reserve_rows(R, logit_rows);
  // The residual of row r: the decode session's own, or a prompt row of this pass.
  auto x = [&](size_t r) { return r < N ? sessions[r]->residual().data() : &x_[(r - N) * E]; };
  // Which chunk row r (>= N) belongs to.
  auto chunk_of = [&](size_t r) {
    return static_cast<size_t>(std::upper_bound(first_row.begin(), first_row.end(), r) - first_row.begin()) - 1;
  };
  // Per-row work (pure functions of the row) on the device's threads; per-sequence work (RoPE
  // and the cache writes, which fold page bounds in position order) one task per sequence.
  device_.parallel_for(N + C, [&](size_t u, int) {
    if (u < N) {
      sessions[u]->begin_token(tokens[u]);
      return;
    }
    const PrefillChunk& p = prefills[u - N];
    for (size_t i = 0; i < p.tokens.size(); ++i) embed_row(model_, p.tokens[i], x(first_row[u - N] + i));
  });
  for (int l = 0; l < c.n_layers; ++l) {
    project_qkv(l, R, x);
    device_.parallel_for(N + C, [&](size_t u, int) {
      if (u < N) {
        sessions[u]->set_attention_input(l, &q_[u * QD], &k_[u * KD], &v_[u * KD]);
        return;
      }
      const PrefillChunk& p = prefills[u - N];
      for (size_t i = 0; i < p.tokens.size(); ++i) {  // as Session::prefill: in position order
        const size_t r = first_row[u - N] + i;
        prompt_queries_[r - N] =
            p.session->prompt_row(l, static_cast<int64_t>(i), &q_[r * QD], &k_[r * KD], &v_[r * KD], &attn_[r * QD]);
      }
    });
    if (N > 0) attention(l, attn_.data());
    // Prompt rows: exact attention, one call per distinct S (prefill's plan: sink-window).
    for (size_t u = 0; u < C; ++u) {
      const int S = prefills[u].session->spec_chunk(l);
      bool seen = false;
      for (size_t w = 0; w < u && !seen; ++w) seen = prefills[w].session->spec_chunk(l) == S;
      if (seen) continue;
      queries_.clear();
      for (size_t w = u; w < C; ++w) {
        if (prefills[w].session->spec_chunk(l) != S) continue;
        queries_.insert(queries_.end(), prompt_queries_.begin() + static_cast<std::ptrdiff_t>(first_row[w] - N),
                        prompt_queries_.begin() + static_cast<std::ptrdiff_t>(first_row[w + 1] - N));
      }
      flash_decode(device_, prefills[u].session->attention_shape(), queries_, S);
    }
    post_attention(l, R, x, attn_.data());
  }
  // Final norm of the rows that need logits, compacted: decode rows, then each chunk's.
  std::vector<size_t> logit_src;
  logit_src.reserve(logit_rows);
  for (size_t r = 0; r < N; ++r) logit_src.push_back(r);
  for (size_t u = 0; u < C; ++u) {
    for (size_t i = static_cast<size_t>(prefills[u].logits_from); i < prefills[u].tokens.size(); ++i) {
      logit_src.push_back(first_row[u] + i);
    }
  }
  output_logits(logit_rows, [&](size_t k) { return x(logit_src[k]); });
  for (Session* s : sessions) s->finish_token(/*logits=*/false);  // advances the position
  for (size_t k = N; k < logit_rows; ++k) {
    const size_t r = logit_src[k], u = chunk_of(r);
    (*prefills[u].on_logits)(static_cast<int64_t>(r - first_row[u]), &logits_[k * V]);
  }
  for (size_t u = 0; u < C; ++u) {
    if (prefills[u].tokens.empty()) continue;
    prefills[u].session->end_prompt_rows(x(first_row[u + 1] - 1), static_cast<int64_t>(prefills[u].tokens.size()));
  }
  return logits_.data();
}

}  // namespace alspec
