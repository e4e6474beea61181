#include "alspec/kernels/memory_bandwidth.h"

#include <gtest/gtest.h>

#include "alspec/core/error.h"

namespace alspec {
namespace {

DeviceOptions two_threads() {
  DeviceOptions o;
  o.threads = 2;
  return o;
}

// Small buffers (cache-resident): checks the bookkeeping and the data checksum, not DRAM speed.
TEST(MemoryBandwidth, MeasuresWholeChunksAndReportsConsistentFigures) {
  Device dev(two_threads());
  const auto r = measure_read_bandwidth(dev, (size_t{3} << 20) + 5, 3);
  EXPECT_EQ(r.bytes, size_t{3} << 20);
  EXPECT_GT(r.seconds, 0.0);
  EXPECT_NEAR(r.gbps, static_cast<double>(r.bytes) / r.seconds / 1e9, 1e-9 * r.gbps);
  const auto w = measure_read_bandwidth_windowed(dev, size_t{4} << 20, size_t{2} << 20, 2);
  EXPECT_EQ(w.best.bytes, size_t{2} << 20);
  EXPECT_GE(w.best.gbps, w.median.gbps);
  EXPECT_THROW(measure_read_bandwidth(dev, 1 << 20, 0), Error);
}

}  // namespace
}  // namespace alspec
