#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <mutex>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/runtime/channel.h"
#include "runtime/spin_wait.h"

namespace alspec {
namespace {

// One single-slot mailbox per (direction, tag). `state` counts: even = empty, odd = full.
struct Mailbox {
  std::atomic<uint64_t> state{0};
  std::vector<float> data;
  size_t size = 0;
};

struct Shared {
  explicit Shared(size_t max_floats) {
    for (auto& dir : boxes) {
      for (auto& b : dir) b.data.resize(max_floats);
    }
  }
  std::array<std::array<Mailbox, kMessageTagCount>, 2> boxes;  // [destination endpoint][tag]
  std::atomic<bool> aborted{false};
  std::mutex why_mu;
  std::string why;
};

class LocalChannel final : public Channel {
 public:
  LocalChannel(std::shared_ptr<Shared> s, int self) : s_(std::move(s)), self_(self) {}

  void send(MessageTag tag, std::span<const float> data) override {
    Mailbox& box = s_->boxes[static_cast<size_t>(1 - self_)][static_cast<size_t>(tag)];
    if (data.size() > box.data.size()) throw Error(ErrorKind::kRuntime, "channel: message larger than the slot");
    const uint64_t st = wait_until(box.state, [](uint64_t v) { return (v & 1u) == 0; });
    std::memcpy(box.data.data(), data.data(), data.size() * sizeof(float));
    box.size = data.size();
    box.state.store(st + 1, std::memory_order_release);
    box.state.notify_all();
  }

  void recv(MessageTag tag, std::span<float> out) override {
    Mailbox& box = s_->boxes[static_cast<size_t>(self_)][static_cast<size_t>(tag)];
    const uint64_t st = wait_until(box.state, [](uint64_t v) { return (v & 1u) == 1; });
    if (box.size != out.size()) {
      abort("channel: message size mismatch");
      throw Error(ErrorKind::kRuntime, "channel: message size mismatch");
    }
    std::memcpy(out.data(), box.data.data(), out.size() * sizeof(float));
    box.state.store(st + 1, std::memory_order_release);
    box.state.notify_all();
  }

  void abort(const std::string& why) override {
    {
      std::lock_guard lock(s_->why_mu);
      if (s_->why.empty()) s_->why = why;
    }
    s_->aborted.store(true, std::memory_order_release);
    for (auto& dir : s_->boxes) {
      for (auto& b : dir) {
        b.state.fetch_add(2, std::memory_order_acq_rel);  // changes the value, keeps parity: wakes waiters
        b.state.notify_all();
      }
    }
  }

 private:
  template <typename Pred>
  uint64_t wait_until(const std::atomic<uint64_t>& a, Pred ready) {
    return detail::spin_then_wait(a, ready, [this] { check_aborted(); });
  }

  void check_aborted() {
    if (s_->aborted.load(std::memory_order_acquire)) {
      std::lock_guard lock(s_->why_mu);
      throw Error(ErrorKind::kRuntime, "peer device stopped: " + s_->why);
    }
  }

  std::shared_ptr<Shared> s_;
  int self_;
};

}  // namespace

std::pair<std::unique_ptr<Channel>, std::unique_ptr<Channel>> make_local_channel_pair(size_t max_floats) {
  auto shared = std::make_shared<Shared>(max_floats);
  return {std::make_unique<LocalChannel>(shared, 0), std::make_unique<LocalChannel>(shared, 1)};
}

}  // namespace alspec
