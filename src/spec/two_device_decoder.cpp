// alspec mode: the two-device priority protocol (shared spec §5). Each device holds its own KV
// cache and residual; they exchange only priority words, the approximate attention output and
// the residual through a Channel. Per layer, both devices:
//   1. exchange priorities;  2. adopt the residual of the higher-priority device, which becomes
//   this layer's sender;  3. norm, QKV, RoPE, KV write (identical on both);  4. sender: speculative
//   flash decode, publishes O_spec as soon as it exists, finishes exact attention, checks, writes
//   priority 0 (accept) or 2 (reject); receiver: takes O_spec, writes priority 1;  5. predicated
//   post-attention ops: receiver on O_spec, rejecting sender on O_exact, accepting sender skips.
// After the last layer one more exchange picks the device whose residual makes the logits.
#include <algorithm>
#include <array>
#include <future>
#include <string>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/core/timer.h"
#include "alspec/kernels/attention.h"
#include "alspec/runtime/channel.h"
#include "alspec/runtime/device.h"
#include "decoder.h"

namespace alspec {
namespace {

constexpr int kReceiverPriority = 1;
constexpr int kAcceptPriority = 0;
constexpr int kRejectPriority = 2;

struct DeviceSide {
  DeviceSide(const Model& model, Device& dev, const SessionOptions& so) : device(dev), session(model, dev, so) {
    const auto& c = model.config();
    exact.resize(static_cast<size_t>(c.q_dim()));
    approx.resize(static_cast<size_t>(c.q_dim()));
  }
  Device& device;
  Session session;
  std::unique_ptr<Channel> channel;
  int priority = 0;
  std::vector<float> exact, approx;
  const float* logits = nullptr;
  SpecStats stats;
  LayerProfile profile;
  std::vector<TraceEvent> trace;
};

class TwoDeviceDecoder final : public Decoder {
 public:
  TwoDeviceDecoder(const Model& model, Device& a, Device& b, const SessionOptions& so, const SpecConfig& spec)
      : spec_(spec), n_layers_(model.config().n_layers) {
    sides_[0] = std::make_unique<DeviceSide>(model, a, so);
    sides_[1] = std::make_unique<DeviceSide>(model, b, so);
    const size_t max_floats = static_cast<size_t>(std::max(model.config().q_dim(), model.config().n_embd));
    auto [ca, cb] = make_local_channel_pair(max_floats);
    sides_[0]->channel = std::move(ca);
    sides_[1]->channel = std::move(cb);
    sides_[0]->priority = kReceiverPriority;  // device A is the first sender (spec §5)
    sides_[1]->priority = kAcceptPriority;
    stats_.reset(n_layers_);
  }

  int64_t position() const override { return sides_[0]->session.position(); }
  void truncate(int64_t n) override {
    for (auto& s : sides_) s->session.truncate(n);
  }
  void set_spec(const SpecConfig& spec) override { spec_ = spec; }
  void fill_random(int64_t n, uint64_t seed) override {
    run_on_both([&](int d) { sides_[static_cast<size_t>(d)]->session.fill_random(n, seed); });
  }

  void prefill(std::span<const int32_t> tokens, PrefillLogits which,
               FunctionRef<void(int64_t, const float*)> on_logits) override {
    // Exact on both devices (identical caches); logits come from device A.
    run_on_both([&](int d) {
      auto& s = *sides_[static_cast<size_t>(d)];
      if (d == 0) {
        s.session.prefill(tokens, which, on_logits);
      } else {
        s.session.prefill(tokens, PrefillLogits::kNone, [](int64_t, const float*) {});
      }
    });
  }

  const float* decode(int32_t token) override {
    run_on_both([&](int d) { run_token(d, token); });
    const float* logits = nullptr;
    for (auto& s : sides_) {
      if (s->logits) logits = s->logits;
      stats_.merge(s->stats);
      s->stats.reset(n_layers_);
      profile_.merge(s->profile);
      s->profile = {};
    }
    if (spec_.trace) {
      std::vector<TraceEvent> events;
      for (auto& s : sides_) {
        events.insert(events.end(), s->trace.begin(), s->trace.end());
        s->trace.clear();
      }
      std::sort(events.begin(), events.end(), [](const auto& x, const auto& y) { return x.layer < y.layer; });
      for (const auto& e : events) spec_.trace(e);
    }
    ++step_;
    return logits;
  }

 private:
  // Runs job(d) as a job on each device's queue; an error on one stops both (channel abort).
  // Failures cross threads as plain messages (no shared exception objects).
  template <typename F>
  void run_on_both(F&& job) {
    struct Failure {
      bool failed = false;
      ErrorKind kind = ErrorKind::kRuntime;
      std::string message;
    };
    std::array<Failure, 2> failures;
    std::array<std::future<void>, 2> futs;
    for (int d = 0; d < 2; ++d) {
      auto& side = *sides_[static_cast<size_t>(d)];
      auto& failure = failures[static_cast<size_t>(d)];
      futs[static_cast<size_t>(d)] = side.device.submit([&, d] {
        try {
          job(d);
        } catch (const Error& e) {
          failure = {true, e.kind(), e.what()};
        } catch (const std::exception& e) {
          failure = {true, ErrorKind::kRuntime, e.what()};
        }
        if (failure.failed) side.channel->abort("device " + side.device.name() + ": " + failure.message);
      });
    }
    for (auto& f : futs) f.get();
    // Prefer the original failure over the peer's "peer device stopped" echo.
    const Failure* report = nullptr;
    for (const auto& f : failures) {
      if (!f.failed) continue;
      const bool echo = f.message.rfind("peer device stopped", 0) == 0;
      if (!report || (!echo && report->message.rfind("peer device stopped", 0) == 0)) report = &f;
    }
    if (report) {
      failed_ = true;
      throw Error(report->kind, report->message);
    }
  }

  // The op list of one decode step on device d (identical on both devices; data and flags differ).
  void run_token(int d, int32_t token) {
    if (failed_) throw Error(ErrorKind::kRuntime, "alspec devices stopped after an earlier error");
    auto& s = *sides_[static_cast<size_t>(d)];
    Session& sess = s.session;
    Channel& ch = *s.channel;
    const AttentionShape shape = sess.attention_shape();
    const int S = sess.options().spec_chunk;
    s.logits = nullptr;
    sess.begin_token(token);
    int peer = 0;
    const bool prof = profiling_;
    double t_boundary = prof ? now_seconds() : 0;
    for (int l = 0; l <= n_layers_; ++l) {
      if (prof && l > 0) {
        const double t = now_seconds();
        if (d == 0) {  // device 0 times the critical path between boundaries
          s.profile.layers += 1;
          s.profile.layer += t - t_boundary;
        }
        t_boundary = t;
      }
      // 1-2. Exchange priorities; consolidate the residual from the higher-priority device.
      ch.send_priority(s.priority);
      peer = ch.recv_priority();
      const bool winner = s.priority > peer;
      if (winner) {
        ch.send(MessageTag::kResidual, sess.residual());
      } else {
        ch.recv(MessageTag::kResidual, sess.residual());
      }
      if (l == n_layers_) break;
      // 3. Pre-attention ops on both devices keep the KV caches identical.
      const double t0 = prof ? now_seconds() : 0;
      sess.attention_input(l);
      const double t1 = prof ? now_seconds() : 0;
      if (prof && d == 0) s.profile.pre += t1 - t0;
      if (winner) {
        // 4. Sender: approximate output first, published at once; then exact, then check.
        const SpecDecodeQuery q{sess.attention_query(l, s.exact.data()), s.approx.data()};
        SpecResult r{};
        speculative_flash_decode(s.device, shape, std::span<const SpecDecodeQuery>(&q, 1), S, spec_.lambda,
                                 std::span<SpecResult>(&r, 1),
                                 [&] {
                                   if (prof) s.profile.spec_ready += now_seconds() - t1;
                                   ch.send(MessageTag::kApproxOutput, s.approx);
                                 });
        if (prof) s.profile.attention += now_seconds() - t1;
        bool forced = false;
        const bool accept = decide(spec_, step_, l, r.accept, &forced);
        s.priority = accept ? kAcceptPriority : kRejectPriority;
        s.stats.record(l, r.full_coverage, accept);
        if (spec_.trace) s.trace.push_back({step_, l, d, 1 - d, s.priority, r.dist2, r.norm2, accept, r.full_coverage, forced});
        // 5. Predicated post-ops: only a rejecting sender continues, on the exact output.
        if (!accept) sess.attention_output(l, s.exact.data());
      } else {
        ch.recv(MessageTag::kApproxOutput, s.approx);
        s.priority = kReceiverPriority;
        const double t2 = prof ? now_seconds() : 0;
        sess.attention_output(l, s.approx.data());
        if (prof) s.profile.post += now_seconds() - t2;
      }
    }
    // 7. Logits from the higher-priority device; both advance their position.
    s.logits = sess.finish_token(s.priority > peer);
  }

  SpecConfig spec_;
  int n_layers_;
  std::array<std::unique_ptr<DeviceSide>, 2> sides_;
  bool failed_ = false;
};

}  // namespace

std::unique_ptr<Decoder> make_two_device_decoder(const Model& model, Device& a, Device& b, const SessionOptions& so,
                                                 const SpecConfig& spec) {
  return std::make_unique<TwoDeviceDecoder>(model, a, b, so, spec);
}

}  // namespace alspec
