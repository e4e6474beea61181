// `alspec project --calibrate`: measures this machine with the project's own probes and kernels
// and returns a cpu-threads profile whose every number names the measurement that produced it.
// Per thread count: read bandwidth (measure_read_bandwidth), matvec GB/s per weight type
// (benchmark_matvec), the fixed cost of one dispatched op (a tiny cache-resident matvec),
// attention KV GB/s (flash_decode, 8 query / 8 KV heads of 128, f16, 16K rows: memory-bound),
// attention FLOP rate (32 query / 2 KV heads: compute-bound), attention call overhead (64 rows),
// serial element-wise cost (RMSNorm) and SwiGLU per element; with two devices of that many
// threads running at once, their matvec rate over one alone (concurrent_factor); for each model
// of `shapes`, every distinct matvec shape and the attention of its head geometry at
// `attention_rows` rows (f16 KV or the shape's kv_type). Between two one-thread devices:
// the Channel's one-way message latency and bandwidth (ping-pong). Between MPI ranks:
// calibrate_mpi_links (run under mpirun by `alspec project --calibrate-mpi`).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "alspec/perf/hardware_profile.h"
#include "alspec/perf/model_shape.h"
#include "alspec/runtime/communicator.h"

namespace alspec::perf {

struct CalibrationOptions {
  std::vector<int> threads{1, 2};
  // Models (one entry per tensor-parallel shard to be projected) whose own matvec shapes and
  // attention geometry are measured too (matvec_shape_gbps, attention_shape_us).
  std::vector<ModelShape> shapes;
  std::vector<int64_t> attention_rows{64, 256, 1024, 4096, 16384};
  std::string name;  // profile name; default: the CPU model from /proc/cpuinfo
  size_t matvec_bytes = size_t{256} << 20;  // weights cycled per matvec measurement
  int reps = 3;
};

HardwareProfile calibrate(const CalibrationOptions& o, const std::function<void(const std::string&)>& log);

// Measures the links between the ranks of `world` (>= 2 ranks; every rank calls it, in step)
// and makes `p` a profile of alspec's MPI runtime: transport mpi, reduction chunk-all-gather,
// sp_link = ranks 0 and 1 ping-pong (one-way latency of 4 bytes; bandwidth of 1 MiB messages),
// tp_link = fitted to all-gathers over all ranks (per-step latency from 4 floats per rank,
// bandwidth from 16K floats per rank). Each number's source names the measurement.
void calibrate_mpi_links(HardwareProfile& p, Communicator& world, const std::function<void(const std::string&)>& log);

// "model name" of /proc/cpuinfo, or "unknown CPU".
std::string cpu_model_name();

}  // namespace alspec::perf
