#include "alspec/perf/protocol_sim.h"

#include <algorithm>

#include "alspec/core/error.h"

namespace alspec::perf {

namespace {

void add_ops(std::map<std::string, double>& b, const std::vector<OpCost>& ops, double scale = 1.0) {
  for (const auto& o : ops) b[op_kind_name(o.kind)] += o.us * scale;
}

struct LayerTimes {
  double sender_done, receiver_done;
};

LayerTimes times(const ProtocolLayer& l, bool accept) {
  const double pre = sum_us(l.ops.pre), post = sum_us(l.ops.post);
  const double exact_done = pre + l.ops.attention.us + l.verify_us;
  const double sender = accept ? exact_done : exact_done + post;
  const double receiver = pre + l.ops.spec_ready.us + l.send_us + post;
  return {sender, receiver};
}

}  // namespace

double layer_time_us(const ProtocolLayer& l, bool accept) {
  const LayerTimes t = times(l, accept);
  return l.boundary_us + std::max(t.sender_done, t.receiver_done);
}

ProtocolRun simulate_protocol(const ProtocolCosts& c, const DecideFn& decide, int64_t steps, bool record_roles) {
  if (steps < 1) throw_invalid_argument("protocol simulation needs >= 1 step");
  ProtocolRun run;
  double t_a = 0, t_b = 0;  // clocks of device A and B
  int sender = 0;           // device A sends first (priority 1 vs 0)
  auto& b = run.breakdown_us;
  for (int64_t step = 0; step < steps; ++step) {
    // Embedding on both sides.
    const double begin = sum_us(c.begin);
    t_a += begin;
    t_b += begin;
    add_ops(b, c.begin);
    for (size_t li = 0; li < c.layers.size(); ++li) {
      const ProtocolLayer& l = c.layers[li];
      const int layer = static_cast<int>(li);
      const double t0 = std::max(t_a, t_b) + l.boundary_us;
      b["sp_messages"] += l.boundary_us;
      const bool accept = c.trivial ? true : decide(step, layer);
      if (!c.trivial) {
        run.checks += 1;
        run.hits += accept ? 1 : 0;
      }
      const LayerTimes t = times(l, accept);
      double& ts = sender == 0 ? t_a : t_b;
      double& tr = sender == 0 ? t_b : t_a;
      ts = t0 + t.sender_done;
      tr = t0 + t.receiver_done;
      // Critical path attribution: pre on both; then the longer of the two branches.
      add_ops(b, l.ops.pre);
      if (t.sender_done >= t.receiver_done) {
        b["attention"] += l.ops.attention.us;
        b["tp_collectives"] += l.verify_us;
        if (!accept) add_ops(b, l.ops.post);
      } else {
        b["attention"] += l.ops.spec_ready.us;
        b["sp_messages"] += l.send_us;
        add_ops(b, l.ops.post);
      }
      if (record_roles) run.roles.push_back({step, layer, sender, 1 - sender, accept ? 0 : 2, accept});
      if (accept) sender = 1 - sender;  // the receiver's result wins; it sends next
    }
    const double t_end = std::max(t_a, t_b) + c.final_boundary_us + sum_us(c.end);
    b["sp_messages"] += c.final_boundary_us;
    add_ops(b, c.end);
    t_a = t_b = t_end;
  }
  run.us_per_token = t_a / static_cast<double>(steps);
  for (auto& [k, v] : b) v /= static_cast<double>(steps);
  return run;
}

}  // namespace alspec::perf
