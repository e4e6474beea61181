// Tokenizers are shared by server threads: concurrent encode/decode must give the
// single-threaded results (and be race-free under TSan).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tokenizer/tokenizer_fixtures.h"

namespace alspec {
namespace {

TEST(ConcurrentEncode, SameResultsAsSequential) {
  for (const char* name : {"llama-spm", "qwen2"}) {
    const Tokenizer& tok = testing_tok::vocab_tokenizer(name);
    const auto cases = testing_tok::load_vocab_cases(name);
    std::vector<std::vector<int32_t>> expected;
    for (const auto& c : cases) expected.push_back(tok.encode(c.text, true, true));
    std::atomic<int> mismatches{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int rep = 0; rep < 5; ++rep) {
          for (size_t i = 0; i < cases.size(); ++i) {
            const size_t k = (i + static_cast<size_t>(t) * 7) % cases.size();  // threads start at different cases
            const auto ids = tok.encode(cases[k].text, true, true);
            if (ids != expected[k] || tok.decode(ids) != cases[k].text) ++mismatches;
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(mismatches.load(), 0) << name;
  }
}

}  // namespace
}  // namespace alspec
