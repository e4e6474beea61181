// Writes the seed corpus for gguf_reader_fuzzer: small valid files built with GgufWriter
// (every value type, nested arrays, v2/v3, custom alignment, llama-like model and vocab
// layouts) plus a few broken variants of them. Usage: gguf_corpus_generator OUT_DIR
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/gguf/gguf_writer.h"

namespace {

using alspec::DType;
using alspec::gguf::GgufWriter;
using alspec::gguf::Value;
using alspec::gguf::ValueType;

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 31);
  return v;
}

GgufWriter every_type() {
  GgufWriter w;
  w.set_u8("u8", 1);
  w.set_i8("i8", -2);
  w.set_u16("u16", 3);
  w.set_i16("i16", -4);
  w.set_u32("u32", 5);
  w.set_i32("i32", -6);
  w.set_u64("u64", 7);
  w.set_i64("i64", -8);
  w.set_f32("f32", 0.5f);
  w.set_f64("f64", 0.25);
  w.set_bool("bool", true);
  w.set_string("str", "\xE2\x96\x81x");
  w.set_string_array("strs", {"a", "\xC3\xA9", ""});
  w.set_f32_array("f32s", std::vector<float>{1, 2});
  w.set_i32_array("i32s", std::vector<int32_t>{-1, 1});
  w.set_array("bools", ValueType::kBool, {Value::boolean(false), Value::boolean(true)});
  w.set_array("u64s", ValueType::kUint64, {Value::u64(9)});
  w.set_array("nested", ValueType::kArray,
              {Value::array(ValueType::kArray, {Value::i32_array(std::vector<int32_t>{1})}),
               Value::array(ValueType::kArray, {})});
  return w;
}

GgufWriter tiny_model() {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.context_length", 128);
  w.set_u32("llama.embedding_length", 32);
  w.set_u32("llama.block_count", 1);
  w.set_u32("llama.feed_forward_length", 64);
  w.set_u32("llama.attention.head_count", 4);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xE2\x96\x81the", "<0x0A>"});
  w.set_f32_array("tokenizer.ggml.scores", std::vector<float>{0, 0, 0, -1, -2});
  w.set_i32_array("tokenizer.ggml.token_type", std::vector<int32_t>{2, 3, 3, 1, 6});
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.add_tensor("token_embd.weight", DType::F32, {32, 5}, pattern(32 * 5 * 4, 1));
  w.add_tensor("blk.0.attn_q.weight", DType::Q8_0, {32, 32}, pattern(34 * 32, 2));
  w.add_tensor("blk.0.ffn_up.weight", DType::Q4_K, {256, 2}, pattern(144 * 2, 3));
  w.add_tensor("output_norm.weight", DType::F16, {32}, pattern(64, 4));
  return w;
}

void put(const std::filesystem::path& dir, const std::string& name, const std::vector<uint8_t>& bytes) {
  std::ofstream out(dir / name, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw alspec::Error(alspec::ErrorKind::kIo, (dir / name).string() + ": write failed");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  try {
    put(dir, "valid_every_type_v3.gguf", every_type().to_bytes());
    GgufWriter v2 = every_type();
    v2.set_version(2);
    put(dir, "valid_every_type_v2.gguf", v2.to_bytes());
    const std::vector<uint8_t> model = tiny_model().to_bytes();
    put(dir, "valid_tiny_model.gguf", model);
    GgufWriter aligned = tiny_model();
    aligned.set_alignment(64);
    put(dir, "valid_tiny_model_align64.gguf", aligned.to_bytes());
    put(dir, "valid_empty.gguf", GgufWriter().to_bytes());

    // Broken variants: the fuzzer starts next to the interesting error paths.
    put(dir, "bad_truncated_header.gguf", std::vector<uint8_t>(model.begin(), model.begin() + 20));
    put(dir, "bad_truncated_metadata.gguf", std::vector<uint8_t>(model.begin(), model.begin() + 200));
    put(dir, "bad_truncated_data.gguf", std::vector<uint8_t>(model.begin(), model.end() - 100));
    std::vector<uint8_t> b = model;
    b[4] = 1;  // version 1
    put(dir, "bad_version1.gguf", b);
    b = model;
    b[0] = 'X';
    put(dir, "bad_magic.gguf", b);
    b = model;
    b[23] = 0x7f;  // absurd metadata count
    put(dir, "bad_kv_count.gguf", b);
  } catch (const alspec::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
