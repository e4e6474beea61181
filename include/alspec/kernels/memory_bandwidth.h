// Memory read bandwidth, measured on the device's threads (never assumed): the yardstick for
// the memory-bound matvec kernels.
#pragma once

#include <cstddef>

#include "alspec/runtime/device.h"

namespace alspec {

struct BandwidthResult {
  double gbps;     // 1e9 bytes per second
  double seconds;  // of the median repetition
  size_t bytes;    // read per repetition
};

// Reads a freshly written buffer of `bytes` (rounded down to 1 MiB chunks, at least one) with all
// threads of dev, `repetitions` times; returns the median repetition. Choose bytes well above the
// last-level cache to measure DRAM.
BandwidthResult measure_read_bandwidth(Device& dev, size_t bytes = 512u << 20, int repetitions = 5);

}  // namespace alspec
