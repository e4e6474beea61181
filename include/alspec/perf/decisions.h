// Accept/reject decisions for the simulated protocol: drawn from a hit rate (seeded), drawn per
// layer from per-layer hit rates, or replayed from a trace of real decisions.
//
// Trace files (`--hit-trace FILE`), detected by content:
//  * decision lines, as `alspec generate --trace` prints them on stderr (and `alspec bench`-style
//    logs that contain them): `trace step=S layer=L ... accept=0|1 [trivial]`. Any line with
//    `layer=` and `accept=` tokens counts (`step=` optional: a new step starts when the layer does
//    not increase); other lines are ignored. Trivial calls (L <= 2S) are skipped: the projection
//    decides triviality from its own context. Replayed step by step, cycling.
//  * JSON lines of `alspec eval` (items.jsonl): per-layer `stats.checks` / `stats.hits` of the
//    records whose `config` equals `config` (e.g. "simulate/S128/l0.1"; required when several
//    configs have checks). Gives per-layer hit rates; decisions are drawn per layer with the seed.
// A trace with a different layer count than the projected model is mapped by relative depth:
// model layer l reads trace layer floor(l * n_trace / n_model).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace alspec::perf {

class Decisions {
 public:
  static Decisions from_hit_rate(double hit_rate, uint64_t seed);
  static Decisions from_layer_rates(std::vector<double> rates, uint64_t seed, std::string description);
  // steps[i][layer]: 1 accept, 0 reject, -1 not in the trace (drawn from that layer's rate).
  static Decisions from_sequence(std::vector<std::vector<int8_t>> steps, uint64_t seed, std::string description);
  // Reads a trace file (formats above). Error(kIo) if unreadable, Error(kInvalidArgument) if it holds no decisions.
  static Decisions load(const std::string& path, const std::string& config, uint64_t seed);

  // Decision for (step, layer) of a model with n_layers layers; deterministic for a given seed.
  bool accept(int64_t step, int layer, int n_layers) const;
  // The hit rate these decisions have on average (over layers, uniformly).
  double mean_hit_rate() const;
  const std::string& description() const { return description_; }
  int trace_layers() const { return static_cast<int>(rates_.size()); }  // 0 for a plain hit rate

  // The same source with every rate replaced by h (break-even searches keep the seed).
  Decisions with_hit_rate(double h) const;

 private:
  double hit_rate_ = 0;
  std::vector<double> rates_;                // per trace layer
  std::vector<std::vector<int8_t>> steps_;   // replay sequence
  uint64_t seed_ = 1;
  std::string description_;
};

}  // namespace alspec::perf
