// The one JSON shape of speculation statistics, printed by the server ("alspec" object), the CLI
// (`generate --json`, `score --json`: "speculation") and `alspec eval` (each sweep point's
// result). Header-only because the spec library does not link nlohmann_json; the three front
// ends do.
#pragma once

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "alspec/runtime/process_groups.h"
#include "alspec/spec/engine.h"
#include "alspec/spec/spec_config.h"
#include "alspec/spec/spec_stats.h"

namespace alspec {

// hits / checks, null where nothing was checked (exact mode, or every call trivial): a rate of 0
// would read as "every check failed".
inline nlohmann::json hit_rate_json(int64_t hits, int64_t checks) {
  if (checks <= 0) return nullptr;
  return static_cast<double>(hits) / static_cast<double>(checks);
}

// {checks, hits, trivial, hit_rate, per_layer: [{layer, checks, hits, trivial, hit_rate}]}
inline nlohmann::json spec_stats_json(const SpecStats& s) {
  nlohmann::json layers = nlohmann::json::array();
  for (std::size_t i = 0; i < s.per_layer.size(); ++i) {
    const LayerSpecStats& l = s.per_layer[i];
    layers.push_back({{"layer", i},
                      {"checks", l.checks},
                      {"hits", l.hits},
                      {"trivial", l.trivial},
                      {"hit_rate", hit_rate_json(l.hits, l.checks)}});
  }
  return {{"checks", s.checks()},
          {"hits", s.hits()},
          {"trivial", s.trivial()},
          {"hit_rate", hit_rate_json(s.hits(), s.checks())},
          {"per_layer", std::move(layers)}};
}

// 0.1f as 0.1 rather than 0.10000000149011612: the float's shortest decimal form.
inline double json_decimal(float v) {
  char buf[32];
  for (int digits = 1; digits <= 9; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, static_cast<double>(v));
    if (std::strtof(buf, nullptr) == v) break;
  }
  return std::strtod(buf, nullptr);
}

// spec_stats_json plus the engine's settings: {attention, lambda, spec_chunk, predictor, devices, [layer_spec_chunk], [ranks, tp,
// speculation_groups, tp_chunks under mpirun], ...}.
inline nlohmann::json speculation_json(const Engine& engine, const SpecStats& s) {
  nlohmann::json j = {{"attention", attention_mode_name(engine.mode())},
                      {"lambda", json_decimal(engine.options().spec.lambda)},
                      {"spec_chunk", engine.spec_chunk()},
                      {"predictor", spec_predictor_name(engine.options().predictor)},
                      {"devices", engine.n_devices()}};
  // Per-layer S (--spec-budgets); spec_chunk is then their mean budget.
  if (!engine.options().layer_spec_chunk.empty()) j["layer_spec_chunk"] = engine.options().layer_spec_chunk;
  // Continuous batching: the sequence ran on a BatchScheduler (alspec there runs the two-device
  // protocol on a two-device scheduler, else simulate on one device, with bitwise the same output).
  if (engine.batched()) j["batched"] = true;
  if (const ProcessGroups* g = engine.options().groups; g != nullptr && g->distributed()) {
    // Under mpirun: the job's layout (alspec's two sides are the two groups of ranks).
    j["ranks"] = g->world_size;
    j["tp"] = g->tp;
    j["speculation_groups"] = g->n_groups;
    j["tp_chunks"] = engine.model().shard().chunks;
  }
  j.update(spec_stats_json(s));
  return j;
}

}  // namespace alspec
