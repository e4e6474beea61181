// Collective and point-to-point message costs: fixed + steps x latency + bytes on the busiest
// link / bandwidth, with each algorithm's step count.
//   ring all-reduce (reduce-scatter + all-gather): 2(N-1) steps, 2(N-1)/N x bytes per link
//   tree all-reduce (reduce + broadcast, binary):  2 ceil(log2 N) steps, 2 ceil(log2 N) x bytes
//   ring all-gather (bytes = the gathered total):  N-1 steps, (N-1)/N x bytes
//   point-to-point:                                1 step, bytes
// N = 1 costs nothing. Times in microseconds.
#pragma once

#include "alspec/perf/hardware_profile.h"

namespace alspec::perf {

struct CollectiveCost {
  int steps = 0;
  double link_bytes = 0;  // bytes over the busiest link
  double us = 0;
};

CollectiveCost all_reduce(const Link& link, CollectiveAlgorithm alg, int n_devices, double bytes);
CollectiveCost all_gather(const Link& link, int n_devices, double total_bytes);
CollectiveCost p2p(const Link& link, double bytes);

}  // namespace alspec::perf
