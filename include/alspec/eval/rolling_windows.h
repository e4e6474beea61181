// Rolling windows for perplexity over texts longer than the context.
#pragma once

#include <cstdint>
#include <vector>

namespace alspec::eval {

// Tokens [start, end) are fed; positions [first_scored, end) are scored (each once overall).
// [start, first_scored) is the already-scored overlap that serves as context.
struct RollingWindow {
  int64_t start = 0, end = 0, first_scored = 0;
};

// Window k starts at k*stride and ends at min(start + window, n); the first window scores from
// position 1 (position 0 is BOS or the first token and has no prediction). Every position in
// [1, n) is scored exactly once. Requires window >= 2 and 1 <= stride < window.
std::vector<RollingWindow> plan_rolling_windows(int64_t n_tokens, int64_t window, int64_t stride);

}  // namespace alspec::eval
