// Counters of one process's communication: per kind of collective or message, how many calls,
// how many bytes this rank sent and received, and the wall time spent inside the calls (waiting
// for slower ranks included). An allgather over n ranks counts this rank's block as sent n - 1
// times and the other ranks' blocks as received, whatever the algorithm the transport uses.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace alspec {

// What a collective or message is for (the rows of `alspec bench`'s communication table).
enum class CommOp : int {
  kAttnReduce = 0,  // o_proj partial products (allgather, summed in chunk order)
  kMlpReduce,       // down-projection partial products
  kLogits,          // vocabulary slices of the LM head (allgather)
  kCheck,           // per-KV-group dist2/norm2 of the speculation check (allgather)
  kPriority,        // priority word to the peer rank (alspec)
  kApproxOutput,    // O_spec of this rank's heads to the peer rank (alspec)
  kResidual,        // residual stream to the peer rank (alspec)
  kControl,         // setup checks, statistics exchange, barriers
};
inline constexpr int kCommOpCount = 8;
const char* comm_op_name(CommOp op);

struct CommCounter {
  int64_t calls = 0;
  int64_t bytes_sent = 0;
  int64_t bytes_received = 0;
  double seconds = 0;
};

struct CommStats {
  std::array<CommCounter, kCommOpCount> ops{};
  CommCounter& operator[](CommOp op) { return ops[static_cast<size_t>(op)]; }
  const CommCounter& operator[](CommOp op) const { return ops[static_cast<size_t>(op)]; }
  CommCounter total() const;
  void merge(const CommStats& o);
  void reset() { ops = {}; }
};

}  // namespace alspec
