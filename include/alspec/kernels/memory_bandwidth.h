// Memory read bandwidth, measured on the device's threads (never assumed): the yardstick for
// the memory-bound matvec kernels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "alspec/core/page_buffer.h"
#include "alspec/runtime/device.h"

namespace alspec {

struct BandwidthResult {
  double gbps;     // 1e9 bytes per second
  double seconds;  // of the median repetition
  size_t bytes;    // read per repetition
};

// The probe's buffer: whole 1 MiB chunks (huge pages requested, like the KV cache), written by
// dev's threads so pages are faulted in where they are read, and read with the fastest loop we
// have (512-bit loads and software prefetch where available). Exposed for callers that read it
// between other work, e.g. to evict the caches before each timed kernel call and take that read
// as the bandwidth of the moment.
class ReadProbeBuffer {
 public:
  static constexpr size_t kChunkBytes = size_t{1} << 20;
  // bytes is rounded down to whole chunks, at least one.
  ReadProbeBuffer(Device& dev, size_t bytes);
  size_t chunks() const { return chunks_; }
  size_t bytes() const { return chunks_ * kChunkBytes; }
  // Reads chunks [first, first + count) with dev's threads; returns the seconds taken.
  double read(Device& dev, size_t first, size_t count);
  double read_all(Device& dev) { return read(dev, 0, chunks_); }
  // Throws if the reads did not see the written contents (keeps them observable).
  void check() const;

 private:
  size_t chunks_;
  PageBuffer buf_;
  std::vector<uint64_t> sinks_;
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
