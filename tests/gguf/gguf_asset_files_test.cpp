// The real GGUF files in assets/ must load, with the metadata the engine relies on.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "alspec/gguf/gguf_file.h"
#include "repo_paths.h"

namespace alspec::gguf {
namespace {

TEST(GgufAssetFiles, Stories260KLoads) {
  const auto f = GgufFile::open(testing_paths::stories260k_gguf());
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_TRUE(f->get_u32("llama.block_count").has_value());
  EXPECT_TRUE(f->get_u32("llama.embedding_length").has_value());
  ASSERT_FALSE(f->tensors().empty());
  const TensorInfo* emb = f->find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  ASSERT_EQ(emb->dims.size(), 2u);
  EXPECT_EQ(emb->dims[0], *f->get_u32("llama.embedding_length"));
  const auto tokens = f->get_string_array("tokenizer.ggml.tokens");
  EXPECT_EQ(tokens.size(), emb->dims[1]);
  EXPECT_EQ(f->get_f32_array("tokenizer.ggml.scores").size(), tokens.size());
  EXPECT_EQ(f->get_i32_array("tokenizer.ggml.token_type").size(), tokens.size());
  for (const auto& t : f->tensors()) {
    EXPECT_EQ(t.data, f->find_tensor(t.name)->data);
    EXPECT_EQ(t.offset % f->alignment(), 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % f->alignment(), 0u);  // mmap is page aligned
    EXPECT_LE(f->data_offset() + t.offset + t.nbytes, f->file_size());
  }
}

class GgufAssetVocab : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufAssetVocab, Loads) {
  const auto f = GgufFile::open(testing_paths::vocab_gguf(GetParam()));
  EXPECT_TRUE(f->get_string("tokenizer.ggml.model").has_value());
  const auto tokens = f->get_string_array("tokenizer.ggml.tokens");
  EXPECT_GT(tokens.size(), 1000u);
  const auto types = f->get_i32_array("tokenizer.ggml.token_type");
  EXPECT_EQ(types.size(), tokens.size());
}

INSTANTIATE_TEST_SUITE_P(All, GgufAssetVocab,
                         ::testing::Values("gpt-2", "llama-bpe", "llama-spm", "qwen2"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& c : n) {
                             if (c == '-') c = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace alspec::gguf
