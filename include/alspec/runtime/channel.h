// The only way two devices talk: explicit, tagged messages. This is the boundary a GPU stream
// or a remote process (MPI rank) implements later. Messages of one tag arrive in order; a send
// waits until the peer consumed the previous message of the same tag (one slot per tag).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>

namespace alspec {

class Communicator;

enum class MessageTag : int {
  kPriority = 0,      // one int: 0 accepted sender, 1 receiver, 2 rejecting sender
  kApproxOutput = 1,  // O_spec, the sender's sink+window attention output
  kResidual = 2,      // residual stream of the higher-priority device at a layer boundary
};
inline constexpr int kMessageTagCount = 3;

class Channel {
 public:
  virtual ~Channel() = default;
  virtual void send(MessageTag tag, std::span<const float> data) = 0;
  virtual void recv(MessageTag tag, std::span<float> out) = 0;
  void send_priority(int p) {
    const float v = static_cast<float>(p);
    send(MessageTag::kPriority, {&v, 1});
  }
  int recv_priority() {
    float v = 0;
    recv(MessageTag::kPriority, {&v, 1});
    return static_cast<int>(v);
  }
  // Fails every pending and future send/recv on both ends with Error(kRuntime) carrying `why`.
  virtual void abort(const std::string& why) = 0;
};

// Two connected in-process endpoints (devices in one process; spin-then-sleep waiting).
std::pair<std::unique_ptr<Channel>, std::unique_ptr<Channel>> make_local_channel_pair(size_t max_floats);

// An endpoint talking to rank `peer` of `comm` (e.g. the MPI pair communicator of two ranks in
// different speculation groups). Messages are counted in comm's statistics under the tag's CommOp.
// The caller keeps `comm` alive. abort() makes later calls on this endpoint fail; stopping the
// peer process is the job runner's part (mpirun ends every rank when one exits with an error).
std::unique_ptr<Channel> make_comm_channel(Communicator& comm, int peer);

}  // namespace alspec
