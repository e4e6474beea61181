// `alspec project --calibrate`: measures this machine with the project's own probes and kernels
// and returns a cpu-threads profile whose every number names the measurement that produced it.
// Per thread count: read bandwidth (measure_read_bandwidth), matvec GB/s per weight type
// (benchmark_matvec), the fixed cost of one dispatched op (a tiny cache-resident matvec),
// attention KV GB/s (flash_decode, 8 query / 8 KV heads of 128, f16, 16K rows: memory-bound),
// attention FLOP rate (32 query / 2 KV heads: compute-bound), attention call overhead (64 rows),
// serial element-wise cost (RMSNorm) and SwiGLU per element. Between two one-thread devices:
// the Channel's one-way message latency and bandwidth (ping-pong). Collectives for MPI are not
// measured yet (no MPI transport in this project).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "alspec/perf/hardware_profile.h"

namespace alspec::perf {

struct CalibrationOptions {
  std::vector<int> threads{1, 2};
  std::string name;  // profile name; default: the CPU model from /proc/cpuinfo
  size_t matvec_bytes = size_t{256} << 20;  // weights cycled per matvec measurement
  int reps = 3;
};

HardwareProfile calibrate(const CalibrationOptions& o, const std::function<void(const std::string&)>& log);

// "model name" of /proc/cpuinfo, or "unknown CPU".
std::string cpu_model_name();

}  // namespace alspec::perf
