#include "alspec/perf/projection.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "alspec/core/error.h"
#include "alspec/model/model.h"
#include "alspec/perf/collectives.h"
#include "alspec/perf/protocol_sim.h"
#include "alspec/perf/tp_split.h"

namespace alspec::perf {

namespace {

void add_kinds(std::map<std::string, double>& b, const std::vector<OpCost>& ops) {
  for (const auto& o : ops) b[op_kind_name(o.kind)] += o.us / 1e3;
}

ModeResult exact_mode(const ModelShape& rank, const DeviceRates& r, const CollectiveSpec& coll, int tp, double rows,
                      int S, int devices, int threads) {
  const TokenOps t = token_ops(rank, r, coll, tp, rows, S);
  ModeResult m;
  m.devices = devices;
  m.threads_per_device = threads;
  add_kinds(m.breakdown_ms, t.begin);
  for (const auto& l : t.layers) {
    add_kinds(m.breakdown_ms, l.pre);
    add_kinds(m.breakdown_ms, {l.attention});
    add_kinds(m.breakdown_ms, l.post);
  }
  add_kinds(m.breakdown_ms, t.end);
  for (const auto& [k, v] : m.breakdown_ms) m.ms_per_token += v;
  m.tokens_per_s = 1e3 / m.ms_per_token;
  m.layer0_ops = t.layers.front().pre;
  m.layer0_ops.push_back(t.layers.front().attention);
  m.layer0_ops.insert(m.layer0_ops.end(), t.layers.front().post.begin(), t.layers.front().post.end());
  m.end_ops = t.end;
  return m;
}

ProtocolCosts protocol_costs(const ModelShape& rank, const DeviceRates& r, const CollectiveSpec& coll, int tp,
                             double rows, int S, bool trivial) {
  if (!coll.sp_link) throw_invalid_argument("--sp 2 needs collectives.sp_link in the profile");
  const TokenOps t = token_ops(rank, r, coll, tp, rows, S);
  ProtocolCosts c;
  c.begin = t.begin;
  c.end = t.end;
  c.trivial = trivial;
  const Link& sp = *coll.sp_link;
  // Priority word, then the winner's residual (each rank holds the full residual).
  const double boundary = p2p(sp, 4).us + p2p(sp, rank.n_embd * rank.act_bytes).us;
  for (const auto& l : t.layers) {
    ProtocolLayer pl;
    pl.ops = l;
    pl.boundary_us = boundary;
    pl.send_us = p2p(sp, rank.q_dim() * rank.act_bytes).us;  // each rank sends its heads' O_spec
    // The check's two sums (error and reference norms) over the TP group.
    if (tp <= 1) {
      pl.verify_us = 0.0;
    } else if (coll.reduction == TpReduction::kChunkAllGather) {
      pl.verify_us = all_gather(*coll.tp_link, tp, 16.0 * tp).us;
    } else {
      pl.verify_us = all_reduce(*coll.tp_link, coll.algorithm, tp, 16).us;
    }
    c.layers.push_back(std::move(pl));
  }
  c.final_boundary_us = boundary;
  return c;
}

ModeResult alspec_mode(const ProtocolCosts& c, const Decisions& d, int n_layers, int64_t steps, int devices,
                       int threads) {
  const ProtocolRun run = simulate_protocol(
      c, [&](int64_t step, int layer) { return d.accept(step, layer, n_layers); }, steps, false);
  ModeResult m;
  m.devices = devices;
  m.threads_per_device = threads;
  m.ms_per_token = run.us_per_token / 1e3;
  m.tokens_per_s = 1e3 / m.ms_per_token;
  for (const auto& [k, v] : run.breakdown_us) m.breakdown_ms[k] = v / 1e3;
  m.hit_rate = run.checks > 0 ? static_cast<double>(run.hits) / static_cast<double>(run.checks) : 1.0;
  m.checks = run.checks;
  const auto& l0 = c.layers.front().ops;
  m.layer0_ops = l0.pre;
  m.layer0_ops.push_back(l0.spec_ready);
  m.layer0_ops.push_back(l0.attention);
  m.layer0_ops.insert(m.layer0_ops.end(), l0.post.begin(), l0.post.end());
  m.layer0_ops.push_back({"sp_boundary", OpKind::kMessage, 0, 0, c.layers.front().boundary_us, "link"});
  m.layer0_ops.push_back({"send_o_spec", OpKind::kMessage, 0, 0, c.layers.front().send_us, "link"});
  m.end_ops = c.end;
  return m;
}

// Expected ms per token at hit rate h (layers are independent: the boundary is a barrier).
double expected_alspec_us(const ProtocolCosts& c, double h) {
  double t = sum_us(c.begin) + c.final_boundary_us + sum_us(c.end);
  for (const auto& l : c.layers) t += h * layer_time_us(l, true) + (1 - h) * layer_time_us(l, false);
  return t;
}

// The attention rates a profile states outright (measured times per geometry, attention_gbps),
// scaled by f; rates derived from mem_bw follow it.
void scale_stated_attention(DeviceRates& r, double f) {
  for (auto& [k, by_rows] : r.attention_shape_us) {
    for (auto& [rows, v] : by_rows) v.value /= f;
  }
  if (r.attention_gbps) r.attention_gbps->value *= f;
}

DeviceRates scale_memory(DeviceRates r, double f) {
  r.mem_bw_gbps.value *= f;
  for (auto& [t, v] : r.matvec_gbps) v.value *= f;
  for (auto& [k, v] : r.matvec_shape_gbps) v.value *= f;
  scale_stated_attention(r, f);
  return r;
}

// One of n devices (MPI ranks) sharing a host: its memory rates capped at 1/n of those of the whole
// thread group, shape by shape where measured. The ranks of a TP group read different parts of each
// matrix at the same time, as the threads of one n x t-thread device do, which that device's
// calibration measures (validated: a TP group of two one-thread ranks decodes at the two-thread
// rate of one process, docs/performance-model.md).
DeviceRates shared_bus(DeviceRates side, const DeviceRates& full, int n) {
  auto cap = [n](double& v, double whole) { v = std::min(v, whole / n); };
  cap(side.mem_bw_gbps.value, full.mem_bw_gbps.value);
  for (auto& [t, v] : side.matvec_gbps) cap(v.value, full.matvec_rate_gbps(t));
  for (auto& [k, v] : side.matvec_shape_gbps) {
    if (const auto w = full.matvec_shape_gbps.find(k); w != full.matvec_shape_gbps.end()) cap(v.value, w->second.value);
  }
  for (auto& [k, by_rows] : side.attention_shape_us) {
    for (auto& [rows, v] : by_rows) {
      if (const auto w = full.attention_shape_time_us(k, static_cast<double>(rows))) v.value = std::max(v.value, *w * n);
    }
  }
  if (side.attention_gbps) cap(side.attention_gbps->value, full.attention_rate_gbps());
  return side;
}

// The two ALSpec sides of one process: they run the same layer's matvecs within microseconds of
// each other on the same weight matrices, so the shared last-level cache serves the second reader
// (measured: each side decodes at the one-device rate, docs/performance-model.md); their KV caches
// are separate copies, so attention reads contend as two devices do.
DeviceRates sides_sharing_weights(DeviceRates side, const DeviceRates& full) {
  if (!side.concurrent_factor) return shared_bus(std::move(side), full, 2);
  const double f = side.concurrent_factor->value;
  scale_stated_attention(side, f);
  // mem_bw stays (the matvecs' fallback rate): a derived attention rate scales through its efficiency.
  if (side.attention_gbps) return side;
  if (!side.attention_efficiency_by_kv_heads.empty()) {
    for (auto& [h, v] : side.attention_efficiency_by_kv_heads) v.value *= f;
  } else {
    side.attention_efficiency = Sourced{(side.attention_efficiency ? side.attention_efficiency->value : 1.0) * f,
                                        "attention efficiency x concurrent_factor (two sides)"};
  }
  return side;
}

}  // namespace

std::vector<ContextResult> project(const ModelShape& shape, const HardwareProfile& hw, const ProjectionOptions& o,
                                   const std::vector<int64_t>& ctxs, const Decisions& decisions) {
  validate(shape);
  if (o.sp != 1 && o.sp != 2) throw_invalid_argument("--sp must be 1 or 2, got " + std::to_string(o.sp));
  if (o.spec_chunk < 1) throw_invalid_argument("--spec-chunk must be >= 1");
  if (ctxs.empty()) throw_invalid_argument("--ctx needs at least one context length");
  const bool cpu = hw.kind == ProfileKind::kCpuThreads;
  // MPI ranks on one host: every rank is a device of `threads` threads; all ranks share its bus.
  const bool ranks = cpu && hw.collectives.transport == Transport::kMpi;
  int exact_tp = o.exact_tp > 0 ? o.exact_tp : o.tp * o.sp, exact_threads = 1, side_threads = 1;
  if (ranks) {
    if (o.threads < 1) throw_invalid_argument("--threads must be >= 1");
    exact_threads = side_threads = o.threads;
  } else if (cpu) {
    if (o.tp != 1 || o.exact_tp > 1) {
      throw_invalid_argument("profile '" + hw.name + "' is a cpu-threads profile of one process: --tp must be 1 (a device is a "
                             "thread group); for MPI ranks calibrate one with `mpirun -np 2 alspec project --calibrate-mpi`");
    }
    exact_tp = 1;
    exact_threads = o.threads;
    if (o.sp == 2) {
      if (o.threads < 2 || o.threads % 2 != 0) throw_invalid_argument("--sp 2 on a cpu-threads profile splits --threads over two devices: it must be even, got " + std::to_string(o.threads));
      side_threads = o.threads / 2;
    }
  }
  CollectiveSpec coll = hw.collectives;
  coll.chunks = o.tp_chunks > 0 ? o.tp_chunks : default_tp_chunks(shape.n_head_kv);
  const double scale = o.rescale_bw_gbps > 0 ? o.rescale_bw_gbps / hw.rates(exact_threads).mem_bw_gbps.value : 1.0;
  // n ranks of `threads` threads: each capped at 1/n of what the host reads with all of them
  // (the largest calibrated thread count when n x threads was not calibrated).
  auto rank_rates = [&](int n, int threads) {
    const DeviceRates mine = scale_memory(hw.rates(threads), scale);
    if (n <= 1) return mine;
    int whole = hw.threads.rbegin()->first;
    if (hw.threads.count(n * threads) != 0) whole = n * threads;
    return shared_bus(mine, scale_memory(hw.rates(whole), scale), n);
  };
  const DeviceRates r_exact = ranks ? rank_rates(exact_tp, exact_threads) : scale_memory(hw.rates(exact_threads), scale);
  const int chunks = coll.reduction == TpReduction::kChunkAllGather ? coll.chunks : 0;
  const ModelShape exact_rank = shard(shape, exact_tp, chunks);
  std::vector<ContextResult> out;
  for (int64_t ctx : ctxs) {
    if (ctx < 0) throw_invalid_argument("--ctx values must be >= 0");
    const double rows = static_cast<double>(ctx) + 1.0;  // L = p + 1: the new token attends to ctx cached rows and itself
    ContextResult res;
    res.ctx = ctx;
    const int exact_devices = cpu && !ranks ? 1 : exact_tp;
    res.exact = exact_mode(exact_rank, r_exact, coll, exact_tp, rows, o.spec_chunk, exact_devices, exact_threads);
    const ModeResult exact0 = exact_mode(exact_rank, r_exact, coll, exact_tp, 0, o.spec_chunk, 1, 1);
    res.exact_attention_overhead_ms = res.exact.ms_per_token - exact0.ms_per_token;
    if (o.sp == 2) {
      const DeviceRates r_side = ranks ? rank_rates(2 * o.tp, side_threads)
                                 : cpu   ? sides_sharing_weights(scale_memory(hw.rates(side_threads), scale), r_exact)
                                         : scale_memory(hw.rates(side_threads), scale);
      const ModelShape side_rank = shard(shape, o.tp, chunks);
      const bool trivial = rows <= 2.0 * o.spec_chunk;
      const ProtocolCosts c = protocol_costs(side_rank, r_side, coll, o.tp, rows, o.spec_chunk, trivial);
      res.alspec = alspec_mode(c, decisions, shape.n_layers, o.steps, cpu && !ranks ? 2 : 2 * o.tp,
                               cpu ? side_threads : 1);
      const ProtocolCosts c0 = protocol_costs(side_rank, r_side, coll, o.tp, 0, o.spec_chunk, false);
      const ModeResult al0 = alspec_mode(c0, decisions, shape.n_layers, o.steps, 2, 1);
      res.alspec_attention_overhead_ms = res.alspec->ms_per_token - al0.ms_per_token;
      res.speedup = res.exact.ms_per_token / res.alspec->ms_per_token;
      if (!trivial) {
        const double e = res.exact.ms_per_token * 1e3;
        const double miss = expected_alspec_us(c, 0.0), hit = expected_alspec_us(c, 1.0);
        if (miss <= e) {
          res.break_even_hit_rate = 0.0;
        } else if (hit < e) {
          res.break_even_hit_rate = (miss - e) / (miss - hit);
        }
      }
    }
    out.push_back(std::move(res));
  }
  return out;
}

nlohmann::json to_json(const ContextResult& r) {
  using nlohmann::json;
  auto ops = [](const std::vector<OpCost>& v) {
    json a = json::array();
    for (const auto& o : v) {
      a.push_back({{"op", o.name}, {"kind", op_kind_name(o.kind)}, {"bytes", o.bytes}, {"flops", o.flops},
                   {"us", o.us}, {"bound", o.bound}});
    }
    return a;
  };
  auto mode = [&](const ModeResult& m, bool spec) {
    json j{{"ms_per_token", m.ms_per_token},
           {"tokens_per_s", m.tokens_per_s},
           {"breakdown", m.breakdown_ms},
           {"devices", m.devices},
           {"threads_per_device", m.threads_per_device},
           {"layer0_ops", ops(m.layer0_ops)},
           {"end_ops", ops(m.end_ops)}};
    if (spec) {
      j["hit_rate"] = m.hit_rate;
      j["checks"] = m.checks;
    }
    return j;
  };
  json j{{"ctx", r.ctx}, {"exact", mode(r.exact, false)}};
  json ao{{"exact_ms", r.exact_attention_overhead_ms}};
  if (r.alspec) {
    j["alspec"] = mode(*r.alspec, true);
    j["speedup"] = r.speedup;
    ao["alspec_ms"] = r.alspec_attention_overhead_ms;
    ao["reduction"] = r.alspec_attention_overhead_ms > 0 ? r.exact_attention_overhead_ms / r.alspec_attention_overhead_ms : 0.0;
    j["break_even_hit_rate"] = r.break_even_hit_rate ? json(*r.break_even_hit_rate) : json(nullptr);
  }
  j["attention_overhead"] = ao;
  return j;
}

}  // namespace alspec::perf
