#include "alspec/eval/answer_extraction.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <memory>
#include <vector>

#include "alspec/core/error.h"

namespace alspec::eval {
namespace {

// PCRE2 (already used by the tokenizer) rather than std::regex: Perl-style patterns as in the LM
// Evaluation Harness, and no libstdc++ <regex> warnings under sanitizers.
struct CodeFree {
  void operator()(pcre2_code* c) const { pcre2_code_free(c); }
};
struct MatchFree {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};
using Code = std::unique_ptr<pcre2_code, CodeFree>;

Code compile(const std::string& pattern) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* c = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_MATCH_INVALID_UTF,
                                &err, &offset, nullptr);
  if (!c) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw_invalid_argument("invalid regex \"" + pattern + "\" at offset " + std::to_string(offset) + ": " +
                           reinterpret_cast<const char*>(msg));
  }
  return Code(c);
}

// Every match as (group-1-or-whole start, end, whole start, whole end), in order.
struct Match {
  size_t begin, end, whole_begin, whole_end;
};

std::vector<Match> find_all(const pcre2_code* code, const std::string& text) {
  std::unique_ptr<pcre2_match_data, MatchFree> md(pcre2_match_data_create_from_pattern(code, nullptr));
  std::vector<Match> out;
  size_t at = 0;
  while (at <= text.size()) {
    const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), at, 0, md.get(), nullptr);
    if (rc < 0) break;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    Match m{ov[0], ov[1], ov[0], ov[1]};
    if (rc > 1 && ov[2] != PCRE2_UNSET) {
      m.begin = ov[2];
      m.end = ov[3];
    }
    out.push_back(m);
    at = ov[1] > ov[0] ? ov[1] : ov[1] + 1;  // an empty match moves on by one byte
  }
  return out;
}

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

}  // namespace

std::string extract_answer(const AnswerRule& rule, const std::string& text) {
  std::string answer = text;
  if (!rule.regex.empty()) {
    const Code code = compile(rule.regex);
    const auto matches = find_all(code.get(), text);
    if (matches.empty()) return "";
    const Match& m = rule.last_match ? matches.back() : matches.front();
    answer = text.substr(m.begin, m.end - m.begin);
  }
  for (const auto& pattern : rule.ignore) {
    const Code code = compile(pattern);
    std::string kept;
    size_t from = 0;
    for (const Match& m : find_all(code.get(), answer)) {
      kept += answer.substr(from, m.whole_begin - from);
      from = m.whole_end;
    }
    answer = kept + answer.substr(from);
  }
  return trim(answer);
}

}  // namespace alspec::eval
