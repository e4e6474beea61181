// `alspec project`: per decode token, exact vs ALSpec at each context length.
//
// Devices: a "devices" profile runs exact on tp x sp devices (tensor parallel over all of them)
// and ALSpec on two sides of tp devices each; a "cpu-threads" profile (a device = a group of
// threads sharing the machine) runs exact on one device of `threads` threads and ALSpec on two
// devices of threads / 2 each (tp must be 1), as `alspec bench --attention alspec` does. Those two
// devices share one memory bus: while both stream, each gets at most half of what `threads`
// threads read (each memory rate of a side is capped at half the full thread count's rate).
// A cpu-threads profile with the MPI transport (`alspec project --calibrate-mpi`) models alspec's
// MPI runtime on one host: exact on tp x sp ranks (or exact_tp), ALSpec on two groups of tp ranks,
// every rank `threads` threads, n ranks each capped at 1/n of the host's rates.
// attention_overhead = time at L minus the same mode's time with no KV rows read (the paper's
// "attention overhead"); break_even_hit_rate = the hit rate at which ALSpec equals exact.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "alspec/perf/decisions.h"
#include "alspec/perf/hardware_profile.h"
#include "alspec/perf/model_shape.h"
#include "alspec/perf/op_cost.h"

namespace alspec::perf {

struct ProjectionOptions {
  int tp = 1;
  int sp = 1;        // 1: exact only; 2: exact and ALSpec
  int exact_tp = 0;  // "devices" profiles: TP degree of the exact baseline (0: tp x sp, the same devices)
  int threads = 1;   // cpu-threads profiles: threads of the exact device (split over two for ALSpec);
                     // with an MPI transport: threads of every rank
  int tp_chunks = 0; // chunk-all-gather reduction: C (0: default_tp_chunks of the model's KV heads)
  int spec_chunk = 128;
  int64_t steps = 256;  // simulated decode steps per point
  // > 0: scale every memory rate by this / the profile's mem_bw_gbps at `threads` (a shared
  // machine whose bandwidth moves: pass the read bandwidth probed in the same run).
  double rescale_bw_gbps = 0;
};

struct ModeResult {
  int devices = 0, threads_per_device = 0;
  double ms_per_token = 0;
  double tokens_per_s = 0;
  std::map<std::string, double> breakdown_ms;  // critical path by op kind
  std::vector<OpCost> layer0_ops;              // the first layer's ops on one rank
  std::vector<OpCost> end_ops;
  double hit_rate = 0;                          // ALSpec: accepted / checked in the simulation
  int64_t checks = 0;
};

struct ContextResult {
  int64_t ctx = 0;
  ModeResult exact;
  std::optional<ModeResult> alspec;
  double speedup = 0;  // exact ms / alspec ms
  double exact_attention_overhead_ms = 0, alspec_attention_overhead_ms = 0;
  std::optional<double> break_even_hit_rate;  // empty: ALSpec never pays at this context
};

std::vector<ContextResult> project(const ModelShape& shape, const HardwareProfile& hw, const ProjectionOptions& o,
                                   const std::vector<int64_t>& ctx, const Decisions& decisions);

// {ctx, exact: {ms_per_token, tokens_per_s, breakdown, ...}, alspec: {...}, speedup, attention_overhead}
nlohmann::json to_json(const ContextResult& r);

}  // namespace alspec::perf
