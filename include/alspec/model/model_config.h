// Hyper-parameters of a decoder-only model, read and validated from GGUF metadata.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace alspec {
namespace gguf {
class GgufFile;
}

enum class Arch { kLlama, kMistral, kQwen2, kGemma3 };

// Which element pairs RoPE rotates. GGUF Llama Q/K weights are stored permuted for kAdjacent.
enum class RopeStyle {
  kAdjacent,  // pairs (x[2i], x[2i+1])          — GGML "normal" mode: llama, mistral
  kNeox,      // pairs (x[i], x[i + rope_dim/2])  — GGML "neox" mode: qwen2
};

struct ModelConfig {
  std::string arch_name;
  Arch arch = Arch::kLlama;
  std::string name;  // general.name, may be empty
  int n_layers = 0;
  int n_embd = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  int n_ff = 0;
  int n_vocab = 0;
  int context_length = 0;
  float rms_eps = 1e-5f;
  RopeStyle rope_style = RopeStyle::kAdjacent;
  int rope_dim = 0;        // leading dims of each head that rotate (usually head_dim)
  float rope_base = 10000.0f;
  std::string rope_scaling = "none";  // none | linear | llama3 | rope_freqs (tensor)
  float rope_scaling_factor = 1.0f;
  std::vector<float> inv_freq;        // rope_dim/2 per-pair frequencies, scaling applied
  bool has_qkv_bias = false;
  bool tied_output = false;
  // Gemma 3: QK-norm, post-attention/post-FFN norms, GeGLU, embeddings scaled by sqrt(n_embd),
  // and interleaved sliding-window ("local") layers with their own RoPE base.
  bool has_qk_norm = false;
  bool has_post_norms = false;
  bool gelu_mlp = false;        // GeGLU (tanh GELU) instead of SwiGLU
  float embed_scale = 1.0f;
  int sliding_window = 0;       // 0: every layer attends to the whole context
  int swa_pattern = 0;          // layer il is local iff il % swa_pattern < swa_pattern - 1
  std::vector<float> inv_freq_swa;  // RoPE frequencies of local layers

  bool is_local_layer(int il) const { return sliding_window > 0 && swa_pattern > 0 && il % swa_pattern < swa_pattern - 1; }
  const std::vector<float>& layer_inv_freq(int il) const { return is_local_layer(il) ? inv_freq_swa : inv_freq; }

  int n_gqa() const { return n_head / n_head_kv; }
  int q_dim() const { return n_head * head_dim; }
  int kv_dim() const { return n_head_kv * head_dim; }

  // Reads `{arch}.*` keys; throws Error(kInvalidModel) naming the file and key on anything
  // missing, inconsistent or unsupported. `rope_freqs` is the optional rope_freqs.weight tensor.
  static ModelConfig from_gguf(const gguf::GgufFile& file);
};

const char* arch_name(Arch a);

// RoPE per-pair inverse frequencies base^(-2i/rope_dim), with llama3/linear scaling applied.
std::vector<float> rope_inv_freq(int rope_dim, float base, const std::string& scaling, float factor,
                                 float original_ctx, float low_freq_factor, float high_freq_factor);

}  // namespace alspec
