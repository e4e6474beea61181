// Reads the tokenizer.ggml.* metadata of a GGUF file into a TokenizerVocab.
#include "alspec/core/error.h"
#include "alspec/gguf/gguf_file.h"
#include "alspec/tokenizer/tokenizer.h"

namespace alspec {

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::GgufFile& f) {
  TokenizerVocab v;
  v.source = f.path();
  const std::optional<std::string> model = f.get_string("tokenizer.ggml.model");
  if (!model) throw_invalid_model(f.path() + ": no tokenizer (key tokenizer.ggml.model is missing)");
  v.model = *model;
  v.pre = f.get_string("tokenizer.ggml.pre").value_or("default");
  v.tokens = f.get_string_array("tokenizer.ggml.tokens");
  v.scores = f.get_f32_array("tokenizer.ggml.scores");
  v.token_types = f.get_i32_array("tokenizer.ggml.token_type");
  v.merges = f.get_string_array("tokenizer.ggml.merges");
  v.bos_id = f.get_i64("tokenizer.ggml.bos_token_id");
  v.eos_id = f.get_i64("tokenizer.ggml.eos_token_id");
  v.unk_id = f.get_i64("tokenizer.ggml.unknown_token_id");
  v.eot_id = f.get_i64("tokenizer.ggml.eot_token_id");
  v.eom_id = f.get_i64("tokenizer.ggml.eom_token_id");
  v.pad_id = f.get_i64("tokenizer.ggml.padding_token_id");
  v.add_bos = f.get_bool("tokenizer.ggml.add_bos_token");
  v.add_eos = f.get_bool("tokenizer.ggml.add_eos_token");
  v.add_space_prefix = f.get_bool("tokenizer.ggml.add_space_prefix");
  return from_vocab(std::move(v));
}

}  // namespace alspec
