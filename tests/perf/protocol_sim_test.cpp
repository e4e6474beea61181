// The simulated priority protocol: hand-computed layer times, and the role sequence against the
// real two-device runtime under the same forced decisions.
#include <gtest/gtest.h>

#include <memory>
#include <optional>

#include "alspec/model/model.h"
#include "alspec/perf/protocol_sim.h"
#include "alspec/spec/engine.h"
#include "alspec/spec/generate.h"
#include "alspec/tokenizer/tokenizer.h"
#include "repo_paths.h"

namespace alspec::perf {
namespace {

OpCost op(double us, OpKind kind = OpKind::kMatvec) { return {"op", kind, 0, 0, us, "memory"}; }

// pre 10, attention 100 (O_spec ready at 20), post 50; boundary 3, O_spec message 2, verify 1.
ProtocolCosts costs(int n_layers) {
  ProtocolCosts c;
  ProtocolLayer l;
  l.ops.pre = {op(10)};
  l.ops.attention = op(100, OpKind::kAttention);
  l.ops.spec_ready = op(20, OpKind::kAttention);
  l.ops.post = {op(50)};
  l.boundary_us = 3;
  l.send_us = 2;
  l.verify_us = 1;
  c.layers.assign(static_cast<size_t>(n_layers), l);
  c.begin = {op(4, OpKind::kElementwise)};
  c.end = {op(30)};
  c.final_boundary_us = 3;
  return c;
}

TEST(ProtocolSim, LayerTimesByHand) {
  const ProtocolCosts c = costs(1);
  // Hit: 3 + 10 + max(100 + 1, 20 + 2 + 50) = 114. Miss: 3 + 10 + max(101 + 50, 72) = 164.
  EXPECT_DOUBLE_EQ(layer_time_us(c.layers[0], true), 114);
  EXPECT_DOUBLE_EQ(layer_time_us(c.layers[0], false), 164);
  const ProtocolRun hit = simulate_protocol(c, [](int64_t, int) { return true; }, 10, false);
  EXPECT_DOUBLE_EQ(hit.us_per_token, 4 + 114 + 3 + 30);
  EXPECT_EQ(hit.checks, 10);
  EXPECT_EQ(hit.hits, 10);
  const ProtocolRun miss = simulate_protocol(c, [](int64_t, int) { return false; }, 10, false);
  EXPECT_DOUBLE_EQ(miss.us_per_token, 4 + 164 + 3 + 30);
  // Critical path on a miss: pre + attention + verify + post, plus messages, begin and end.
  EXPECT_DOUBLE_EQ(miss.breakdown_us.at("attention"), 100);
  EXPECT_DOUBLE_EQ(miss.breakdown_us.at("sp_messages"), 6);
  EXPECT_DOUBLE_EQ(miss.breakdown_us.at("matvec"), 10 + 50 + 30);
}

TEST(ProtocolSim, ReceiverBoundLayerWhenAttentionIsShort) {
  ProtocolCosts c = costs(1);
  c.layers[0].ops.attention = op(30, OpKind::kAttention);
  // Hit: max(31, 72) = 72: the receiver's post-attention ops bound the layer.
  EXPECT_DOUBLE_EQ(layer_time_us(c.layers[0], true), 3 + 10 + 72);
  c.trivial = true;  // L <= 2S: always accepted, not counted as checks
  const ProtocolRun r = simulate_protocol(c, [](int64_t, int) { return false; }, 4, false);
  EXPECT_EQ(r.checks, 0);
  EXPECT_DOUBLE_EQ(r.us_per_token, 4 + 85 + 3 + 30);
}

// The same forced decisions as tests/spec/alspec_runtime_test.cpp: the simulated roles must be the
// runtime's, event by event (sender, receiver, the priority the sender wrote).
TEST(ProtocolSim, RoleSequenceMatchesTwoDeviceRuntime) {
  auto hook = [](int64_t step, int layer) -> std::optional<bool> { return (step * 7 + layer * 3) % 5 < 2; };
  const auto model = Model::load(testing_paths::stories260k_gguf());
  EngineOptions o;
  o.threads = 1;
  o.ctx_size = 256;
  o.kv_type = DType::F32;
  o.spec.mode = AttentionMode::kAlspec;
  o.spec.lambda = 0.1f;
  o.spec.spec_chunk = 16;
  o.spec.force_decision = hook;
  std::vector<TraceEvent> trace;
  o.spec.trace = [&trace](const TraceEvent& e) { trace.push_back(e); };
  {
    Engine engine(*model, o);
    GenerateRequest req;
    req.prompt = model->tokenizer().encode("Once upon a time, there was a little dog", true);
    req.n_predict = 40;
    req.stop_at_eos = false;
    req.sampling.temperature = 0.0f;
    generate(engine, req);
  }
  const int n_layers = model->config().n_layers;
  ASSERT_EQ(trace.size(), static_cast<size_t>(39 * n_layers));
  const ProtocolRun sim = simulate_protocol(
      costs(n_layers), [&](int64_t step, int layer) { return *hook(step, layer); }, 39, true);
  ASSERT_EQ(sim.roles.size(), trace.size());
  int switches = 0;
  for (size_t i = 0; i < trace.size(); ++i) {
    const TraceEvent& e = trace[i];
    const RoleEvent& r = sim.roles[i];
    ASSERT_EQ(r.step, e.step);
    ASSERT_EQ(r.layer, e.layer);
    EXPECT_EQ(r.accept, e.accept) << "step " << e.step << " layer " << e.layer;
    EXPECT_EQ(r.sender, e.sender) << "step " << e.step << " layer " << e.layer;
    EXPECT_EQ(r.receiver, e.receiver);
    EXPECT_EQ(r.sender_priority, e.sender_priority);
    if (i > 0 && r.sender != sim.roles[i - 1].sender) ++switches;
  }
  EXPECT_GT(switches, 10);  // the sequence exercises both roles on both devices
}

}  // namespace
}  // namespace alspec::perf
