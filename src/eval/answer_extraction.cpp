#include "alspec/eval/answer_extraction.h"

#include <regex>

#include "alspec/core/error.h"

namespace alspec::eval {
namespace {

std::regex compile(const std::string& pattern) {
  try {
    return std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw_invalid_argument("invalid regex \"" + pattern + "\": " + e.what());
  }
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
    const std::regex re = compile(rule.regex);
    std::smatch chosen;
    bool found = false;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
      chosen = *it;
      found = true;
      if (!rule.last_match) break;
    }
    if (!found) return "";
    answer = chosen.size() > 1 ? chosen[1].str() : chosen[0].str();
  }
  for (const auto& pattern : rule.ignore) answer = std::regex_replace(answer, compile(pattern), "");
  return trim(answer);
}

}  // namespace alspec::eval
