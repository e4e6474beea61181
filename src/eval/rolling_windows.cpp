#include "alspec/eval/rolling_windows.h"

#include <algorithm>
#include <string>

#include "alspec/core/error.h"

namespace alspec::eval {

std::vector<RollingWindow> plan_rolling_windows(int64_t n_tokens, int64_t window, int64_t stride) {
  if (window < 2) throw_invalid_argument("rolling window of " + std::to_string(window) + " tokens: need at least 2");
  if (stride < 1 || stride >= window) {
    throw_invalid_argument("rolling stride " + std::to_string(stride) + ": need 1 <= stride < window (" +
                           std::to_string(window) + ")");
  }
  std::vector<RollingWindow> out;
  if (n_tokens < 2) return out;
  int64_t scored_until = 1;
  for (int64_t start = 0; scored_until < n_tokens; start += stride) {
    const int64_t end = std::min(start + window, n_tokens);
    out.push_back({start, end, std::max(scored_until, start + 1)});
    scored_until = end;
  }
  return out;
}

}  // namespace alspec::eval
