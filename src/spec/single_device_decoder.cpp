// exact, static and simulate: every layer's attention on one device.
#include <vector>

#include "alspec/core/timer.h"
#include "alspec/kernels/attention.h"
#include "decoder.h"

namespace alspec {

bool decide(const SpecConfig& spec, int64_t step, int layer, bool kernel_accept, bool* forced) {
  *forced = false;
  if (spec.force_decision) {
    if (auto d = spec.force_decision(step, layer)) {
      *forced = true;
      return *d;
    }
  }
  return kernel_accept;
}

bool settle_speculation(const SpecConfig& spec, int64_t step, int layer, const SpecResult& check, SpecStats& stats) {
  bool forced = false;
  const bool accept = decide(spec, step, layer, check.accept, &forced);
  const bool use_approx = spec.mode == AttentionMode::kStatic || accept;
  stats.record(layer, check.full_coverage, use_approx);
  if (spec.trace) {
    spec.trace(TraceEvent{step, layer, 0, -1, accept ? 0 : 2, check.dist2, check.norm2, accept, check.full_coverage, forced});
  }
  return use_approx;
}

SpecResult check_across_group(Communicator& tp, const SpecResult& local, std::span<const double> terms, float lambda) {
  if (tp.size() == 1) return local;
  std::vector<double> all(terms.size() * static_cast<size_t>(tp.size()));
  tp.allgather(CommOp::kCheck, terms, all);
  SpecResult r = local;
  r.dist2 = 0;
  r.norm2 = 0;
  for (size_t g = 0; g < all.size(); g += 2) {
    r.dist2 += all[g];
    r.norm2 += all[g + 1];
  }
  r.accept = speculation_accepts(r.dist2, r.norm2, lambda);
  return r;
}

namespace {

class SingleDeviceDecoder final : public Decoder {
 public:
  SingleDeviceDecoder(const Model& model, Device& device, const SessionOptions& so, const SpecConfig& spec,
                      Communicator* tp)
      : session_(model, device, so, tp), spec_(spec) {
    const auto& c = model.config();
    exact_.resize(static_cast<size_t>(c.q_dim()));
    approx_.resize(static_cast<size_t>(c.q_dim()));
    terms_.resize(static_cast<size_t>(c.n_head_kv) * 2);
    stats_.reset(c.n_layers);
  }

  void prefill(std::span<const int32_t> tokens, PrefillLogits which,
               FunctionRef<void(int64_t, const float*)> on_logits) override {
    session_.prefill(tokens, which, on_logits);
  }
  int64_t position() const override { return session_.position(); }
  void truncate(int64_t n) override { session_.truncate(n); }
  void fill_random(int64_t n, uint64_t seed) override { session_.fill_random(n, seed); }
  void set_spec(const SpecConfig& spec) override { spec_ = spec; }

  const float* decode(int32_t token) override {
    const auto& c = session_.model().config();
    session_.begin_token(token);
    const AttentionShape shape = session_.attention_shape();
    for (int l = 0; l < c.n_layers; ++l) {
      const int S = session_.spec_chunk(l);
      const double t0 = profiling_ ? now_seconds() : 0;
      session_.attention_input(l);
      const double t1 = profiling_ ? now_seconds() : 0;
      double t_ready = t1;
      const float* attn = exact_.data();
      if (spec_.mode == AttentionMode::kExact) {
        const DecodeQuery q = session_.attention_query(l, exact_.data());
        flash_decode(session_.device(), shape, std::span<const DecodeQuery>(&q, 1), S, session_.options().predictor);
      } else {
        const SpecDecodeQuery q{session_.attention_query(l, exact_.data()), approx_.data()};
        SpecResult r{};
        speculative_flash_decode(
            session_.device(), shape, std::span<const SpecDecodeQuery>(&q, 1), S, spec_.lambda,
            std::span<SpecResult>(&r, 1),
            [&] {
              if (profiling_) t_ready = now_seconds();
            },
            terms_, session_.options().predictor);
        r = check_across_group(session_.tp_comm(), r, terms_, spec_.lambda);
        if (settle_speculation(spec_, step_, l, r, stats_)) attn = approx_.data();
      }
      const double t2 = profiling_ ? now_seconds() : 0;
      session_.attention_output(l, attn);
      if (profiling_) {
        const double t3 = now_seconds();
        profile_.layers += 1;
        profile_.pre += t1 - t0;
        profile_.spec_ready += t_ready - t1;
        profile_.attention += t2 - t1;
        profile_.post += t3 - t2;
        profile_.layer += t3 - t0;
      }
    }
    ++step_;
    return session_.finish_token();
  }

 private:
  Session session_;
  SpecConfig spec_;
  std::vector<float> exact_, approx_;
  std::vector<double> terms_;
};

}  // namespace

std::unique_ptr<Decoder> make_single_device_decoder(const Model& model, Device& device, const SessionOptions& so,
                                                    const SpecConfig& spec, Communicator* tp) {
  return std::make_unique<SingleDeviceDecoder>(model, device, so, spec, tp);
}

}  // namespace alspec
