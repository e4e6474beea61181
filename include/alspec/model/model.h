// A loaded model: config, tokenizer and weights bound in place in the memory-mapped GGUF file.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "alspec/kernels/matmul.h"
#include "alspec/model/model_config.h"

namespace alspec {
namespace gguf {
class GgufFile;
}
class Tokenizer;

struct LayerWeights {
  const float* attn_norm = nullptr;
  WeightMatrix wq, wk, wv, wo;
  const float* bq = nullptr;  // qwen2 biases; nullptr when absent
  const float* bk = nullptr;
  const float* bv = nullptr;
  const float* ffn_norm = nullptr;
  WeightMatrix w_gate, w_up, w_down;
  const float* q_norm = nullptr;          // gemma3: RMSNorm over each head of Q and K
  const float* k_norm = nullptr;
  const float* post_attn_norm = nullptr;  // gemma3: norms of the attention / MLP outputs
  const float* post_ffn_norm = nullptr;
};

class Model {
 public:
  // Opens, validates and binds everything; throws Error(kInvalidModel/kIo) naming the file.
  static std::unique_ptr<Model> load(const std::string& path);
  ~Model();

  const ModelConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const gguf::GgufFile& file() const { return *file_; }
  const std::string& path() const { return path_; }

  const LayerWeights& layer(int i) const { return layers_[static_cast<size_t>(i)]; }
  const float* output_norm() const { return output_norm_; }
  const WeightMatrix& output() const { return output_; }
  // Dequantises the embedding row of `token` into out[n_embd].
  void embed(int32_t token, float* out) const;
  // Total bytes of weights read by one decode step (all matrices + the LM head).
  size_t weight_bytes_per_token() const { return weight_bytes_per_token_; }
  // Human-readable summary of tensor types, e.g. {"Q4_0": 112, "F32": 33}.
  std::vector<std::pair<std::string, int>> tensor_type_counts() const;

 private:
  Model() = default;
  std::string path_;
  std::unique_ptr<gguf::GgufFile> file_;
  ModelConfig config_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<LayerWeights> layers_;
  WeightMatrix token_embd_;
  WeightMatrix output_;
  const float* output_norm_ = nullptr;
  std::vector<std::vector<float>> owned_f32_;  // norm/bias vectors stored in non-F32 types
  size_t weight_bytes_per_token_ = 0;
};

}  // namespace alspec
