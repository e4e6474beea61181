// Throughput of matvec on matrices that do not fit in the caches, for comparison with
// measure_read_bandwidth in the same run (a memory-bound matvec should approach it).
#pragma once

#include <cstddef>
#include <cstdint>

#include "alspec/core/dtype.h"
#include "alspec/runtime/device.h"

namespace alspec {

struct MatvecBenchmarkResult {
  double seconds;         // median time of one matvec
  double gbps;            // weight bytes per matvec / seconds, in 1e9 bytes per second
  double best_gbps;       // the same for the fastest matvec (least disturbed by other load)
  size_t matrix_bytes;    // weight bytes of one matrix
  int distinct_matrices;  // cycled round-robin so that each matvec streams from DRAM
};

// Allocates ceil(min_total_bytes / matrix size) random matrices of type x rows x cols (valid
// blocks, arbitrary values) and times `repetitions` passes of matvec over all of them; with
// tokens > 1, of matmul with that many activation rows (a batched decode pass's products).
MatvecBenchmarkResult benchmark_matvec(Device& dev, DType type, int64_t rows, int64_t cols,
                                       size_t min_total_bytes = size_t{1} << 30, int repetitions = 5,
                                       int64_t tokens = 1);

}  // namespace alspec
