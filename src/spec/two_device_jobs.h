// Internal: one job on each of two devices that talk through a Channel pair (the two-device
// protocol), with failures crossing threads as plain messages.
#pragma once

#include <array>

#include "alspec/core/function_ref.h"
#include "alspec/runtime/channel.h"
#include "alspec/runtime/device.h"

namespace alspec {

// Runs job(0) on devices[0]'s queue and job(1) on devices[1]'s and waits for both. A job that
// throws aborts its channel end, so the peer's pending exchange fails too instead of waiting
// forever; the original failure is rethrown (as Error with its kind), not the peer's "peer
// device stopped" echo. The channels stay aborted: make a new pair before the next job.
void run_on_two_devices(const std::array<Device*, 2>& devices, const std::array<Channel*, 2>& channels,
                        FunctionRef<void(int device)> job);

}  // namespace alspec
