// The tokenizer description, independent of the file it came from: from_gguf fills it from the
// tokenizer.ggml.* keys, tests build it directly. Tokenizer::from_vocab validates it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace alspec {

// Values of tokenizer.ggml.token_type.
enum class TokenType : int32_t {
  kUndefined = 0,  // treated as normal
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct TokenizerVocab {
  std::string source = "tokenizer";  // names the input (file path) in error messages
  std::string model;                 // "llama" (SentencePiece) | "gpt2" (byte-level BPE)
  std::string pre;                   // pre-tokenizer (gpt2): "default" | "gpt-2" | "llama-bpe" | "qwen2"
  std::vector<std::string> tokens;
  std::vector<float> scores;         // llama: one per token (merge priority); gpt2: unused
  std::vector<int32_t> token_types;  // one per token, or empty for "all normal"
  std::vector<std::string> merges;   // gpt2: "left right", highest priority first
  // Special ids as stored (wide so that out-of-range file values can be reported, not wrapped).
  std::optional<int64_t> bos_id, eos_id, unk_id, eot_id, eom_id, pad_id;
  // Absent flags take the per-model defaults (llama: add BOS and a space prefix; gpt2: add BOS
  // only for the llama-bpe pre-tokenizer).
  std::optional<bool> add_bos, add_eos, add_space_prefix;
};

}  // namespace alspec
