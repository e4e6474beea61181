// Long inputs must encode in time linear (up to a log factor) in their length with every vocab:
// 400 kB of Moby-Dick, and one 400 kB "word" (the worst case for pair merging). Measured in this
// thread's CPU time (best of 3), as the growth from a quarter of the input to all of it, so a
// loaded machine does not make the test flaky: linear gives 4x plus cache effects (4.6-6x seen
// at 100 kB), quadratic merging 16x.
#include <gtest/gtest.h>

#include <time.h>

#include <algorithm>
#include <random>

#include "tokenizer/tokenizer_fixtures.h"

namespace alspec {
namespace {

constexpr size_t kChunkBytes = 400 * 1000;
constexpr double kMaxGrowth = 10.0;

std::string moby_chunk() {
  const std::string all = testing_tok::read_file(testing_paths::moby_dick_txt());
  // The chunk boundary may split a UTF-8 sequence, which must be fine.
  EXPECT_GE(all.size(), kChunkBytes);
  return all.substr(0, kChunkBytes);
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Fastest of three encodes (CPU seconds of this thread), and the ids of the last.
double encode_seconds(const Tokenizer& tok, const std::string& text, std::vector<int32_t>* ids) {
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    const double t0 = thread_cpu_seconds();
    *ids = tok.encode(text, false);
    best = std::min(best, thread_cpu_seconds() - t0);
  }
  return best;
}

void check_fast(const std::string& name, const std::string& text) {
  const Tokenizer& tok = testing_tok::vocab_tokenizer(name);
  std::vector<int32_t> ids, quarter_ids;
  const double quarter = encode_seconds(tok, text.substr(0, text.size() / 4), &quarter_ids);
  const double full = encode_seconds(tok, text, &ids);
  const double growth = full / std::max(quarter, 1e-6);
  EXPECT_LT(growth, kMaxGrowth) << name << ": " << text.size() << " bytes took " << full * 1e3 << " ms, a quarter "
                                << quarter * 1e3 << " ms";
  EXPECT_GT(ids.size(), text.size() / 20) << name;
  EXPECT_EQ(tok.decode(ids), text) << name;
  std::printf("  %-10s %zu bytes -> %zu tokens in %.1f ms CPU (a quarter: %.1f ms)\n", name.c_str(), text.size(),
              ids.size(), full * 1e3, quarter * 1e3);
}

TEST(EncodeSpeed, MobyDick400kB) {
  const std::string text = moby_chunk();
  ASSERT_EQ(text.size(), kChunkBytes);
  for (const char* name : {"llama-spm", "llama-bpe", "qwen2", "gpt-2"}) check_fast(name, text);
}

TEST(EncodeSpeed, SingleLongWord) {
  // Random lowercase letters without spaces: one pre-token of 400 kB for the BPE vocabs and a
  // single 400k-symbol merge problem for SPM.
  std::mt19937 rng(12345);
  std::string word(kChunkBytes, 'a');
  for (char& c : word) c = static_cast<char>('a' + rng() % 26);
  for (const char* name : {"llama-spm", "llama-bpe", "qwen2", "gpt-2"}) check_fast(name, word);
}

}  // namespace
}  // namespace alspec
