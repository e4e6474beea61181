// Where the tests find their data: everything lives in the repository (assets/ for what the
// engine's commands use too, tests/data/ for test-only material), so a lone clone passes.
#pragma once

#include <string>

namespace alspec::testing_paths {

inline std::string repo_path(const std::string& rel) { return std::string(ALSPEC_SOURCE_DIR) + "/" + rel; }
inline std::string stories260k_gguf() { return repo_path("assets/models/stories260K.gguf"); }
inline std::string vocab_gguf(const std::string& name) {
  return repo_path("assets/tokenizers/ggml-vocab-" + name + ".gguf");
}
// Conformance vectors of a vocab: <vocab>.inp / <vocab>.out beside each other.
inline std::string vocab_vectors(const std::string& name) {
  return repo_path("tests/data/tokenizers/ggml-vocab-" + name + ".gguf");
}
inline std::string moby_dick_txt() { return repo_path("assets/data/text/moby-dick.txt"); }

}  // namespace alspec::testing_paths
