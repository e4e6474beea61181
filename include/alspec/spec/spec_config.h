// How attention is computed during decode, and the speculation knobs.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "alspec/kernels/spec_predictor.h"

namespace alspec {

enum class AttentionMode {
  kExact,     // exact attention: the baseline
  kStatic,    // always use the sink+window approximation (StreamingLLM-style, lossy)
  kSimulate,  // one device computes both, uses the approximation where the check passes
  kAlspec,    // two devices: the receiver runs the post-attention ops on the approximation
};

AttentionMode parse_attention_mode(const std::string& s);  // throws Error(kInvalidArgument)
const char* attention_mode_name(AttentionMode m);

// One verified speculation, for the debug trace.
struct TraceEvent {
  int64_t step = 0;       // decode step (token index since the engine was created)
  int layer = 0;
  int sender = 0;         // device index running exact attention (0 in single-device modes)
  int receiver = -1;      // device running post-ops on the approximation (-1: none)
  int sender_priority = 0;    // priority the sender wrote after the check (0 accept, 2 reject)
  double dist2 = 0, norm2 = 0;
  bool accept = false;
  bool trivial = false;   // L <= 2S: approximation covers the whole context (exact)
  bool forced = false;    // decision forced by a test hook
};

struct SpecConfig {
  AttentionMode mode = AttentionMode::kExact;
  float lambda = 0.1f;
  int spec_chunk = 0;  // S; 0 = default_spec_chunk(ctx_size)
  // Test hook (fault injection): return true/false to force accept/reject at (step, layer).
  std::function<std::optional<bool>(int64_t step, int layer)> force_decision;
  // Debug trace sink: called once per verified attention call, in (step, layer) order.
  std::function<void(const TraceEvent&)> trace;
};

// Default S for a context size: a power of two in [16, 128], about ctx/32, so that the sink and
// window together cover at most ~1/16 of a full context (128 = the reference value, reached at
// ctx >= 4096). Speculation only happens at positions with L > 2S.
int default_spec_chunk(int64_t ctx_size);
// The default for a predictor: the page predictor needs S >= kQuestMinSpecChunk.
int default_spec_chunk(int64_t ctx_size, SpecPredictor predictor);

// Throws Error(kInvalidArgument) for lambda < 0 / not finite or S < 0.
void validate(const SpecConfig& c);

}  // namespace alspec
