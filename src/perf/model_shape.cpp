#include "alspec/perf/model_shape.h"

#include <optional>

#include "alspec/core/dtype.h"
#include "alspec/core/error.h"
#include "alspec/model/model.h"

namespace alspec::perf {

double bytes_per_element(std::string_view type) {
  if (type == "bfp8" || type == "bfp8_b") return 17.0 / 16.0;
  if (type == "bfp4" || type == "bfp4_b") return 9.0 / 16.0;
  if (type == "bf16") return 2.0;
  const std::optional<DType> t = dtype_from_name(type);
  if (!t) throw_invalid_argument("unknown element type '" + std::string(type) + "' (a GGUF type such as f16, q8_0, q4_k, or bfp8/bfp4)");
  const DTypeInfo& info = dtype_info(*t);
  return static_cast<double>(info.type_size) / static_cast<double>(info.block_size);
}

double ModelShape::weight_bytes() const {
  double b = output.bytes;
  for (const auto& l : layers) {
    for (const MatrixShape* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) b += m->bytes;
  }
  return b;
}

namespace {

struct PresetDims {
  const char* name;
  int n_layers, n_embd, n_head, n_head_kv, head_dim, n_ff, n_vocab;
  bool qkv_bias;
};

// Shapes from each model's published config.json (Hugging Face model cards):
// meta-llama/Llama-3.1-8B, meta-llama/Llama-3.2-1B, Qwen/Qwen2.5-0.5B, Qwen/Qwen2.5-1.5B.
constexpr PresetDims kPresets[] = {
    {"llama-3.1-8b", 32, 4096, 32, 8, 128, 14336, 128256, false},
    {"llama-3.2-1b", 16, 2048, 32, 8, 64, 8192, 128256, false},
    {"qwen2.5-0.5b", 24, 896, 14, 2, 64, 4864, 151936, true},
    {"qwen2.5-1.5b", 28, 1536, 12, 2, 128, 8960, 151936, true},
};

MatrixShape matrix(const std::string& type, double rows, double cols) {
  return {type, rows, cols, rows * cols * bytes_per_element(type)};
}

MatrixShape matrix(const WeightMatrix& w) {
  return {std::string(dtype_name(w.type)), static_cast<double>(w.rows), static_cast<double>(w.cols),
          static_cast<double>(w.row_bytes) * static_cast<double>(w.rows)};
}

}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> n;
  for (const auto& p : kPresets) n.emplace_back(p.name);
  return n;
}

ModelShape preset_shape(std::string_view name, const std::string& weight_type, const std::string& kv_type,
                        const std::string& mlp_type, const std::string& head_type) {
  const PresetDims* p = nullptr;
  for (const auto& c : kPresets) {
    if (name == c.name) p = &c;
  }
  if (p == nullptr) {
    std::string known;
    for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
    throw_invalid_argument("unknown model preset '" + std::string(name) + "' (known: " + known + ")");
  }
  const std::string mlp = mlp_type.empty() ? weight_type : mlp_type;
  const std::string head = head_type.empty() ? weight_type : head_type;
  ModelShape s;
  s.name = p->name;
  s.n_layers = p->n_layers;
  s.n_embd = p->n_embd;
  s.n_head = p->n_head;
  s.n_head_kv = p->n_head_kv;
  s.head_dim = p->head_dim;
  s.n_ff = p->n_ff;
  s.n_vocab = p->n_vocab;
  s.qkv_bias = p->qkv_bias;
  const double e = s.n_embd, q = s.q_dim(), kv = s.kv_dim(), ff = s.n_ff;
  LayerShape l{matrix(weight_type, q, e),  matrix(weight_type, kv, e), matrix(weight_type, kv, e),
               matrix(weight_type, e, q),  matrix(mlp, ff, e),         matrix(mlp, ff, e),
               matrix(weight_type, e, ff)};
  s.layers.assign(static_cast<size_t>(s.n_layers), l);
  s.output = matrix(head, s.n_vocab, e);
  s.kv_type = kv_type;
  s.kv_elem_bytes = bytes_per_element(kv_type);
  return s;
}

ModelShape shape_from_model(const Model& model, const std::string& kv_type) {
  const ModelConfig& c = model.config();
  ModelShape s;
  s.name = c.name.empty() ? model.path() : c.name;
  s.n_layers = c.n_layers;
  s.n_embd = c.n_embd;
  s.n_head = c.n_head;
  s.n_head_kv = c.n_head_kv;
  s.head_dim = c.head_dim;
  s.n_ff = c.n_ff;
  s.n_vocab = c.n_vocab;
  s.qkv_bias = c.has_qkv_bias;
  for (int i = 0; i < c.n_layers; ++i) {
    const LayerWeights& L = model.layer(i);
    s.layers.push_back({matrix(L.wq), matrix(L.wk), matrix(L.wv), matrix(L.wo), matrix(L.w_gate), matrix(L.w_up),
                        matrix(L.w_down)});
  }
  s.output = matrix(model.output());
  s.kv_type = kv_type;
  s.kv_elem_bytes = bytes_per_element(kv_type);
  return s;
}

void validate(const ModelShape& s) {
  auto positive = [&](int v, const char* field) {
    if (v <= 0) throw_invalid_argument("model shape '" + s.name + "': " + field + " must be > 0, got " + std::to_string(v));
  };
  positive(s.n_layers, "n_layers");
  positive(s.n_embd, "n_embd");
  positive(s.n_head, "n_head");
  positive(s.n_head_kv, "n_head_kv");
  positive(s.head_dim, "head_dim");
  positive(s.n_ff, "n_ff");
  positive(s.n_vocab, "n_vocab");
  if (s.n_head % s.n_head_kv != 0) {
    throw_invalid_argument("model shape '" + s.name + "': n_head_kv " + std::to_string(s.n_head_kv) +
                           " does not divide n_head " + std::to_string(s.n_head));
  }
  if (s.layers.size() != static_cast<size_t>(s.n_layers)) {
    throw_invalid_argument("model shape '" + s.name + "': " + std::to_string(s.layers.size()) + " layer shapes for " +
                           std::to_string(s.n_layers) + " layers");
  }
  if (!(s.kv_elem_bytes > 0) || !(s.act_bytes > 0)) throw_invalid_argument("model shape '" + s.name + "': element bytes must be > 0");
}

}  // namespace alspec::perf
