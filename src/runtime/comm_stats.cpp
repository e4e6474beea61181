#include "alspec/runtime/comm_stats.h"

namespace alspec {

const char* comm_op_name(CommOp op) {
  switch (op) {
    case CommOp::kAttnReduce: return "attn_reduce";
    case CommOp::kMlpReduce: return "mlp_reduce";
    case CommOp::kLogits: return "logits";
    case CommOp::kCheck: return "check";
    case CommOp::kPriority: return "priority";
    case CommOp::kApproxOutput: return "approx_output";
    case CommOp::kResidual: return "residual";
    case CommOp::kControl: return "control";
  }
  return "?";
}

CommCounter CommStats::total() const {
  CommCounter t;
  for (const auto& c : ops) {
    t.calls += c.calls;
    t.bytes_sent += c.bytes_sent;
    t.bytes_received += c.bytes_received;
    t.seconds += c.seconds;
  }
  return t;
}

void CommStats::merge(const CommStats& o) {
  for (size_t i = 0; i < ops.size(); ++i) {
    ops[i].calls += o.ops[i].calls;
    ops[i].bytes_sent += o.ops[i].bytes_sent;
    ops[i].bytes_received += o.ops[i].bytes_received;
    ops[i].seconds += o.ops[i].seconds;
  }
}

}  // namespace alspec
