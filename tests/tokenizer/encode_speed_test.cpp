// Long inputs: a 100 kB Moby-Dick chunk must encode in well under a second with every vocab,
// and a 100 kB single "word" (worst case for pair merging) must not be quadratic.
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "tokenizer/tokenizer_fixtures.h"

namespace alspec {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr double kLimitSeconds = 10.0;  // sanitizers slow everything ~5-10x
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr double kLimitSeconds = 10.0;
#else
constexpr double kLimitSeconds = 1.0;
#endif
#else
constexpr double kLimitSeconds = 1.0;
#endif

constexpr size_t kChunkBytes = 100 * 1000;

std::string moby_chunk() {
  const std::string all = testing_tok::read_file(testing_tok::shared_path("data/text/moby-dick.txt"));
  // Skip the front matter; the chunk boundary may split a UTF-8 sequence, which must be fine.
  const size_t start = all.size() > 2 * kChunkBytes ? kChunkBytes : 0;
  return all.substr(start, kChunkBytes);
}

void check_fast(const std::string& name, const std::string& text) {
  const Tokenizer& tok = testing_tok::vocab_tokenizer(name);
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = tok.encode(text, false);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(seconds, kLimitSeconds) << name << ": " << text.size() << " bytes -> " << ids.size() << " tokens";
  EXPECT_GT(ids.size(), text.size() / 20) << name;
  EXPECT_EQ(tok.decode(ids), text) << name;
  std::printf("  %-10s %zu bytes -> %zu tokens in %.1f ms\n", name.c_str(), text.size(), ids.size(), seconds * 1e3);
}

TEST(EncodeSpeed, MobyDick100kB) {
  const std::string text = moby_chunk();
  ASSERT_EQ(text.size(), kChunkBytes);
  for (const char* name : {"llama-spm", "llama-bpe", "qwen2", "gpt-2"}) check_fast(name, text);
}

TEST(EncodeSpeed, SingleLongWord) {
  // Random lowercase letters without spaces: one pre-token of 100 kB for the BPE vocabs and a
  // single 100k-symbol merge problem for SPM.
  std::mt19937 rng(12345);
  std::string word(kChunkBytes, 'a');
  for (char& c : word) c = static_cast<char>('a' + rng() % 26);
  for (const char* name : {"llama-spm", "llama-bpe", "qwen2", "gpt-2"}) check_fast(name, word);
}

}  // namespace
}  // namespace alspec
