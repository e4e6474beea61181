#include "alspec/model/model.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
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

// Rows [r0, r1) of w (a view).
WeightMatrix row_slice(const WeightMatrix& w, int64_t r0, int64_t r1) {
  WeightMatrix out = w;
  out.data = static_cast<const uint8_t*>(w.data) + w.row_bytes * static_cast<size_t>(r0);
  out.rows = r1 - r0;
  return out;
}

// Columns [c0, c1) of w as a view with w's row stride (c0 on a block boundary).
WeightMatrix column_view(const WeightMatrix& w, int64_t c0, int64_t c1) {
  WeightMatrix out = w;
  out.data = static_cast<const uint8_t*>(w.data) + row_bytes(w.type, c0);
  out.cols = c1 - c0;
  return out;
}

// Columns [c0, c1) of w copied into owned memory with contiguous rows. A column slice touches
// every page of the matrix, so the source pages are dropped from this process as the copy passes
// them (they stay in the page cache): resident memory holds only the rank's slice.
WeightMatrix copy_columns(const WeightMatrix& w, int64_t c0, int64_t c1, std::vector<PageBuffer>& owned) {
  const size_t off = row_bytes(w.type, c0);
  const size_t rb = row_bytes(w.type, c1 - c0);
  PageBuffer& buf = owned.emplace_back(rb * static_cast<size_t>(w.rows));
  const auto* src = static_cast<const uint8_t*>(w.data);
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto first_page = (reinterpret_cast<uintptr_t>(src) + page - 1) / page * page;  // pages wholly inside w
  uintptr_t dropped = first_page;
  auto drop_until = [&](uintptr_t end) {
    end = end / page * page;
    if (end > dropped + (size_t{1} << 20) || (end > dropped && end == (reinterpret_cast<uintptr_t>(src) +
                                                                         w.row_bytes * static_cast<size_t>(w.rows)) / page * page)) {
      madvise(reinterpret_cast<void*>(dropped), end - dropped, MADV_DONTNEED);
      dropped = end;
    }
  };
  for (int64_t r = 0; r < w.rows; ++r) {
    std::memcpy(buf.data() + rb * static_cast<size_t>(r), src + w.row_bytes * static_cast<size_t>(r) + off, rb);
    drop_until(reinterpret_cast<uintptr_t>(src) + w.row_bytes * static_cast<size_t>(r + 1));
  }
  WeightMatrix out = w;
  out.data = buf.data();
  out.cols = c1 - c0;
  out.row_bytes = rb;
  return out;
}

std::string shard_str(const Shard& s) {
  return "--tp " + std::to_string(s.count) + " --tp-chunks " + std::to_string(s.chunks);
}

// Validates the layout against the model; throws Error(kInvalidArgument) naming the problem.
void check_shard(const std::string& path, const ModelConfig& c, const Shard& s) {
  auto bad = [&](const std::string& why) { throw_invalid_argument(path + ": " + shard_str(s) + ": " + why); };
  if (s.count < 1) bad("T (--tp) must be >= 1");
  if (s.chunks < 1) bad("C (--tp-chunks) must be >= 1");
  if (s.rank < 0 || s.rank >= s.count) bad("rank " + std::to_string(s.rank) + " is outside [0, T)");
  if (c.n_head % s.count != 0 || c.n_head_kv % s.count != 0) {
    bad("the model has " + std::to_string(c.n_head) + " query heads and " + std::to_string(c.n_head_kv) +
        " KV heads; T must divide both (whole KV-head groups per rank)");
  }
  if (s.chunks % s.count != 0) bad("T must divide C (each rank owns C/T reduction chunks)");
  if (s.chunks > c.n_head_kv) {
    bad("C must be <= the " + std::to_string(c.n_head_kv) + " KV heads (o_proj chunks end on KV-group boundaries)");
  }
}

}  // namespace

int default_tp_chunks(int n_head_kv) {
  int c = 1;
  while (c < 8 && n_head_kv % (c * 2) == 0) c *= 2;
  return c;
}

Model::~Model() = default;

std::unique_ptr<Model> Model::load(const std::string& path, Shard shard) {
  std::unique_ptr<Model> m(new Model());
  m->path_ = path;
  m->file_ = gguf::GgufFile::open(path);
  m->config_ = ModelConfig::from_gguf(*m->file_);
  if (shard.chunks == 0) shard.chunks = default_tp_chunks(m->config_.n_head_kv);
  check_shard(path, m->config_, shard);
  m->shard_ = shard;
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
  m->full_config_ = m->config_;
  m->vocab_counts_ = {c.n_vocab};
  if (shard.chunked()) m->apply_shard();
  return m;
}

void Model::apply_shard() {
  const ModelConfig full = config_;
  const Shard s = shard_;
  const int C = s.chunks, T = s.count, per_rank = C / T;
  const int g_first = s.rank * per_rank;  // global index of this rank's first chunk
  auto bad = [&](const std::string& why) { throw_invalid_argument(path_ + ": " + shard_str(s) + ": " + why); };
  // o_proj chunks: KV groups [i * n_head_kv / C, ...), as columns of wo.
  const int64_t group_cols = static_cast<int64_t>(full.n_gqa()) * full.head_dim;
  std::vector<int64_t> oc(static_cast<size_t>(C) + 1);
  for (int i = 0; i <= C; ++i) oc[static_cast<size_t>(i)] = static_cast<int64_t>(i) * full.n_head_kv / C * group_cols;
  // ffn_down chunks: i * n_ff / C rounded to the largest block size of any layer's w_down (>= 32).
  int64_t granule = 32;
  for (const auto& L : layers_) {
    granule = std::max<int64_t>(granule, dtype_info(L.w_down.type).block_size);
    if (group_cols % dtype_info(L.wo.type).block_size != 0) {
      bad("attn_output is " + std::string(dtype_name(L.wo.type)) + " with blocks of " +
          std::to_string(dtype_info(L.wo.type).block_size) + " columns, which KV-group boundaries (every " +
          std::to_string(group_cols) + " columns) split");
    }
  }
  std::vector<int64_t> fc(static_cast<size_t>(C) + 1);
  for (int i = 0; i <= C; ++i) {
    const double x = static_cast<double>(i) * static_cast<double>(full.n_ff) / C / static_cast<double>(granule);
    fc[static_cast<size_t>(i)] = i == C ? full.n_ff : std::llround(x) * granule;
    if (i > 0 && fc[static_cast<size_t>(i)] <= fc[static_cast<size_t>(i) - 1]) {
      bad("n_ff = " + std::to_string(full.n_ff) + " is too small for " + std::to_string(C) +
          " ffn_down chunks on " + std::to_string(granule) + "-column boundaries");
    }
  }
  const int kv0 = s.rank * full.n_head_kv / T, kv1 = (s.rank + 1) * full.n_head_kv / T;
  const int64_t q0 = kv0 * group_cols, q1 = kv1 * group_cols;
  const int64_t k0 = static_cast<int64_t>(kv0) * full.head_dim, k1 = static_cast<int64_t>(kv1) * full.head_dim;
  const int64_t f0 = fc[static_cast<size_t>(g_first)], f1 = fc[static_cast<size_t>(g_first + per_rank)];
  config_.n_head = full.n_head / T;
  config_.n_head_kv = full.n_head_kv / T;
  config_.n_ff = static_cast<int>(f1 - f0);
  size_t bytes = 0;
  for (auto& L : layers_) {
    L.wq = row_slice(L.wq, q0, q1);
    L.wk = row_slice(L.wk, k0, k1);
    L.wv = row_slice(L.wv, k0, k1);
    if (L.bq) L.bq += q0;
    if (L.bk) L.bk += k0;
    if (L.bv) L.bv += k0;
    L.w_gate = row_slice(L.w_gate, f0, f1);
    L.w_up = row_slice(L.w_up, f0, f1);
    // One process (T = 1) views the mapping. Ranks copy each of their column chunks into owned
    // memory with contiguous rows: read as a strided view of the rank's slice, a chunk of a few
    // hundred columns streamed at about 0.7 of a contiguous matrix's rate (1B model over two
    // ranks, C = 8). The rank's whole o / down slices then stay views that nothing reads.
    const WeightMatrix wo = L.wo, w_down = L.w_down;
    L.wo = column_view(wo, q0, q1);
    L.w_down = column_view(w_down, f0, f1);
    L.wo_chunks.clear();
    L.down_chunks.clear();
    for (int k = 0; k < per_rank; ++k) {
      const auto c = static_cast<size_t>(g_first + k);
      if (T == 1) {
        L.wo_chunks.push_back(column_view(wo, oc[c], oc[c + 1]));
        L.down_chunks.push_back(column_view(w_down, fc[c], fc[c + 1]));
      } else {
        L.wo_chunks.push_back(copy_columns(wo, oc[c], oc[c + 1], owned_slices_));
        L.down_chunks.push_back(copy_columns(w_down, fc[c], fc[c + 1], owned_slices_));
      }
    }
    for (const auto* w : {&L.wq, &L.wk, &L.wv, &L.w_gate, &L.w_up}) bytes += matrix_bytes(*w);
    if (T == 1) {
      bytes += matrix_bytes(L.wo) + matrix_bytes(L.w_down);
    } else {
      for (const auto& w : L.wo_chunks) bytes += matrix_bytes(w);
      for (const auto& w : L.down_chunks) bytes += matrix_bytes(w);
    }
  }
  vocab_counts_.clear();
  for (int r = 0; r < T; ++r) {
    const int64_t v0 = static_cast<int64_t>(r) * full.n_vocab / T, v1 = static_cast<int64_t>(r + 1) * full.n_vocab / T;
    vocab_counts_.push_back(static_cast<int>(v1 - v0));
    if (r == s.rank) vocab_begin_ = v0;
  }
  output_ = row_slice(output_, vocab_begin_, vocab_begin_ + vocab_counts_[static_cast<size_t>(s.rank)]);
  bytes += matrix_bytes(output_);
  weight_bytes_per_token_ = bytes;
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
