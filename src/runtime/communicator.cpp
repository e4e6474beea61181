#include "alspec/runtime/communicator.h"

#include <cstring>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/core/timer.h"

namespace alspec {
namespace {

// Counts one call of `op` and adds its wall time when it ends.
class Scope {
 public:
  Scope(CommCounter& c, size_t sent, size_t received) : c_(c), t0_(now_seconds()) {
    c_.calls += 1;
    c_.bytes_sent += static_cast<int64_t>(sent);
    c_.bytes_received += static_cast<int64_t>(received);
  }
  ~Scope() { c_.seconds += now_seconds() - t0_; }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  CommCounter& c_;
  double t0_;
};

void check_gather_size(CommOp op, size_t mine, size_t all, int size) {
  if (all != mine * static_cast<size_t>(size)) {
    throw Error(ErrorKind::kRuntime, std::string("allgather (") + comm_op_name(op) + "): output holds " +
                                         std::to_string(all) + " bytes, expected " + std::to_string(size) + " x " +
                                         std::to_string(mine));
  }
}

class SingleCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  const char* transport() const override { return "single"; }
  [[noreturn]] void abort(const std::string& why, int) override { throw Error(ErrorKind::kRuntime, why); }

 protected:
  void do_allgather(std::span<const std::byte> mine, std::span<std::byte> all) override {
    if (!mine.empty()) std::memcpy(all.data(), mine.data(), mine.size());
  }
  void do_allgatherv(std::span<const std::byte> mine, std::span<const int>, std::span<std::byte> all) override {
    if (!mine.empty()) std::memcpy(all.data(), mine.data(), mine.size());
  }
  void do_send(int dest, int, std::span<const std::byte>) override { no_peer(dest); }
  void do_recv(int source, int, std::span<std::byte>) override { no_peer(source); }
  void do_sendrecv(int peer, int, std::span<const std::byte>, std::span<std::byte>) override { no_peer(peer); }
  void do_barrier() override {}

 private:
  [[noreturn]] static void no_peer(int r) {
    throw Error(ErrorKind::kRuntime, "single-rank communicator: no rank " + std::to_string(r) + " to talk to");
  }
};

}  // namespace

void Communicator::allgather(CommOp op, std::span<const float> mine, std::span<float> all) {
  check_gather_size(op, mine.size_bytes(), all.size_bytes(), size());
  Scope s(stats_[op], mine.size_bytes() * static_cast<size_t>(size() - 1), all.size_bytes() - mine.size_bytes());
  do_allgather(std::as_bytes(mine), std::as_writable_bytes(all));
}

void Communicator::allgather(CommOp op, std::span<const double> mine, std::span<double> all) {
  check_gather_size(op, mine.size_bytes(), all.size_bytes(), size());
  Scope s(stats_[op], mine.size_bytes() * static_cast<size_t>(size() - 1), all.size_bytes() - mine.size_bytes());
  do_allgather(std::as_bytes(mine), std::as_writable_bytes(all));
}

void Communicator::allgather(CommOp op, std::span<const uint64_t> mine, std::span<uint64_t> all) {
  check_gather_size(op, mine.size_bytes(), all.size_bytes(), size());
  Scope s(stats_[op], mine.size_bytes() * static_cast<size_t>(size() - 1), all.size_bytes() - mine.size_bytes());
  do_allgather(std::as_bytes(mine), std::as_writable_bytes(all));
}

void Communicator::allgatherv(CommOp op, std::span<const float> mine, std::span<const int> counts, std::span<float> all) {
  if (counts.size() != static_cast<size_t>(size())) {
    throw Error(ErrorKind::kRuntime, std::string("allgatherv (") + comm_op_name(op) + "): " +
                                         std::to_string(counts.size()) + " counts for " + std::to_string(size()) +
                                         " ranks");
  }
  size_t total = 0;
  std::vector<int> byte_counts(counts.size());
  for (size_t r = 0; r < counts.size(); ++r) {
    total += static_cast<size_t>(counts[r]);
    byte_counts[r] = counts[r] * static_cast<int>(sizeof(float));
  }
  if (total != all.size() || static_cast<size_t>(counts[static_cast<size_t>(rank())]) != mine.size()) {
    throw Error(ErrorKind::kRuntime, std::string("allgatherv (") + comm_op_name(op) + "): sizes do not match the counts");
  }
  Scope s(stats_[op], mine.size_bytes() * static_cast<size_t>(size() - 1), all.size_bytes() - mine.size_bytes());
  do_allgatherv(std::as_bytes(mine), byte_counts, std::as_writable_bytes(all));
}

void Communicator::send(CommOp op, int dest, int tag, std::span<const std::byte> data) {
  Scope s(stats_[op], data.size(), 0);
  do_send(dest, tag, data);
}

void Communicator::recv(CommOp op, int source, int tag, std::span<std::byte> out) {
  Scope s(stats_[op], 0, out.size());
  do_recv(source, tag, out);
}

void Communicator::sendrecv(CommOp op, int peer, int tag, std::span<const std::byte> data, std::span<std::byte> out) {
  Scope s(stats_[op], data.size(), out.size());
  do_sendrecv(peer, tag, data, out);
}

void Communicator::barrier() {
  Scope s(stats_[CommOp::kControl], 0, 0);
  do_barrier();
}

std::unique_ptr<Communicator> make_single_communicator() { return std::make_unique<SingleCommunicator>(); }

}  // namespace alspec
