// The seam between the model and a transport: a group of ranks (MPI processes today; NCCL
// ranks or GPU streams would implement the same interface) and the few operations tensor
// parallelism and the two-group ALSpec protocol need. Every call is counted and timed per CommOp
// (comm_stats.h). Calls on one communicator must come from one thread at a time, in the same
// order on every rank of the group (as with MPI).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "alspec/runtime/comm_stats.h"

namespace alspec {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Transport name for reports ("single", "mpi").
  virtual const char* transport() const = 0;

  // all[r * mine.size() ...] = rank r's `mine`, for every rank (all.size() == size() * mine.size()).
  void allgather(CommOp op, std::span<const float> mine, std::span<float> all);
  void allgather(CommOp op, std::span<const double> mine, std::span<double> all);
  void allgather(CommOp op, std::span<const uint64_t> mine, std::span<uint64_t> all);
  // Variable blocks: rank r contributes counts[r] floats, placed one after another in rank order.
  void allgatherv(CommOp op, std::span<const float> mine, std::span<const int> counts, std::span<float> all);
  // Point to point (blocking; messages between two ranks with one tag arrive in order).
  void send(CommOp op, int dest, int tag, std::span<const std::byte> data);
  void recv(CommOp op, int source, int tag, std::span<std::byte> out);
  // Both at once (no ordering deadlock for exchanges between two ranks).
  void sendrecv(CommOp op, int peer, int tag, std::span<const std::byte> data, std::span<std::byte> out);
  void barrier();
  // Stops every rank of the job with `why` on stderr and a non-zero exit; never returns.
  [[noreturn]] virtual void abort(const std::string& why, int exit_code) = 0;

  const CommStats& stats() const { return stats_; }
  void reset_stats() { stats_.reset(); }

 protected:
  // Byte-level primitives the transports implement; `all` holds size() blocks of mine.size().
  virtual void do_allgather(std::span<const std::byte> mine, std::span<std::byte> all) = 0;
  virtual void do_allgatherv(std::span<const std::byte> mine, std::span<const int> byte_counts,
                             std::span<std::byte> all) = 0;
  virtual void do_send(int dest, int tag, std::span<const std::byte> data) = 0;
  virtual void do_recv(int source, int tag, std::span<std::byte> out) = 0;
  virtual void do_sendrecv(int peer, int tag, std::span<const std::byte> data, std::span<std::byte> out) = 0;
  virtual void do_barrier() = 0;

 private:
  CommStats stats_;
};

// A group of one rank (no transport): collectives copy, point to point is an error.
std::unique_ptr<Communicator> make_single_communicator();

}  // namespace alspec
