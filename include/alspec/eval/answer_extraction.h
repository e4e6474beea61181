// Answer extraction for exact-match scoring (generate_until, passkey).
#pragma once

#include <string>
#include <vector>

namespace alspec::eval {

struct AnswerRule {
  std::string regex;                // empty: the whole text
  bool last_match = false;          // take the last match instead of the first
  std::vector<std::string> ignore;  // regexes deleted from the answer afterwards
};

// Capture group 1 of the chosen match (the whole match when the regex has no group), with the
// `ignore` patterns deleted and surrounding whitespace trimmed; "" when nothing matches.
// Throws Error(kInvalidArgument) for an invalid regex.
std::string extract_answer(const AnswerRule& rule, const std::string& text);

}  // namespace alspec::eval
