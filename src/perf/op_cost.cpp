#include "alspec/perf/op_cost.h"

#include <algorithm>

#include "alspec/core/error.h"
#include "alspec/perf/collectives.h"
#include "alspec/perf/tp_split.h"

namespace alspec::perf {

const char* op_kind_name(OpKind k) {
  switch (k) {
    case OpKind::kMatvec: return "matvec";
    case OpKind::kAttention: return "attention";
    case OpKind::kElementwise: return "elementwise";
    case OpKind::kCollective: return "tp_collectives";
    case OpKind::kMessage: return "sp_messages";
  }
  return "?";
}

double sum_us(const std::vector<OpCost>& ops) {
  double t = 0;
  for (const auto& o : ops) t += o.us;
  return t;
}

namespace {
// overhead + max(memory, compute), naming the larger of the three terms.
OpCost roofline(std::string name, OpKind kind, double bytes, double flops, double gbps, double gflops,
                double overhead_us) {
  const double mem_us = bytes / (gbps * 1e3);   // bytes / (GB/s) in us
  const double cmp_us = flops / (gflops * 1e3);
  OpCost c{std::move(name), kind, bytes, flops, overhead_us + std::max(mem_us, cmp_us), ""};
  c.bound = overhead_us >= std::max(mem_us, cmp_us) ? "overhead" : (mem_us >= cmp_us ? "memory" : "compute");
  return c;
}
}  // namespace

OpCost matvec_cost(const DeviceRates& r, const std::string& name, const std::vector<const MatrixShape*>& fused,
                   bool cached) {
  double bytes = 0, flops = 0, mem_us = 0;
  for (const auto* m : fused) {
    bytes += m->bytes;
    // A measured per-type rate is the kernel's throughput, its arithmetic included: no FLOP ceiling.
    const std::string key = matvec_shape_key(m->type, static_cast<int64_t>(m->rows), static_cast<int64_t>(m->cols));
    if (r.matvec_gbps.count(m->type) == 0 && r.matvec_shape_gbps.count(key) == 0) flops += 2.0 * m->rows * m->cols;
    mem_us += m->bytes / (r.matvec_rate_gbps(m->type, key, cached) * 1e3);  // each matrix at its own shape's or type's rate
  }
  const double eff_gbps = mem_us > 0 ? bytes / (mem_us * 1e3) : r.mem_bw_gbps.value;
  return roofline(name, OpKind::kMatvec, bytes, flops, eff_gbps, r.peak_tflops.value * 1e3, r.op_overhead_us.value);
}

OpCost attention_cost(const DeviceRates& r, const ModelShape& s, double rows, const std::string& name, bool cached) {
  const double bytes = rows * s.kv_bytes_per_token_layer();
  const double flops = 4.0 * s.n_head * s.head_dim * rows;
  // The measured table is of cold caches (flushed before each call): not for a cache-resident model.
  const auto us = cached ? std::nullopt
                         : r.attention_shape_time_us(attention_shape_key(s.n_head, s.n_head_kv, s.head_dim, s.kv_type), rows);
  if (us) {
    return {name, OpKind::kAttention, bytes, flops, *us, "measured"};  // this head geometry's calibrated time
  }
  return roofline(name, OpKind::kAttention, bytes, flops, r.attention_rate_gbps(s.n_head_kv), r.attention_rate_gflops(),
                  r.attention_overhead());
}

OpCost elementwise_cost(const DeviceRates& r, const std::string& name, double elements, double ns_per_element) {
  const double work = elements * ns_per_element * 1e-3;
  const double oh = r.elementwise_overhead();
  return {name, OpKind::kElementwise, elements * 4.0, 0, oh + work, oh >= work ? "overhead" : "compute"};
}

namespace {
// A rank's o or down product as the runtime runs it: `k` matvecs of one column chunk each.
OpCost row_parallel(const DeviceRates& r, const std::string& name, const MatrixShape& m, int k, bool cached) {
  if (k <= 1) return matvec_cost(r, name, {&m}, cached);
  const MatrixShape chunk = column_chunk(m, k);
  OpCost c = matvec_cost(r, name, {&chunk}, cached);
  c.bytes *= k;
  c.flops *= k;
  c.us *= k;
  return c;
}
}  // namespace

TokenOps token_ops(const ModelShape& s, const DeviceRates& r, const CollectiveSpec& coll, int tp, double L,
                   int spec_chunk) {
  if (tp > 1 && !coll.tp_link) throw_invalid_argument("--tp " + std::to_string(tp) + " needs collectives.tp_link in the profile");
  const double ew = r.elementwise_ns();
  // Compute since the previous collective: each collective waits link.wait() x it for the slower rank.
  double since = 0;
  auto add = [&](std::vector<OpCost>& v, OpCost c) {
    since += c.us;
    v.push_back(std::move(c));
  };
  auto collective = [&](std::vector<OpCost>& v, const std::string& name, const CollectiveCost& c) {
    v.push_back({name, OpKind::kCollective, c.link_bytes, 0, c.us + coll.tp_link->wait() * since, "link"});
    since = 0;
  };
  // The TP sum of a row-split product of `n` activations: one collective (plus, for the chunk
  // all-gather, the in-order sum of the C gathered chunks on every rank).
  auto tp_sum = [&](LayerOps& o, const std::string& name, double n) {
    if (coll.reduction == TpReduction::kChunkAllGather) {
      const double C = std::max(coll.chunks, 1);
      collective(o.post, "all_gather_" + name, all_gather(*coll.tp_link, tp, C * n * s.act_bytes));
      add(o.post, elementwise_cost(r, "sum_chunks_" + name, C * n, ew));
    } else {
      collective(o.post, "all_reduce_" + name, all_reduce(*coll.tp_link, coll.algorithm, tp, n * s.act_bytes));
    }
  };
  TokenOps t;
  add(t.begin, elementwise_cost(r, "embedding", s.n_embd, ew));
  const double rows_spec = std::min(L, 2.0 * spec_chunk);
  const bool cached = r.cache_bytes && s.weight_bytes() + L * s.n_layers * s.kv_bytes_per_token_layer() <= r.cache_bytes->value;
  for (const auto& l : s.layers) {
    LayerOps o;
    add(o.pre, elementwise_cost(r, "attn_norm", s.n_embd, ew));
    add(o.pre, matvec_cost(r, "qkv", {&l.wq, &l.wk, &l.wv}, cached));
    add(o.pre, elementwise_cost(r, "rope_kv_write", s.q_dim() + 3.0 * s.kv_dim(), ew));
    o.attention = attention_cost(r, s, L, "attention", cached);
    since += o.attention.us;
    o.spec_ready = attention_cost(r, s, rows_spec, "spec_ready", cached);
    add(o.post, row_parallel(r, "o", l.wo, s.chunks_per_rank, cached));
    if (tp > 1) tp_sum(o, "o", s.n_embd);
    add(o.post, elementwise_cost(r, "residual_ffn_norm", 2.0 * s.n_embd, ew));
    add(o.post, matvec_cost(r, "gate_up", {&l.w_gate, &l.w_up}, cached));
    {  // SwiGLU is split over the device's threads: a parallel dispatch, not a serial call
      const double work = s.n_ff * r.activation_ns() * 1e-3, oh = r.op_overhead_us.value;
      add(o.post, {"swiglu", OpKind::kElementwise, s.n_ff * 8.0, 0, oh + work, oh >= work ? "overhead" : "compute"});
    }
    add(o.post, row_parallel(r, "down", l.w_down, s.chunks_per_rank, cached));
    if (tp > 1) tp_sum(o, "down", s.n_embd);
    add(o.post, elementwise_cost(r, "residual", s.n_embd, ew));
    t.layers.push_back(std::move(o));
  }
  add(t.end, elementwise_cost(r, "output_norm", s.n_embd, ew));
  add(t.end, matvec_cost(r, "lm_head", {&s.output}, cached));
  if (tp > 1) collective(t.end, "all_gather_logits", all_gather(*coll.tp_link, tp, s.output.rows * tp * s.act_bytes));
  return t;
}

}  // namespace alspec::perf
