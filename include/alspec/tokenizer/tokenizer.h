// Text <-> token ids for Llama-family vocabularies: SentencePiece-style ("llama") and byte-level
// BPE ("gpt2" with the gpt-2, llama-bpe and qwen2 pre-tokenizers). Immutable after construction;
// all const methods may be called from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "alspec/tokenizer/tokenizer_vocab.h"

namespace alspec {

namespace gguf {
class GgufFile;
}

class Tokenizer {
 public:
  // Error(kInvalidModel, "<path>: <problem>") on a missing, malformed or unsupported vocab.
  static std::unique_ptr<Tokenizer> from_gguf(const gguf::GgufFile& f);
  static std::unique_ptr<Tokenizer> from_vocab(TokenizerVocab vocab);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // add_special: prepend BOS / append EOS as add_bos()/add_eos() say. parse_special: control
  // and unknown token texts in `text` (e.g. "<|eot_id|>") become those tokens; user-defined
  // tokens are always recognised. Ids of special tokens never come from plain text otherwise.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special = false) const;
  // Concatenated pieces; skip_special drops control tokens (else their text is emitted). For
  // SentencePiece vocabs the space prefix that encode adds is removed from the first text token
  // at the start or after leading control tokens (BOS), so decode(encode(x)) == x.
  // Error(kInvalidArgument) on an id outside [0, n_vocab).
  std::string decode(std::span<const int32_t> ids, bool skip_special = true) const;
  // Bytes one token contributes in streaming output (no space stripping; a byte token gives
  // one byte, possibly part of a UTF-8 sequence).
  std::string token_to_piece(int32_t id, bool skip_special = true) const;
  const std::string& token_text(int32_t id) const;  // raw vocab string
  TokenType token_type(int32_t id) const;
  int32_t find_token(std::string_view text) const;  // id of an exact vocab string, -1 if none

  int32_t n_vocab() const;
  int32_t bos_id() const;  // -1 if none
  int32_t eos_id() const;
  int32_t unk_id() const;
  int32_t eot_id() const;
  bool add_bos() const;
  bool add_eos() const;
  bool is_end_of_generation(int32_t id) const;  // eos, eot, eom and known end-of-turn controls
  bool is_control(int32_t id) const;
  std::string_view model_name() const;  // "llama" | "gpt2"
  std::string_view pre_name() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace alspec
