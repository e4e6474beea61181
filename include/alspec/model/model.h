// A loaded model: config, tokenizer and weights bound in place in the memory-mapped GGUF file.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "alspec/core/page_buffer.h"
#include "alspec/kernels/matmul.h"
#include "alspec/model/model_config.h"

namespace alspec {
namespace gguf {
class GgufFile;
}
class Tokenizer;

// Tensor-parallel layout (Megatron): rank `rank` of `count` holds whole KV-head groups of Q/K/V,
// a slice of the MLP's rows (gate/up) and the matching columns of o_proj/ffn_down, and a slice of
// the LM head's vocabulary. o_proj and ffn_down are computed as `chunks` fixed column chunks
// (o_proj on KV-group boundaries, ffn_down on weight-block boundaries) whose partial products are
// summed in chunk order on every rank, so results are bitwise the same for every `count` that
// divides `chunks`. chunks = 1 and count = 1: the plain, unchunked model.
struct Shard {
  int rank = 0;
  int count = 1;   // T
  int chunks = 1;  // C; 0 = default_tp_chunks(n_head_kv)
  bool chunked() const { return chunks > 1 || count > 1; }
};

// Largest power of two <= 8 dividing n_head_kv: the default C under mpirun (independent of T).
int default_tp_chunks(int n_head_kv);

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
  // Shard::chunked(): this rank's column chunks of wo and w_down, in chunk order (each rows =
  // n_embd, cols = the chunk's columns); empty otherwise.
  std::vector<WeightMatrix> wo_chunks, down_chunks;
};

class Model {
 public:
  // Opens, validates and binds everything; throws Error(kInvalidModel/kIo) naming the file.
  // With a shard: only this rank's part is bound (config() has the local head counts and n_ff);
  // bad layouts (head counts or C not divisible by T, ...) throw Error(kInvalidArgument).
  static std::unique_ptr<Model> load(const std::string& path, Shard shard = {});
  ~Model();

  // This rank's view: n_head, n_head_kv and n_ff are local (n_vocab stays the full vocabulary).
  const ModelConfig& config() const { return config_; }
  const ModelConfig& full_config() const { return full_config_; }
  const Shard& shard() const { return shard_; }
  // Rows of the LM head this rank computes: [vocab_begin(), vocab_begin() + output().rows), and
  // the row counts of every rank (for the all-gather of logits).
  int64_t vocab_begin() const { return vocab_begin_; }
  const std::vector<int>& vocab_counts() const { return vocab_counts_; }
  // Global index of this rank's first chunk (its chunks are consecutive).
  int first_chunk() const { return shard_.rank * (shard_.chunks / shard_.count); }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const gguf::GgufFile& file() const { return *file_; }
  const std::string& path() const { return path_; }

  const LayerWeights& layer(int i) const { return layers_[static_cast<size_t>(i)]; }
  const float* output_norm() const { return output_norm_; }
  const WeightMatrix& output() const { return output_; }
  // Dequantises the embedding row of `token` into out[n_embd].
  void embed(int32_t token, float* out) const;
  // Total bytes of weights read by one decode step (all matrices + the LM head) on this rank.
  size_t weight_bytes_per_token() const { return weight_bytes_per_token_; }
  // Human-readable summary of tensor types, e.g. {"Q4_0": 112, "F32": 33}.
  std::vector<std::pair<std::string, int>> tensor_type_counts() const;

 private:
  Model() = default;
  void apply_shard();
  std::string path_;
  std::unique_ptr<gguf::GgufFile> file_;
  ModelConfig config_;
  ModelConfig full_config_;
  Shard shard_;
  int64_t vocab_begin_ = 0;
  std::vector<int> vocab_counts_;
  std::vector<PageBuffer> owned_slices_;  // the rank's column chunks of wo / w_down, contiguous (T > 1)
  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<LayerWeights> layers_;
  WeightMatrix token_embd_;
  WeightMatrix output_;
  const float* output_norm_ = nullptr;
  std::vector<std::vector<float>> owned_f32_;  // norm/bias vectors stored in non-F32 types
  size_t weight_bytes_per_token_ = 0;
};

}  // namespace alspec
