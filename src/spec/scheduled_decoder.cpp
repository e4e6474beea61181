// One sequence of a BatchScheduler: a Decoder whose prefills and decode steps run on the
// scheduler's loop, batched with the other sequences.
#include <memory>
#include <vector>

#include "alspec/spec/batch_scheduler.h"
#include "decoder.h"

namespace alspec {
namespace {

class ScheduledDecoder final : public Decoder {
 public:
  ScheduledDecoder(BatchScheduler& scheduler, const SessionOptions& so, const SpecConfig& spec)
      : scheduler_(scheduler), session_(scheduler.model(), scheduler.device(), so), spec_(spec) {
    // alspec on a two-device scheduler: the sequence lives on both devices (identical caches).
    if (scheduler.second_device() != nullptr && spec.mode == AttentionMode::kAlspec) {
      peer_ = std::make_unique<Session>(scheduler.model(), *scheduler.second_device(), so);
    }
    logits_.resize(static_cast<size_t>(scheduler.model().config().n_vocab));
    stats_.reset(scheduler.model().config().n_layers);
  }
  ~ScheduledDecoder() override { scheduler_.leave(session_); }

  void prefill(std::span<const int32_t> tokens, PrefillLogits which,
               FunctionRef<void(int64_t, const float*)> on_logits) override {
    scheduler_.prefill(session_, tokens, which, on_logits, peer_.get());
  }
  const float* decode(int32_t token) override {
    scheduler_.decode(session_, token, spec_, step_, stats_, logits_.data(), peer_.get(), peer_ ? &pair_ : nullptr);
    ++step_;
    return logits_.data();
  }
  int64_t position() const override { return session_.position(); }
  void truncate(int64_t n) override {
    scheduler_.leave(session_);  // a new request on this sequence: the next step need not wait for it
    session_.truncate(n);
    if (peer_) peer_->truncate(n);
  }
  void fill_random(int64_t n, uint64_t seed) override {
    session_.fill_random(n, seed);
    if (peer_) peer_->fill_random(n, seed);
  }
  // Engine::set_speculation keeps alspec sequences on two devices and the others on one.
  void set_spec(const SpecConfig& spec) override { spec_ = spec; }

 private:
  BatchScheduler& scheduler_;
  Session session_;
  std::unique_ptr<Session> peer_;  // on the second device (alspec on a two-device scheduler)
  PairState pair_;
  SpecConfig spec_;
  std::vector<float> logits_;
};

}  // namespace

std::unique_ptr<Decoder> make_scheduled_decoder(BatchScheduler& scheduler, const SessionOptions& so,
                                                const SpecConfig& spec) {
  return std::make_unique<ScheduledDecoder>(scheduler, so, spec);
}

}  // namespace alspec
