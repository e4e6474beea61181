// Random-weight Llama-family GGUF models of any shape and weight type, for tests and benchmarks
// of shapes we do not have real checkpoints for (Llama-3 sized heads, long context, qwen2).
//
// Weights come from a seeded generator of our own (same bytes on every machine). Scales keep
// activations O(1) through the layers: a matrix with `in` inputs has std gain/sqrt(in); the
// gains make attention scores and logits spread over a few units, so softmaxes are neither
// uniform nor one-hot. Norm weights are uniform in [0.8, 1.2].
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "alspec/core/dtype.h"

namespace alspec {

enum class SyntheticRopeScaling {
  kNone,
  kLlama3,       // `{arch}.rope.scaling.*` metadata (type "llama3")
  kFreqsTensor,  // the same llama3 factors stored as the rope_freqs.weight tensor
};

struct SyntheticModelSpec {
  std::string arch = "llama";  // llama | mistral | qwen2 (qwen2 gets Q/K/V biases)
  std::string name = "synthetic";
  int n_layers = 2;
  int n_embd = 256;
  int n_head = 8;
  int n_head_kv = 4;
  int head_dim = 32;
  int n_ff = 512;
  uint32_t context_length = 4096;
  float rope_base = 10000.0f;
  float rms_eps = 1e-5f;
  SyntheticRopeScaling rope_scaling = SyntheticRopeScaling::kNone;
  float rope_scaling_factor = 8.0f;
  uint32_t rope_original_context = 8192;
  float rope_low_freq_factor = 1.0f;
  float rope_high_freq_factor = 4.0f;
  bool tied_output = false;
  // Every matrix, the embedding included; norms, biases and rope_freqs stay F32. A matrix whose
  // rows are not a whole number of blocks is an error (every matrix but ffn_down and
  // attn_output has n_embd columns, so a fallback for the embedding alone would never apply).
  DType weight_type = DType::F32;
  uint64_t seed = 1;
  // GGUF file whose `tokenizer.*` keys are copied; the vocabulary size is its token count.
  // Empty: no tokenizer metadata, `n_vocab` tokens.
  std::string tokenizer_donor;
  int n_vocab = 512;  // used only without a donor
};

// Named shapes: llama3-tiny, llama3-mini, llama-3.2-1b, long-context, qwen2-tiny, mistral-tiny.
// Error(kInvalidArgument) for an unknown name. The tokenizer donor is left empty; `preset_vocab`
// says which vocabulary the preset is meant for.
SyntheticModelSpec synthetic_preset(std::string_view name);
std::vector<std::string> synthetic_preset_names();

// Vocabulary a preset is designed around: "stories260K" (512 SentencePiece tokens) or
// "llama-bpe" (Llama 3, 128256 tokens).
std::string synthetic_preset_vocab(std::string_view name);

// Validates the spec (Error(kInvalidArgument) naming the field), generates the weights and
// writes the GGUF file (Error(kIo) on write failure, Error(kInvalidModel) for a bad donor).
void write_synthetic_model(const SyntheticModelSpec& spec, const std::string& path);

}  // namespace alspec
