#include "alspec/model/model.h"

#include <map>

#include "alspec/core/dtype.h"
#include "alspec/core/error.h"
#include "alspec/gguf/gguf_file.h"
#include "alspec/kernels/quant.h"
#include "alspec/tokenizer/tokenizer.h"

namespace alspec {
namespace {

class Binder {
 public:
  Binder(const gguf::GgufFile& f, std::vector<std::vector<float>>& owned) : f_(f), owned_(owned) {}

  [[noreturn]] void fail(const std::string& msg) const { throw_invalid_model(f_.path() + ": " + msg); }

  const gguf::TensorInfo* find(const std::string& name, bool required) const {
    const auto* t = f_.find_tensor(name);
    if (t == nullptr && required) fail("missing tensor '" + name + "'");
    return t;
  }

  static std::string shape_str(const std::vector<uint64_t>& d) {
    std::string s = "[";
    for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
    return s + "]";
  }

  // A matrix with ne = [cols, rows] (GGUF order: innermost first).
  WeightMatrix matrix(const std::string& name, int64_t cols, int64_t rows, bool required = true) const {
    const auto* t = find(name, required);
    if (t == nullptr) return {};
    if (t->dims.size() != 2 || t->dims[0] != static_cast<uint64_t>(cols) || t->dims[1] != static_cast<uint64_t>(rows)) {
      fail("tensor '" + name + "' has shape " + shape_str(t->dims) + ", expected [" + std::to_string(cols) + ", " +
           std::to_string(rows) + "]");
    }
    if (!is_compute_type(t->type)) {
      fail("tensor '" + name + "' has type " + std::string(dtype_name(t->type)) +
           ", which alspec cannot compute with (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q4_K, Q6_K)");
    }
    WeightMatrix w;
    w.type = t->type;
    w.data = t->data;
    w.rows = rows;
    w.cols = cols;
    w.row_bytes = row_bytes(t->type, cols);
    return w;
  }

  // A vector of n floats; converted to an owned F32 copy when stored in another type.
  const float* vec(const std::string& name, int64_t n, bool required = true) const {
    const auto* t = find(name, required);
    if (t == nullptr) return nullptr;
    if (t->dims.size() != 1 || t->dims[0] != static_cast<uint64_t>(n)) {
      fail("tensor '" + name + "' has shape " + shape_str(t->dims) + ", expected [" + std::to_string(n) + "]");
    }
    if (t->type == DType::F32) return reinterpret_cast<const float*>(t->data);
    if (!is_compute_type(t->type)) fail("tensor '" + name + "' has unsupported type " + std::string(dtype_name(t->type)));
    auto& buf = owned_.emplace_back(static_cast<size_t>(n));
    dequantize_row(t->type, t->data, buf.data(), n);
    return buf.data();
  }

 private:
  const gguf::GgufFile& f_;
  std::vector<std::vector<float>>& owned_;
};

size_t matrix_bytes(const WeightMatrix& w) { return w.data ? w.row_bytes * static_cast<size_t>(w.rows) : 0; }

}  // namespace

Model::~Model() = default;

std::unique_ptr<Model> Model::load(const std::string& path) {
  std::unique_ptr<Model> m(new Model());
  m->path_ = path;
  m->file_ = gguf::GgufFile::open(path);
  m->config_ = ModelConfig::from_gguf(*m->file_);
  m->tokenizer_ = Tokenizer::from_gguf(*m->file_);
  const auto& c = m->config_;
  if (m->tokenizer_->n_vocab() != c.n_vocab) {
    throw_invalid_model(path + ": tokenizer vocabulary size mismatch");
  }
  Binder b(*m->file_, m->owned_f32_);

  // Optional rope_freqs.weight: per-pair divisors of the base frequencies (Llama 3.1 GGUFs).
  if (const auto* rf = b.find("rope_freqs.weight", false)) {
    const float* div = b.vec("rope_freqs.weight", c.rope_dim / 2);
    (void)rf;
    auto& cfg = m->config_;
    cfg.inv_freq = rope_inv_freq(cfg.rope_dim, cfg.rope_base, "none", 1.0f, 0, 1, 4);
    for (size_t i = 0; i < cfg.inv_freq.size(); ++i) {
      if (!(div[i] > 0.0f)) b.fail("rope_freqs.weight has a non-positive entry");
      cfg.inv_freq[i] /= div[i];
    }
    cfg.rope_scaling = "rope_freqs";
  }

  m->token_embd_ = b.matrix("token_embd.weight", c.n_embd, c.n_vocab);
  m->output_norm_ = b.vec("output_norm.weight", c.n_embd);
  if (b.find("output.weight", false)) {
    m->output_ = b.matrix("output.weight", c.n_embd, c.n_vocab);
  } else {
    m->output_ = m->token_embd_;
    m->config_.tied_output = true;
  }
  size_t bytes = matrix_bytes(m->output_);
  m->layers_.resize(static_cast<size_t>(c.n_layers));
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    auto& L = m->layers_[static_cast<size_t>(i)];
    L.attn_norm = b.vec(p + "attn_norm.weight", c.n_embd);
    L.wq = b.matrix(p + "attn_q.weight", c.n_embd, c.q_dim());
    L.wk = b.matrix(p + "attn_k.weight", c.n_embd, c.kv_dim());
    L.wv = b.matrix(p + "attn_v.weight", c.n_embd, c.kv_dim());
    L.wo = b.matrix(p + "attn_output.weight", c.q_dim(), c.n_embd);
    const bool bias_required = c.has_qkv_bias;
    L.bq = b.vec(p + "attn_q.bias", c.q_dim(), bias_required);
    L.bk = b.vec(p + "attn_k.bias", c.kv_dim(), bias_required);
    L.bv = b.vec(p + "attn_v.bias", c.kv_dim(), bias_required);
    L.ffn_norm = b.vec(p + "ffn_norm.weight", c.n_embd);
    L.w_gate = b.matrix(p + "ffn_gate.weight", c.n_embd, c.n_ff);
    L.w_up = b.matrix(p + "ffn_up.weight", c.n_embd, c.n_ff);
    L.w_down = b.matrix(p + "ffn_down.weight", c.n_ff, c.n_embd);
    if (c.has_qk_norm) {
      L.q_norm = b.vec(p + "attn_q_norm.weight", c.head_dim);
      L.k_norm = b.vec(p + "attn_k_norm.weight", c.head_dim);
    }
    if (c.has_post_norms) {
      L.post_attn_norm = b.vec(p + "post_attention_norm.weight", c.n_embd);
      L.post_ffn_norm = b.vec(p + "post_ffw_norm.weight", c.n_embd);
    }
    for (const auto* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) bytes += matrix_bytes(*w);
  }
  m->weight_bytes_per_token_ = bytes;
  return m;
}

void Model::embed(int32_t token, float* out) const {
  if (token < 0 || token >= config_.n_vocab) {
    throw_invalid_argument("token id " + std::to_string(token) + " is outside the vocabulary [0, " +
                           std::to_string(config_.n_vocab) + ")");
  }
  const auto* row = static_cast<const uint8_t*>(token_embd_.data) + token_embd_.row_bytes * static_cast<size_t>(token);
  dequantize_row(token_embd_.type, row, out, config_.n_embd);
}

std::vector<std::pair<std::string, int>> Model::tensor_type_counts() const {
  std::map<std::string, int> counts;
  for (const auto& t : file_->tensors()) counts[std::string(dtype_name(t.type))]++;
  return {counts.begin(), counts.end()};
}

}  // namespace alspec
