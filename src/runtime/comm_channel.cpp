// Channel over a Communicator: each tagged message is one point-to-point message with the same tag.
#include <string>

#include "alspec/core/error.h"
#include "alspec/runtime/channel.h"
#include "alspec/runtime/communicator.h"

namespace alspec {
namespace {

CommOp op_of(MessageTag tag) {
  switch (tag) {
    case MessageTag::kPriority: return CommOp::kPriority;
    case MessageTag::kApproxOutput: return CommOp::kApproxOutput;
    case MessageTag::kResidual: return CommOp::kResidual;
  }
  return CommOp::kControl;
}

class CommChannel final : public Channel {
 public:
  CommChannel(Communicator& comm, int peer) : comm_(comm), peer_(peer) {}

  void send(MessageTag tag, std::span<const float> data) override {
    check();
    comm_.send(op_of(tag), peer_, static_cast<int>(tag), std::as_bytes(data));
  }
  void recv(MessageTag tag, std::span<float> out) override {
    check();
    comm_.recv(op_of(tag), peer_, static_cast<int>(tag), std::as_writable_bytes(out));
  }
  void abort(const std::string& why) override {
    if (why_.empty()) why_ = why.empty() ? "aborted" : why;
  }

 private:
  void check() const {
    if (!why_.empty()) throw Error(ErrorKind::kRuntime, "channel to rank " + std::to_string(peer_) + " stopped: " + why_);
  }
  Communicator& comm_;
  int peer_;
  std::string why_;
};

}  // namespace

std::unique_ptr<Channel> make_comm_channel(Communicator& comm, int peer) {
  return std::make_unique<CommChannel>(comm, peer);
}

}  // namespace alspec
