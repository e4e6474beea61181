#include "alspec/spec/spec_config.h"

#include <algorithm>
#include <cmath>

#include "alspec/core/error.h"

namespace alspec {

AttentionMode parse_attention_mode(const std::string& s) {
  if (s == "exact") return AttentionMode::kExact;
  if (s == "static") return AttentionMode::kStatic;
  if (s == "simulate") return AttentionMode::kSimulate;
  if (s == "alspec") return AttentionMode::kAlspec;
  throw_invalid_argument("unknown attention mode '" + s + "' (expected exact, static, simulate or alspec)");
}

const char* attention_mode_name(AttentionMode m) {
  switch (m) {
    case AttentionMode::kExact: return "exact";
    case AttentionMode::kStatic: return "static";
    case AttentionMode::kSimulate: return "simulate";
    case AttentionMode::kAlspec: return "alspec";
  }
  return "?";
}

int default_spec_chunk(int64_t ctx_size) {
  int s = 16;
  while (s < 128 && static_cast<int64_t>(s) * 2 * 32 <= ctx_size) s *= 2;
  return s;
}

int default_spec_chunk(int64_t ctx_size, SpecPredictor predictor) {
  const int s = default_spec_chunk(ctx_size);
  return predictor == SpecPredictor::kQuestPages ? std::max(s, kQuestMinSpecChunk) : s;
}

void validate(const SpecConfig& c) {
  if (!std::isfinite(c.lambda) || c.lambda < 0.0f) throw_invalid_argument("--lambda must be a finite value >= 0");
  if (c.spec_chunk < 0) throw_invalid_argument("--spec-chunk must be >= 0");
}

}  // namespace alspec
