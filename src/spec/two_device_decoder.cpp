// alspec mode: the two-device priority protocol (shared spec §5). Each device holds its own KV
// cache and residual; they exchange only priority words, the approximate attention output and
// the residual through a Channel. Per layer, both devices:
//   1. exchange priorities;  2. adopt the residual of the higher-priority device, which becomes
//   this layer's sender;  3. norm, QKV, RoPE, KV write (identical on both);  4. sender: speculative
//   flash decode, publishes O_spec as soon as it exists, finishes exact attention, checks, writes
//   priority 0 (accept) or 2 (reject); receiver: takes O_spec, writes priority 1;  5. predicated
//   post-attention ops: receiver on O_spec, rejecting sender on O_exact, accepting sender skips.
// After the last layer one more exchange picks the device whose residual makes the logits.
// The same op list runs in one process on two Devices (TwoDeviceDecoder, LocalChannel) or in two
// groups of MPI ranks (DistributedAlspecDecoder: each rank one side, a Channel to its peer rank,
// tensor parallelism inside the group; the check is summed over the group's ranks).
#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/core/timer.h"
#include "alspec/kernels/attention.h"
#include "alspec/runtime/channel.h"
#include "alspec/runtime/device.h"
#include "decoder.h"
#include "two_device_jobs.h"

namespace alspec {
namespace {

// Priority words of the protocol (spec §5).
enum class Priority : int {
  kAccept = 0,    // sender whose check accepted: skips the post-attention ops
  kReceiver = 1,  // receiver: runs the post-attention ops on O_spec
  kReject = 2,    // sender whose check rejected: runs them on O_exact
};

struct DeviceSide {
  DeviceSide(const Model& model, Device& dev, const SessionOptions& so, Communicator* tp = nullptr)
      : device(dev), session(model, dev, so, tp) {
    const auto& c = model.config();
    exact.resize(static_cast<size_t>(c.q_dim()));
    approx.resize(static_cast<size_t>(c.q_dim()));
    terms.resize(static_cast<size_t>(c.n_head_kv) * 2);
  }
  Device& device;
  Session session;
  std::unique_ptr<Channel> channel;
  Priority priority = Priority::kAccept;
  std::vector<float> exact, approx;
  std::vector<double> terms;
  const float* logits = nullptr;
  SpecStats stats;
  LayerProfile profile;
  std::vector<TraceEvent> trace;
};

// The op list of one decode step on side d (identical on both sides; data and flags differ).
// With always_logits both sides compute the logits (from the consolidated, identical residual).
void run_side_token(DeviceSide& s, int d, int32_t token, const SpecConfig& spec, int64_t step, bool prof,
                    bool keep_trace, bool always_logits) {
  Session& sess = s.session;
  Channel& ch = *s.channel;
  const int n_layers = sess.model().config().n_layers;
  const AttentionShape shape = sess.attention_shape();
  s.logits = nullptr;
  sess.begin_token(token);
  Priority peer = Priority::kAccept;
  double t_boundary = prof ? now_seconds() : 0;
  for (int l = 0; l <= n_layers; ++l) {
    if (prof && l > 0) {
      const double t = now_seconds();
      if (d == 0) {  // device 0 times the critical path between boundaries
        s.profile.layers += 1;
        s.profile.layer += t - t_boundary;
      }
      t_boundary = t;
    }
    // 1-2. Exchange priorities; consolidate the residual from the higher-priority device.
    ch.send_priority(static_cast<int>(s.priority));
    peer = static_cast<Priority>(ch.recv_priority());
    const bool winner = s.priority > peer;
    if (winner) {
      ch.send(MessageTag::kResidual, sess.residual());
    } else {
      ch.recv(MessageTag::kResidual, sess.residual());
    }
    if (l == n_layers) break;
    // 3. Pre-attention ops on both devices keep the KV caches identical.
    const double t0 = prof ? now_seconds() : 0;
    sess.attention_input(l);
    const double t1 = prof ? now_seconds() : 0;
    if (prof && d == 0) s.profile.pre += t1 - t0;
    if (winner) {
      // 4. Sender: approximate output first, published at once; then exact, then check.
      const SpecDecodeQuery q{sess.attention_query(l, s.exact.data()), s.approx.data()};
      SpecResult r{};
      speculative_flash_decode(
          s.device, shape, std::span<const SpecDecodeQuery>(&q, 1), sess.spec_chunk(l), spec.lambda, std::span<SpecResult>(&r, 1),
          [&] {
            if (prof) s.profile.spec_ready += now_seconds() - t1;
            ch.send(MessageTag::kApproxOutput, s.approx);
          },
          s.terms, sess.options().predictor);
      r = check_across_group(sess.tp_comm(), r, s.terms, spec.lambda);
      if (prof) s.profile.attention += now_seconds() - t1;
      bool forced = false;
      const bool accept = decide(spec, step, l, r.accept, &forced);
      s.priority = accept ? Priority::kAccept : Priority::kReject;
      s.stats.record(l, r.full_coverage, accept);
      if (keep_trace) {
        s.trace.push_back({step, l, d, 1 - d, static_cast<int>(s.priority), r.dist2, r.norm2, accept, r.full_coverage,
                           forced});
      }
      // 5. Predicated post-ops: only a rejecting sender continues, on the exact output.
      if (!accept) sess.attention_output(l, s.exact.data());
    } else {
      ch.recv(MessageTag::kApproxOutput, s.approx);
      s.priority = Priority::kReceiver;
      const double t2 = prof ? now_seconds() : 0;
      sess.attention_output(l, s.approx.data());
      if (prof) s.profile.post += now_seconds() - t2;
    }
  }
  // 7. Logits from the higher-priority device (or both); both advance their position.
  s.logits = sess.finish_token(always_logits || s.priority > peer);
}

void emit_trace(const SpecConfig& spec, std::vector<TraceEvent>& events) {
  if (!spec.trace) return;
  std::stable_sort(events.begin(), events.end(), [](const auto& x, const auto& y) { return x.layer < y.layer; });
  for (const auto& e : events) spec.trace(e);
}

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
    sides_[0]->priority = Priority::kReceiver;  // device A is the first sender (spec §5)
    sides_[1]->priority = Priority::kAccept;
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
    run_on_both([&](int d) {
      if (failed_) throw Error(ErrorKind::kRuntime, "alspec devices stopped after an earlier error");
      run_side_token(*sides_[static_cast<size_t>(d)], d, token, spec_, step_, profiling_, bool(spec_.trace), false);
    });
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
      emit_trace(spec_, events);
    }
    ++step_;
    return logits;
  }

 private:
  // job(d) on each side's device; an error on one stops both (channel abort) and this decoder.
  template <typename F>
  void run_on_both(F&& job) {
    try {
      run_on_two_devices({&sides_[0]->device, &sides_[1]->device}, {sides_[0]->channel.get(), sides_[1]->channel.get()},
                         job);
    } catch (...) {
      failed_ = true;
      throw;
    }
  }

  SpecConfig spec_;
  int n_layers_;
  std::array<std::unique_ptr<DeviceSide>, 2> sides_;
  bool failed_ = false;
};

// One trace event as 10 doubles (exact for every field) for the exchange between peer ranks.
constexpr size_t kEventDoubles = 10;
void encode(const TraceEvent& e, double* out) {
  const double v[kEventDoubles] = {static_cast<double>(e.step), static_cast<double>(e.layer),
                                   static_cast<double>(e.sender), static_cast<double>(e.receiver),
                                   static_cast<double>(e.sender_priority), e.dist2, e.norm2,
                                   e.accept ? 1.0 : 0.0, e.trivial ? 1.0 : 0.0, e.forced ? 1.0 : 0.0};
  std::copy_n(v, kEventDoubles, out);
}
TraceEvent decode_event(const double* v) {
  TraceEvent e;
  e.step = static_cast<int64_t>(v[0]);
  e.layer = static_cast<int>(v[1]);
  e.sender = static_cast<int>(v[2]);
  e.receiver = static_cast<int>(v[3]);
  e.sender_priority = static_cast<int>(v[4]);
  e.dist2 = v[5];
  e.norm2 = v[6];
  e.accept = v[7] != 0;
  e.trivial = v[8] != 0;
  e.forced = v[9] != 0;
  return e;
}

class DistributedAlspecDecoder final : public Decoder {
 public:
  DistributedAlspecDecoder(const Model& model, Device& device, const SessionOptions& so, const SpecConfig& spec,
                           ProcessGroups& groups)
      : spec_(spec), n_layers_(model.config().n_layers), groups_(groups) {
    if (groups.n_groups != 2 || groups.pair->size() != 2) {
      throw_invalid_argument("distributed alspec needs two speculation groups (mpirun -np 2T with --tp T)");
    }
    side_ = std::make_unique<DeviceSide>(model, device, so, groups.tp_comm.get());
    side_->channel = make_comm_channel(*groups.pair, 1 - groups.pair->rank());
    side_->priority = groups.group == 0 ? Priority::kReceiver : Priority::kAccept;  // group 0 sends first
    stats_.reset(n_layers_);
  }

  int64_t position() const override { return side_->session.position(); }
  void truncate(int64_t n) override { side_->session.truncate(n); }
  void set_spec(const SpecConfig& spec) override { spec_ = spec; }
  void fill_random(int64_t n, uint64_t seed) override { side_->session.fill_random(n, seed); }

  // Exact on every rank; both groups compute the logits (identical inputs, identical bits), so
  // every rank of the job can sample the same token.
  void prefill(std::span<const int32_t> tokens, PrefillLogits which,
               FunctionRef<void(int64_t, const float*)> on_logits) override {
    side_->session.prefill(tokens, which, on_logits);
  }

  const float* decode(int32_t token) override {
    const int d = groups_.group;
    run_side_token(*side_, d, token, spec_, step_, profiling_, true, true);
    // Both ranks of a pair learn every check of this step (each sender recorded its own).
    std::vector<double> mine(side_->trace.size() * kEventDoubles);
    for (size_t i = 0; i < side_->trace.size(); ++i) encode(side_->trace[i], &mine[i * kEventDoubles]);
    uint64_t n_mine = side_->trace.size(), n_peer = 0;
    Communicator& pair = *groups_.pair;
    const int peer = 1 - pair.rank();
    pair.sendrecv(CommOp::kControl, peer, 100, std::as_bytes(std::span<const uint64_t>(&n_mine, 1)),
                  std::as_writable_bytes(std::span<uint64_t>(&n_peer, 1)));
    std::vector<double> theirs(static_cast<size_t>(n_peer) * kEventDoubles);
    pair.sendrecv(CommOp::kControl, peer, 101, std::as_bytes(std::span<const double>(mine)),
                  std::as_writable_bytes(std::span<double>(theirs)));
    std::vector<TraceEvent> events = side_->trace;
    for (size_t i = 0; i < n_peer; ++i) events.push_back(decode_event(&theirs[i * kEventDoubles]));
    side_->trace.clear();
    side_->stats.reset(n_layers_);
    for (const auto& e : events) stats_.record(e.layer, e.trivial, e.accept);
    profile_.merge(side_->profile);
    side_->profile = {};
    emit_trace(spec_, events);
    ++step_;
    return side_->logits;
  }

 private:
  SpecConfig spec_;
  int n_layers_;
  ProcessGroups& groups_;
  std::unique_ptr<DeviceSide> side_;
};

}  // namespace

std::unique_ptr<Decoder> make_two_device_decoder(const Model& model, Device& a, Device& b, const SessionOptions& so,
                                                 const SpecConfig& spec) {
  return std::make_unique<TwoDeviceDecoder>(model, a, b, so, spec);
}

std::unique_ptr<Decoder> make_distributed_alspec_decoder(const Model& model, Device& device, const SessionOptions& so,
                                                         const SpecConfig& spec, ProcessGroups& groups) {
  return std::make_unique<DistributedAlspecDecoder>(model, device, so, spec, groups);
}

}  // namespace alspec
