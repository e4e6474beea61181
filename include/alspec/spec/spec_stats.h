// Speculation statistics: checks (non-trivial verified attention calls), hits (accepted), and
// trivial calls (L <= 2S: the approximation is the exact attention; counted apart, not as hits).
#pragma once

#include <cstdint>
#include <vector>

namespace alspec {

struct LayerSpecStats {
  int64_t checks = 0;
  int64_t hits = 0;
  int64_t trivial = 0;
};

struct SpecStats {
  std::vector<LayerSpecStats> per_layer;
  int64_t checks() const;
  int64_t hits() const;
  int64_t trivial() const;
  double hit_rate() const;  // hits / checks; 0 when no checks
  void record(int layer, bool trivial, bool accept);
  void merge(const SpecStats& other);
  void reset(int n_layers);
};

// Where decode time goes, summed over layers and steps (filled when EngineOptions::profile).
// In alspec mode `layer` is the wall time between consecutive layer boundaries on device 0:
// the measured per-layer critical path.
struct LayerProfile {
  int64_t layers = 0;       // layer executions timed
  double pre = 0;           // norm, QKV, RoPE, KV write
  double spec_ready = 0;    // kernel start -> approximate output published (speculative kernels)
  double attention = 0;     // whole attention kernel
  double post = 0;          // o_proj, residual, norm, MLP, residual
  double layer = 0;         // whole layer
  void merge(const LayerProfile& o);
};

}  // namespace alspec
