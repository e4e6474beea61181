// Shapes of a decoder-only model as the performance model needs them: per layer, the weight
// matrices (element type, rows, columns, bytes) and the attention geometry. From a loaded GGUF
// model (the real per-tensor types of mixed files such as Q4_K_M) or from a named preset
// (published config.json shapes, weight and KV element types chosen by the caller).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace alspec {
class Model;
}

namespace alspec::perf {

// Bytes per element of a weight or KV element type: the project's DTypes by name ("q8_0", "f16",
// "Q4_K", ...) and Tenstorrent's block floats "bfp8" (16 mantissas of 8 bits + one shared 8-bit
// exponent: 17 bytes per 16) and "bfp4" (9 bytes per 16). Error(kInvalidArgument) if unknown.
double bytes_per_element(std::string_view type);

struct MatrixShape {
  std::string type;   // element type name
  double rows = 0;    // output features
  double cols = 0;    // input features
  double bytes = 0;   // weight bytes read by one matvec
};

struct LayerShape {
  MatrixShape wq, wk, wv, wo, w_gate, w_up, w_down;
};

struct ModelShape {
  std::string name;
  int n_layers = 0, n_embd = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_ff = 0, n_vocab = 0;
  bool qkv_bias = false;
  std::vector<LayerShape> layers;  // n_layers entries
  MatrixShape output;              // LM head
  std::string kv_type = "f16";
  double kv_elem_bytes = 2;        // bytes per cached K (or V) element
  double act_bytes = 4;            // bytes per activation element in messages (f32 here, bf16 on accelerators)
  // A TP rank of alspec's MPI runtime runs its o and down products as this many column chunks (C /
  // tp of the chunk all-gather; include/alspec/model/model.h): that many narrower matvecs.
  int chunks_per_rank = 1;

  int q_dim() const { return n_head * head_dim; }
  int kv_dim() const { return n_head_kv * head_dim; }
  // K and V bytes of one token in one layer (all KV heads).
  double kv_bytes_per_token_layer() const { return 2.0 * kv_dim() * kv_elem_bytes; }
  double weight_bytes() const;  // all matrices read per decode token (embedding row excluded)
};

// Preset names: llama-3.1-8b, llama-3.2-1b, qwen2.5-0.5b, qwen2.5-1.5b.
std::vector<std::string> preset_names();

// A preset with every matrix of `weight_type` except, where given, the MLP gate and up projections
// (`mlp_type`: tt-transformers' "bfp4 MLP FF1+FF3") and the LM head (`head_type`); empty strings mean `weight_type`. Error(kInvalidArgument) naming the
// preset for an unknown name (the message lists the known ones) or an unknown type.
ModelShape preset_shape(std::string_view name, const std::string& weight_type, const std::string& kv_type,
                        const std::string& mlp_type = "", const std::string& head_type = "");

// The loaded model's shapes and real tensor types; kv_type is the cache type to model.
ModelShape shape_from_model(const Model& model, const std::string& kv_type);

// Throws Error(kInvalidArgument) naming the field if the shape is inconsistent (heads not dividing,
// empty layers, non-positive sizes).
void validate(const ModelShape& s);

}  // namespace alspec::perf
