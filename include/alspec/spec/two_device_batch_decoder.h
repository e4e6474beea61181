// A batched decode step with the two-device priority protocol (spec §5) for the alspec rows.
//
// Each alspec sequence lives on both devices (BatchRow::session on device A, BatchRow::peer on
// device B, identical caches) and carries its own priority words (PairState): the protocol runs
// per sequence, so in one step some sequences accept and others reject, and a device is the
// sender for some rows while it is the receiver for others. Per layer, each device:
//   1. exchanges the priority words of all rows with its peer (one message);
//   2. sends the residuals of the rows it wins (higher priority) and takes those it loses (one
//      message each way), so both sides of every sequence start the layer from the same residual;
//   3. runs the pre-attention ops of all its rows in one matmul per weight (both devices, so the
//      caches stay identical);
//   4. for the rows it sends: the speculative kernel (one call per S and predictor), whose O_spec
//      of all these rows goes to the peer in one message as soon as the last call has it, then
//      the exact attention and each row's own check and decision (priority 0 or 2); for the rows
//      it receives: it takes the peer's O_spec message (priority 1);
//   5. runs the post-attention ops, in one matmul per weight, for the rows it received (on O_spec)
//      and the rows it sent and rejected (on O_exact); the rows it sent and accepted are skipped:
//      the peer carries them on.
// After the last layer, each device computes the logits of the rows whose priority it wins.
// Both devices do useful work in a step where roles are mixed (sender work for some rows while
// the peer runs the post-attention ops of others); a row's own chain of ops is exactly its
// single-sequence protocol's, so each sequence's logits, decisions and statistics equal those of
// its unbatched alspec decode (TwoDeviceDecoder), hence of simulate, bit for bit.
//
// Rows in the other modes (exact, static, simulate) have no peer and run on device A alone, in
// the same matmuls as the alspec rows' A side (BatchDecoder's per-row semantics).
#pragma once

#include <array>
#include <memory>
#include <span>
#include <vector>

#include "alspec/model/batch_forward.h"
#include "alspec/spec/batch_decoder.h"

namespace alspec {

class Channel;

class TwoDeviceBatchDecoder {
 public:
  // Throws Error(kInvalidArgument) when a and b are the same device.
  TwoDeviceBatchDecoder(const Model& model, Device& a, Device& b);
  ~TwoDeviceBatchDecoder();
  TwoDeviceBatchDecoder(const TwoDeviceBatchDecoder&) = delete;
  TwoDeviceBatchDecoder& operator=(const TwoDeviceBatchDecoder&) = delete;

  Device& device(int d) const { return *devices_[static_cast<size_t>(d)]; }

  // Advances every row by its token; row i's logits at i * n_vocab, valid until the next call.
  // alspec rows need peer and pair; every row is validated (room, token, devices, the peer's
  // position and options) before any session changes, with Error(kInvalidArgument).
  const float* step(std::span<const BatchRow> rows);

  // Throws Error(kInvalidArgument) unless `row` can run in step(): its session on device A with
  // room for its token; an alspec row with its peer (check_sides), room there too and a pair
  // state of two different priority words in 0..2; a row of another mode without a peer.
  void check_row(const BatchRow& row) const;
  // The two sides of one sequence: `peer` on device B at `session`'s position, with the same S
  // at every layer and the same predictor.
  void check_sides(const Session& session, const Session& peer) const;

 private:
  struct Side;
  void run_side(int d, std::span<const BatchRow> rows);

  const Model& model_;
  std::array<Device*, 2> devices_;
  std::array<std::unique_ptr<Side>, 2> sides_;
  std::unique_ptr<Channel> channel_[2];
  size_t channel_rows_ = 0;   // rows the channels are sized for
  bool channels_ok_ = false;  // false after a failed step: the next one makes new channels
  std::vector<size_t> singles_, pairs_;  // batch rows of each kind, in batch order
  std::vector<float> logits_;            // n_vocab per batch row
};

}  // namespace alspec
