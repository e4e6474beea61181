// The stories260K model's SentencePiece vocab (512 tokens, byte fallback) against ids computed
// by the independent Python oracle tests/tokenizer/spm_reference.py (which itself reproduces all
// llama-spm ggml vectors); regenerate data/stories260k_expected.tsv with "spm_reference.py generate".
#include <gtest/gtest.h>

#include <sstream>

#include "tokenizer/tokenizer_fixtures.h"

namespace alspec {
namespace {

struct StoriesCase {
  bool add_bos;
  std::string text;
  std::vector<int32_t> ids;
};

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

std::vector<StoriesCase> load_cases() {
  std::istringstream in(
      testing_tok::read_file(std::string(ALSPEC_SOURCE_DIR) + "/tests/tokenizer/data/stories260k_expected.tsv"));
  std::vector<StoriesCase> cases;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cols;
    std::istringstream fields(line);
    for (std::string col; std::getline(fields, col, '\t');) cols.push_back(col);
    if (cols.size() < 3) {
      ADD_FAILURE() << "bad line: " << line;
      continue;
    }
    StoriesCase c{cols[0] == "1", from_hex(cols[1]), {}};
    std::istringstream ids(cols[2]);
    for (int32_t id; ids >> id;) c.ids.push_back(id);
    cases.push_back(std::move(c));
  }
  return cases;
}

const Tokenizer& stories() {
  return testing_tok::tokenizer_from_file(testing_paths::stories260k_gguf());
}

TEST(Stories260k, OnceUponATime) {
  const Tokenizer& tok = stories();
  EXPECT_EQ(tok.n_vocab(), 512);
  EXPECT_EQ(tok.model_name(), "llama");
  // Expected ids come from spm_reference.py (see data/stories260k_expected.tsv).
  const std::vector<int32_t> expected = {1, 403, 407, 261, 378};
  EXPECT_EQ(tok.encode("Once upon a time", true), expected);
  EXPECT_EQ(tok.decode(expected), "Once upon a time");
}

TEST(Stories260k, MatchesPythonReference) {
  const Tokenizer& tok = stories();
  const auto cases = load_cases();
  ASSERT_GE(cases.size(), 10u);
  for (const auto& c : cases) {
    EXPECT_EQ(testing_tok::ids_to_string(tok.encode(c.text, c.add_bos)), testing_tok::ids_to_string(c.ids))
        << "input '" << c.text << "' add_bos=" << c.add_bos;
    EXPECT_EQ(tok.decode(tok.encode(c.text, c.add_bos)), c.text);
  }
}

TEST(Stories260k, ByteFallbackReassemblesUtf8) {
  const Tokenizer& tok = stories();
  // U+2603 is not a token: three byte tokens, reassembled when decoding.
  const auto ids = tok.encode("\xE2\x98\x83", false);
  ASSERT_GE(ids.size(), 3u);
  for (size_t i = ids.size() - 3; i < ids.size(); ++i) EXPECT_EQ(tok.token_type(ids[i]), TokenType::kByte);
  EXPECT_EQ(tok.decode(ids), "\xE2\x98\x83");
  EXPECT_EQ(tok.token_to_piece(ids[ids.size() - 3]), "\xE2");  // streaming gives single bytes
}

}  // namespace
}  // namespace alspec
