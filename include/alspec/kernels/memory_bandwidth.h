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

// As above, but each pass is timed per window of window_bytes (1 MiB multiples) cycled through the
// buffer, like a matvec over one matrix among many. On a shared machine the fastest windows are the
// least disturbed by other processes; compare them with equally sized matvec timings.
struct WindowedBandwidth {
  BandwidthResult median;  // median window
  BandwidthResult best;    // fastest window
};
WindowedBandwidth measure_read_bandwidth_windowed(Device& dev, size_t bytes, size_t window_bytes, int passes);

}  // namespace alspec
