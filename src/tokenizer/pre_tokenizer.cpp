#include "tokenizer/pre_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <memory>

#include "alspec/core/error.h"

namespace alspec::tokenizer_detail {
namespace {

// The contractions are spelled with explicit case classes rather than (?i:...), because
// Unicode caseless matching would also accept e.g. U+017F (long s) for 's'.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr const char* kLlama3Pattern =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3})"
    R"(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Qwen2 differs from Llama 3 only in splitting numbers into single digits.
constexpr const char* kQwen2Pattern =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N})"
    R"(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

constexpr const char* kDigitPattern = R"(\p{N})";

std::vector<const char*> patterns_for(PreTokenizerKind kind) {
  switch (kind) {
    case PreTokenizerKind::kGpt2: return {kGpt2Pattern};
    case PreTokenizerKind::kLlama3: return {kLlama3Pattern};
    case PreTokenizerKind::kQwen2: return {kQwen2Pattern};
    case PreTokenizerKind::kSmollm: return {kDigitPattern, kGpt2Pattern};
  }
  return {kGpt2Pattern};
}

struct MatchDataDeleter {
  void operator()(pcre2_match_data* md) const { pcre2_match_data_free(md); }
};

}  // namespace

PreTokenizer::PreTokenizer(PreTokenizerKind kind, const std::string& source) {
  for (const char* pattern : patterns_for(kind)) {
    int err = 0;
    PCRE2_SIZE err_offset = 0;
    // MATCH_INVALID_UTF: arbitrary bytes are legal input; invalid sequences simply never match.
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED,
                                     PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &err_offset, nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof(msg));
      for (void* c : codes_) pcre2_code_free(static_cast<pcre2_code*>(c));
      throw_invalid_model(source + ": pre-tokenizer regex does not compile at offset " +
                          std::to_string(err_offset) + ": " + reinterpret_cast<const char*>(msg));
    }
    // JIT is an optional speed-up; the interpreter gives the same matches when it is unavailable.
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    codes_.push_back(code);
  }
}

PreTokenizer::~PreTokenizer() {
  for (void* c : codes_) pcre2_code_free(static_cast<pcre2_code*>(c));
}

std::vector<std::string_view> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string_view> pieces{text};
  for (void* code : codes_) {
    std::vector<std::string_view> next;
    for (std::string_view piece : pieces) split_one(code, piece, next);
    pieces = std::move(next);
  }
  return pieces;
}

void PreTokenizer::split_one(void* compiled, std::string_view text, std::vector<std::string_view>& pieces) {
  auto* code = static_cast<pcre2_code*>(compiled);
  std::unique_ptr<pcre2_match_data, MatchDataDeleter> md(pcre2_match_data_create_from_pattern(code, nullptr));
  if (!md) throw Error(ErrorKind::kRuntime, "pre-tokenizer: out of memory");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t piece_start = 0;  // start of text not yet assigned to a piece
  size_t search_from = 0;
  while (search_from < text.size()) {
    const int rc = pcre2_match(code, subject, text.size(), search_from, 0, md.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof(msg));
      throw Error(ErrorKind::kRuntime, std::string("pre-tokenizer: match failed: ") +
                                           reinterpret_cast<const char*>(msg));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    const size_t start = ov[0];
    const size_t end = ov[1];
    if (end == start) {  // no built-in pattern matches empty, but never loop forever
      search_from = start + 1;
      continue;
    }
    if (start > piece_start) pieces.push_back(text.substr(piece_start, start - piece_start));
    pieces.push_back(text.substr(start, end - start));
    piece_start = search_from = end;
  }
  if (piece_start < text.size()) pieces.push_back(text.substr(piece_start));
}

}  // namespace alspec::tokenizer_detail
