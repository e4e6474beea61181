#include "alspec/spec/spec_stats.h"

#include <cstddef>

namespace alspec {

int64_t SpecStats::checks() const {
  int64_t n = 0;
  for (const auto& l : per_layer) n += l.checks;
  return n;
}
int64_t SpecStats::hits() const {
  int64_t n = 0;
  for (const auto& l : per_layer) n += l.hits;
  return n;
}
int64_t SpecStats::trivial() const {
  int64_t n = 0;
  for (const auto& l : per_layer) n += l.trivial;
  return n;
}
double SpecStats::hit_rate() const {
  const int64_t c = checks();
  return c == 0 ? 0.0 : static_cast<double>(hits()) / static_cast<double>(c);
}
void SpecStats::record(int layer, bool trivial, bool accept) {
  if (static_cast<std::size_t>(layer) >= per_layer.size()) per_layer.resize(static_cast<std::size_t>(layer) + 1);
  auto& l = per_layer[static_cast<std::size_t>(layer)];
  if (trivial) {
    ++l.trivial;
    return;
  }
  ++l.checks;
  if (accept) ++l.hits;
}
void SpecStats::merge(const SpecStats& o) {
  if (per_layer.size() < o.per_layer.size()) per_layer.resize(o.per_layer.size());
  for (std::size_t i = 0; i < o.per_layer.size(); ++i) {
    per_layer[i].checks += o.per_layer[i].checks;
    per_layer[i].hits += o.per_layer[i].hits;
    per_layer[i].trivial += o.per_layer[i].trivial;
  }
}
void SpecStats::reset(int n_layers) { per_layer.assign(static_cast<std::size_t>(n_layers), {}); }

void LayerProfile::merge(const LayerProfile& o) {
  layers += o.layers;
  pre += o.pre;
  spec_ready += o.spec_ready;
  attention += o.attention;
  post += o.post;
  layer += o.layer;
}

}  // namespace alspec
