// Shared test helpers: the ggml vocab vectors and a per-process cache of loaded tokenizers
// (loading a 150k-token BPE vocab costs a noticeable fraction of a second).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "alspec/gguf/gguf_file.h"
#include "alspec/tokenizer/tokenizer.h"
#include "repo_paths.h"

namespace alspec::testing_tok {

inline std::string vocab_path(const std::string& name) { return testing_paths::vocab_gguf(name); }

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) ADD_FAILURE() << "cannot read " << path;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Loaded once per process and never freed: tests only read them.
inline const Tokenizer& tokenizer_from_file(const std::string& path) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& slot = cache[path];
  if (!slot) slot = Tokenizer::from_gguf(*gguf::GgufFile::open(path));
  return *slot;
}
inline const Tokenizer& vocab_tokenizer(const std::string& name) { return tokenizer_from_file(vocab_path(name)); }

struct VocabCase {
  std::string text;
  std::vector<int32_t> ids;
};

// .inp: every input is followed by "\n__ggml_vocab_test__\n"; .out: one line of ids per input.
inline std::vector<VocabCase> load_vocab_cases(const std::string& name) {
  const std::string inp = read_file(testing_paths::vocab_vectors(name) + ".inp");
  const std::string out = read_file(testing_paths::vocab_vectors(name) + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<VocabCase> cases;
  for (size_t pos = 0, hit; (hit = inp.find(sep, pos)) != std::string::npos; pos = hit + sep.size()) {
    cases.push_back({inp.substr(pos, hit - pos), {}});
  }
  std::istringstream lines(out);
  std::string line;
  for (auto& c : cases) {
    if (!std::getline(lines, line)) {
      ADD_FAILURE() << name << ".out has fewer lines than " << name << ".inp has inputs";
      break;
    }
    std::istringstream ids(line);
    for (int32_t id; ids >> id;) c.ids.push_back(id);
  }
  return cases;
}

inline std::string ids_to_string(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) {
    if (!s.empty()) s += ' ';
    s += std::to_string(id);
  }
  return s;
}

}  // namespace alspec::testing_tok
