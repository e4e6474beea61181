// The ALSpec two-device priority protocol (docs/alspec-algorithm.md §5) simulated layer by layer
// on a timeline of two sides, each a tensor-parallel group whose ranks run in lock step:
//   boundary:  both sides meet (t = max(t_A, t_B)), exchange priorities and the winner's residual
//              (sp messages), the higher-priority side is this layer's sender;
//   pre:       both sides run norm, QKV, RoPE, KV write;
//   sender:    speculative kernel; O_spec is published after the sink+window rows (spec_ready)
//              and reaches the receiver after the O_spec message; exact attention finishes, the
//              dist2/norm2 sums are all-reduced inside the side (tp > 1), then accept (priority 0,
//              done) or reject (priority 2, runs the post-attention ops on O_exact);
//   receiver:  waits for O_spec, runs the post-attention ops, priority 1.
// After an accept the roles swap; after a reject the sender stays. After the last layer one more
// exchange, then the winner runs the final norm and LM head. Device A sends first; roles carry
// over from token to token. Calls with L <= 2S are trivial: always accepted (as the runtime does).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "alspec/perf/op_cost.h"

namespace alspec::perf {

struct ProtocolLayer {
  LayerOps ops;          // one rank of a side
  double boundary_us = 0;  // priority exchange + residual message
  double send_us = 0;      // O_spec message
  double verify_us = 0;    // dist2/norm2 all-reduce inside a side (0 for tp = 1)
};

struct ProtocolCosts {
  std::vector<OpCost> begin;
  std::vector<ProtocolLayer> layers;
  double final_boundary_us = 0;
  std::vector<OpCost> end;
  bool trivial = false;  // L <= 2S
};

struct RoleEvent {
  int64_t step = 0;
  int layer = 0;
  int sender = 0;    // 0 = device A, 1 = device B
  int receiver = 1;
  int sender_priority = 0;  // 0 accept, 2 reject
  bool accept = false;
};

struct ProtocolRun {
  double us_per_token = 0;
  int64_t checks = 0, hits = 0;  // non-trivial calls and their accepts
  std::map<std::string, double> breakdown_us;  // critical path per token by op kind, plus "wait"
  std::vector<RoleEvent> roles;  // when recorded
};

using DecideFn = std::function<bool(int64_t step, int layer)>;

// Per-layer time on a hit and on a miss (the boundary barrier makes layers independent).
double layer_time_us(const ProtocolLayer& l, bool accept);

ProtocolRun simulate_protocol(const ProtocolCosts& costs, const DecideFn& decide, int64_t steps, bool record_roles);

}  // namespace alspec::perf
