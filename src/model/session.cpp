#include "alspec/model/session.h"

#include <algorithm>
#include <string>

#include "alspec/core/error.h"
#include "alspec/kernels/matmul.h"
#include "alspec/kernels/ops.h"
#include "model/layer_ops.h"

namespace alspec {
int64_t default_context_size(const ModelConfig& c) { return std::min<int64_t>(c.context_length, 4096); }

Session::Session(const Model& model, Device& device, SessionOptions options, Communicator* tp)
    : model_(model),
      device_(device),
      options_(options),
      kv_(model.config(), options.ctx_size > 0 ? options.ctx_size : default_context_size(model.config()),
          options.kv_type, /*key_page_bounds=*/options.predictor == SpecPredictor::kQuestPages) {
  const auto& c = model.config();
  if (options_.ctx_size > c.context_length) {
    throw_invalid_argument("--ctx-size " + std::to_string(options_.ctx_size) + " exceeds the model's context length " +
                           std::to_string(c.context_length));
  }
  if (options_.spec_chunk < 0) throw_invalid_argument("spec chunk must be >= 0");
  if (options_.predictor == SpecPredictor::kQuestPages && options_.spec_chunk > 0 &&
      options_.spec_chunk < kQuestMinSpecChunk) {
    throw_invalid_argument("--predictor quest needs --spec-chunk >= " + std::to_string(kQuestMinSpecChunk) + ", got " +
                           std::to_string(options_.spec_chunk));
  }
  if (!options_.layer_spec_chunk.empty()) {
    if (static_cast<int>(options_.layer_spec_chunk.size()) != c.n_layers) {
      throw_invalid_argument("per-layer S: " + std::to_string(options_.layer_spec_chunk.size()) +
                             " values for a model of " + std::to_string(c.n_layers) + " layers");
    }
    const int min_s = options_.predictor == SpecPredictor::kQuestPages ? kQuestMinSpecChunk : 1;
    for (size_t l = 0; l < options_.layer_spec_chunk.size(); ++l) {
      if (options_.layer_spec_chunk[l] < min_s) {
        throw_invalid_argument("per-layer S: layer " + std::to_string(l) + " has S = " +
                               std::to_string(options_.layer_spec_chunk[l]) + ", needs >= " + std::to_string(min_s) +
                               (min_s > 1 ? " (quest)" : ""));
      }
    }
  }
  if (tp == nullptr) {
    own_tp_ = make_single_communicator();
    tp = own_tp_.get();
  }
  tp_ = tp;
  if (tp_->size() != model.shard().count || tp_->rank() != model.shard().rank) {
    throw_invalid_argument("session: the model is shard " + std::to_string(model.shard().rank) + " of " +
                           std::to_string(model.shard().count) + " but the tensor-parallel group is rank " +
                           std::to_string(tp_->rank()) + " of " + std::to_string(tp_->size()));
  }
  if (options_.prefill_batch < 1) options_.prefill_batch = 1;
  x_.resize(c.n_embd);
  xn_.resize(c.n_embd);
  q_.resize(c.q_dim());
  k_.resize(c.kv_dim());
  v_.resize(c.kv_dim());
  attn_.resize(c.q_dim());
  tmp_.resize(c.n_embd);
  gate_.resize(c.n_ff);
  up_.resize(c.n_ff);
  logits_.resize(c.n_vocab);
}

Session::~Session() = default;

AttentionShape Session::attention_shape() const {
  const auto& c = model_.config();
  return AttentionShape{c.n_head, c.n_head_kv, c.head_dim};
}

void Session::truncate(int64_t n) {
  if (n < 0 || n > pos_) throw_invalid_argument("truncate: position out of range");
  if (n < pos_) kv_.forget_rows_from(n);
  pos_ = n;
}

void Session::fill_random(int64_t n, uint64_t seed) {
  pos_ = 0;
  check_room(n);
  const auto& c = model_.config();
  std::vector<float> k(static_cast<size_t>(c.kv_dim())), v(k.size());
  uint64_t state = seed * 0x9e3779b97f4a7c15ull + 1;
  auto next = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<float>(static_cast<int32_t>(state >> 32)) * (1.0f / 2147483648.0f);
  };
  for (int l = 0; l < c.n_layers; ++l) {
    for (int64_t p = 0; p < n; ++p) {
      for (size_t i = 0; i < k.size(); ++i) {
        k[i] = next();
        v[i] = next();
      }
      kv_.store(l, p, k.data(), v.data());
    }
  }
  pos_ = n;
}

void Session::check_room(int64_t n) const {
  if (pos_ + n > kv_.capacity()) {
    throw_invalid_argument("sequence of " + std::to_string(pos_ + n) + " tokens exceeds the context size " +
                           std::to_string(kv_.capacity()));
  }
}

void Session::begin_token(int32_t token) {
  check_room(1);
  embed_row(model_, token, x_.data());
}

void Session::attention_input(int layer) {
  const auto& c = model_.config();
  const auto& L = model_.layer(layer);
  rmsnorm(x_.data(), L.attn_norm, xn_.data(), c.n_embd, c.rms_eps);
  const MatvecTarget qkv[] = {{&L.wq, q_.data()}, {&L.wk, k_.data()}, {&L.wv, v_.data()}};
  matvec_fused(device_, qkv, xn_.data());
  finish_attention_input(layer);
}

void Session::set_attention_input(int layer, const float* q, const float* k, const float* v) {
  std::copy_n(q, q_.size(), q_.begin());
  std::copy_n(k, k_.size(), k_.begin());
  std::copy_n(v, v_.size(), v_.begin());
  finish_attention_input(layer);
}

void Session::finish_attention_input(int layer) {
  finish_qkv(model_.config(), model_.layer(layer), layer, q_.data(), k_.data(), v_.data(), pos_);
  kv_.store(layer, pos_, k_.data(), v_.data());
}

DecodeQuery Session::attention_query(int layer, float* out) const {
  return layer_query(model_.config(), kv_, layer, q_.data(), pos_, out);
}

void Session::reduce_chunks(const std::vector<WeightMatrix>& chunks, const float* x, int64_t n, CommOp op, float* y) {
  const size_t E = static_cast<size_t>(model_.config().n_embd);
  const size_t N = static_cast<size_t>(n);
  size_t local_cols = 0;
  for (const auto& w : chunks) local_cols += static_cast<size_t>(w.cols);
  partial_.resize(chunks.size() * N * E);
  size_t col = 0;
  for (size_t k = 0; k < chunks.size(); ++k) {
    const auto cols = static_cast<size_t>(chunks[k].cols);
    const float* xk = x + col;
    if (N > 1) {
      // The chunk's columns of every row, contiguous.
      chunk_x_.resize(N * cols);
      for (size_t i = 0; i < N; ++i) std::copy_n(x + i * local_cols + col, cols, &chunk_x_[i * cols]);
      xk = chunk_x_.data();
    }
    if (N == 1) {
      matvec(device_, chunks[k], xk, &partial_[k * E]);
    } else {
      matmul(device_, chunks[k], xk, n, &partial_[k * N * E]);
    }
    col += cols;
  }
  gathered_.resize(partial_.size() * static_cast<size_t>(tp_->size()));
  tp_->allgather(op, partial_, gathered_);
  const size_t n_chunks = gathered_.size() / (N * E);
  for (size_t i = 0; i < N; ++i) {
    float* yi = y + i * E;
    std::copy_n(&gathered_[i * E], E, yi);
    for (size_t c = 1; c < n_chunks; ++c) add_inplace(yi, &gathered_[(c * N + i) * E], static_cast<int64_t>(E));
  }
}

void Session::lm_head(const float* xn, int64_t n, float* out) {
  const auto& c = model_.config();
  const auto& counts = model_.vocab_counts();
  if (counts.size() == 1) {
    if (n == 1) {
      matvec(device_, model_.output(), xn, out);
    } else {
      matmul(device_, model_.output(), xn, n, out);
    }
    return;
  }
  const size_t N = static_cast<size_t>(n);
  const auto mine = static_cast<size_t>(model_.output().rows);
  local_logits_.resize(N * mine);
  matmul(device_, model_.output(), xn, n, local_logits_.data());
  std::vector<int> block_counts(counts.size());
  for (size_t r = 0; r < counts.size(); ++r) block_counts[r] = counts[r] * static_cast<int>(N);
  gathered_.resize(N * static_cast<size_t>(c.n_vocab));
  tp_->allgatherv(CommOp::kLogits, local_logits_, block_counts, gathered_);
  // gathered_: rank blocks [i][v]; out: rows [i][vocab].
  size_t block = 0, v0 = 0;
  for (size_t r = 0; r < counts.size(); ++r) {
    const auto cnt = static_cast<size_t>(counts[r]);
    for (size_t i = 0; i < N; ++i) std::copy_n(&gathered_[block + i * cnt], cnt, out + i * static_cast<size_t>(c.n_vocab) + v0);
    block += N * cnt;
    v0 += cnt;
  }
}

void Session::attention_projection(int layer, const float* attn) {
  const auto& c = model_.config();
  const auto& L = model_.layer(layer);
  if (L.wo_chunks.empty()) {
    matvec(device_, L.wo, attn, tmp_.data());
  } else {
    reduce_chunks(L.wo_chunks, attn, 1, CommOp::kAttnReduce, tmp_.data());
  }
  residual_add(c, x_.data(), tmp_.data(), L.post_attn_norm);
}

void Session::mlp(int layer) {
  const auto& c = model_.config();
  const auto& L = model_.layer(layer);
  rmsnorm(x_.data(), L.ffn_norm, xn_.data(), c.n_embd, c.rms_eps);
  const MatvecTarget gate_up[] = {{&L.w_gate, gate_.data()}, {&L.w_up, up_.data()}};
  matvec_fused(device_, gate_up, xn_.data());
  gated_activation(device_, c, gate_.data(), up_.data(), gate_.data());
  if (L.down_chunks.empty()) {
    matvec(device_, L.w_down, gate_.data(), tmp_.data());
  } else {
    reduce_chunks(L.down_chunks, gate_.data(), 1, CommOp::kMlpReduce, tmp_.data());
  }
  residual_add(c, x_.data(), tmp_.data(), L.post_ffn_norm);
}

const float* Session::finish_token(bool logits) {
  const auto& c = model_.config();
  if (!logits) {
    ++pos_;
    return nullptr;
  }
  rmsnorm(x_.data(), model_.output_norm(), xn_.data(), c.n_embd, c.rms_eps);
  lm_head(xn_.data(), 1, logits_.data());
  ++pos_;
  return logits_.data();
}

const float* Session::decode(int32_t token) {
  begin_token(token);
  const auto& c = model_.config();
  const AttentionShape shape = attention_shape();
  for (int l = 0; l < c.n_layers; ++l) {
    attention_input(l);
    const DecodeQuery dq = attention_query(l, attn_.data());
    flash_decode(device_, shape, std::span<const DecodeQuery>(&dq, 1), spec_chunk(l), options_.predictor);
    attention_output(l, attn_.data());
  }
  return finish_token();
}

void Session::check_prefill(std::span<const int32_t> tokens) const {
  check_room(static_cast<int64_t>(tokens.size()));
  const int n_vocab = model_.config().n_vocab;
  for (int32_t t : tokens) {
    if (t < 0 || t >= n_vocab) {
      throw_invalid_argument("token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                             std::to_string(n_vocab) + ")");
    }
  }
}

void Session::prefill(std::span<const int32_t> tokens, PrefillLogits which,
                      FunctionRef<void(int64_t, const float*)> on_logits) {
  const auto& c = model_.config();
  const int64_t n_total = static_cast<int64_t>(tokens.size());
  check_prefill(tokens);
  const int64_t B = options_.prefill_batch;
  const size_t E = static_cast<size_t>(c.n_embd);
  std::vector<float> X, XN, Q, K, V, A, T, G, U, LG;
  const AttentionShape shape = attention_shape();
  for (int64_t start = 0; start < n_total; start += B) {
    const int64_t n = std::min(B, n_total - start);
    const size_t N = static_cast<size_t>(n);
    X.resize(N * E);
    XN.resize(N * E);
    Q.resize(N * c.q_dim());
    K.resize(N * c.kv_dim());
    V.resize(N * c.kv_dim());
    A.resize(N * c.q_dim());
    T.resize(N * E);
    G.resize(N * c.n_ff);
    U.resize(N * c.n_ff);
    for (size_t i = 0; i < N; ++i) embed_row(model_, tokens[static_cast<size_t>(start) + i], &X[i * E]);
    for (int l = 0; l < c.n_layers; ++l) {
      const auto& L = model_.layer(l);
      for (size_t i = 0; i < N; ++i) rmsnorm(&X[i * E], L.attn_norm, &XN[i * E], c.n_embd, c.rms_eps);
      matmul(device_, L.wq, XN.data(), n, Q.data());
      matmul(device_, L.wk, XN.data(), n, K.data());
      matmul(device_, L.wv, XN.data(), n, V.data());
      std::vector<DecodeQuery> batch(N);
      for (size_t i = 0; i < N; ++i) {
        batch[i] = prompt_row(l, static_cast<int64_t>(i), &Q[i * c.q_dim()], &K[i * c.kv_dim()], &V[i * c.kv_dim()],
                              &A[i * c.q_dim()]);
      }
      flash_decode(device_, shape, batch, spec_chunk(l));
      if (L.wo_chunks.empty()) {
        matmul(device_, L.wo, A.data(), n, T.data());
      } else {
        reduce_chunks(L.wo_chunks, A.data(), n, CommOp::kAttnReduce, T.data());
      }
      for (size_t i = 0; i < N; ++i) {
        residual_add(c, &X[i * E], &T[i * E], L.post_attn_norm);
        rmsnorm(&X[i * E], L.ffn_norm, &XN[i * E], c.n_embd, c.rms_eps);
      }
      matmul(device_, L.w_gate, XN.data(), n, G.data());
      matmul(device_, L.w_up, XN.data(), n, U.data());
      for (size_t i = 0; i < N; ++i) {
        gated_activation(device_, c, &G[i * c.n_ff], &U[i * c.n_ff], &G[i * c.n_ff]);
      }
      if (L.down_chunks.empty()) {
        matmul(device_, L.w_down, G.data(), n, T.data());
      } else {
        reduce_chunks(L.down_chunks, G.data(), n, CommOp::kMlpReduce, T.data());
      }
      for (size_t i = 0; i < N; ++i) residual_add(c, &X[i * E], &T[i * E], L.post_ffn_norm);
    }
    // Logits for the requested rows (bitwise equal to what decode() would produce).
    const bool last_chunk = start + n == n_total;
    int64_t first = n;  // first row needing logits
    if (which == PrefillLogits::kAll) first = 0;
    if (which == PrefillLogits::kLast && last_chunk) first = n - 1;
    if (first < n) {
      const int64_t m = n - first;
      for (int64_t i = first; i < n; ++i) {
        rmsnorm(&X[static_cast<size_t>(i) * E], model_.output_norm(), &XN[static_cast<size_t>(i - first) * E], c.n_embd,
                c.rms_eps);
      }
      LG.resize(static_cast<size_t>(m) * c.n_vocab);
      lm_head(XN.data(), m, LG.data());
      for (int64_t i = 0; i < m; ++i) on_logits(start + first + i, &LG[static_cast<size_t>(i) * c.n_vocab]);
    }
    end_prompt_rows(&X[(N - 1) * E], n);
  }
}

DecodeQuery Session::prompt_row(int layer, int64_t i, float* q, float* k, float* v, float* out) {
  const auto& c = model_.config();
  const int64_t p = pos_ + i;
  finish_qkv(c, model_.layer(layer), layer, q, k, v, p);
  kv_.store(layer, p, k, v);
  return layer_query(c, kv_, layer, q, p, out);
}

void Session::end_prompt_rows(const float* last_residual, int64_t n) {
  // Keep the last row's residual, so a decode step after prefill starts from a known state.
  std::copy_n(last_residual, x_.size(), x_.begin());
  pos_ += n;
}

}  // namespace alspec
