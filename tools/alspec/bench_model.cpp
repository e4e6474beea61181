#include "alspec/bench_model.h"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "alspec/core/error.h"
#include "alspec/core/timer.h"
#include "alspec/kernels/attention.h"
#include "alspec/kernels/cpu_features.h"
#include "alspec/kernels/matmul.h"
#include "alspec/kernels/memory_bandwidth.h"
#include "alspec/kernels/ops.h"
#include "alspec/model/model.h"
#include "alspec/runtime/device.h"
#include "alspec/spec/engine.h"
#include "engine_options.h"
#include "median.h"
#include "parallel.h"

namespace alspec::cli {
namespace {

struct BenchArgs {
  EngineArgs engine;
  std::vector<int64_t> depths{0, 4096, 16384};
  std::vector<int> threads{1, 2};
  std::vector<std::string> modes{"exact"};
  int n_gen = 16;
  int prompt_len = 64;
  int reps = 1;
  std::string fill = "random";
  bool json = false;
  bool ops = false;
  std::vector<int64_t> ops_rows{1};
};

struct PointResult {
  double prefill_tps = 0, decode_ms = 0, gbps = 0, roofline = 0, hit_rate = 0;
  int64_t checks = 0;
  LayerProfile prof;
};

double per_layer(const LayerProfile& p, double total) {
  return p.layers ? total / static_cast<double>(p.layers) : 0.0;
}

// This rank's communication so far (tensor-parallel group and peer pair).
CommStats job_comm_stats(const ProcessGroups* g) {
  CommStats s;
  if (g != nullptr && g->distributed()) {
    s.merge(g->tp_comm->stats());
    s.merge(g->pair->stats());
  }
  return s;
}

CommStats comm_delta(const CommStats& after, const CommStats& before) {
  CommStats d;
  for (size_t i = 0; i < d.ops.size(); ++i) {
    d.ops[i].calls = after.ops[i].calls - before.ops[i].calls;
    d.ops[i].bytes_sent = after.ops[i].bytes_sent - before.ops[i].bytes_sent;
    d.ops[i].bytes_received = after.ops[i].bytes_received - before.ops[i].bytes_received;
    d.ops[i].seconds = after.ops[i].seconds - before.ops[i].seconds;
  }
  return d;
}

// Per-rank figures of one bench point, gathered to every rank: memory, decode time, where each
// layer's wall time goes (pre / attention / post, the latter including the reductions), and per
// decoded token the calls, bytes (sent + received) and seconds of every kind of communication.
constexpr size_t kRankFixed = 12;
constexpr size_t kRankDoubles = kRankFixed + 3 * kCommOpCount;

nlohmann::json gather_rank_report(ProcessGroups& g, const Model& model, double decode_s, double decode_mean_s,
                                  const LayerProfile& prof, const CommStats& comm, double tokens, bool text) {
  std::vector<double> mine(kRankDoubles, 0.0);
  mine[0] = g.world_rank;
  mine[1] = g.group;
  mine[2] = g.tp_rank;
  mine[3] = static_cast<double>(resident_bytes());
  mine[4] = static_cast<double>(peak_resident_bytes());
  mine[5] = static_cast<double>(model.weight_bytes_per_token());
  mine[6] = decode_s;
  mine[7] = per_layer(prof, prof.pre);
  mine[8] = per_layer(prof, prof.attention);
  mine[9] = per_layer(prof, prof.post);
  mine[10] = per_layer(prof, prof.layer);
  mine[11] = decode_mean_s;
  for (int op = 0; op < kCommOpCount; ++op) {
    const auto& c = comm.ops[static_cast<size_t>(op)];
    mine[kRankFixed + 3 * static_cast<size_t>(op)] = static_cast<double>(c.calls) / tokens;
    mine[kRankFixed + 3 * static_cast<size_t>(op) + 1] = static_cast<double>(c.bytes_sent + c.bytes_received) / tokens;
    mine[kRankFixed + 3 * static_cast<size_t>(op) + 2] = c.seconds / tokens;
  }
  std::vector<double> all(kRankDoubles * static_cast<size_t>(g.world_size));
  g.world->allgather(CommOp::kControl, mine, all);
  nlohmann::json ranks = nlohmann::json::array();
  for (int r = 0; r < g.world_size; ++r) {
    const double* v = &all[kRankDoubles * static_cast<size_t>(r)];
    nlohmann::json ops = nlohmann::json::object();
    double comm_s = 0, comm_bytes = 0;
    for (int op = 0; op < kCommOpCount; ++op) {
      const double* o = v + kRankFixed + 3 * static_cast<size_t>(op);
      if (o[0] == 0) continue;
      ops[comm_op_name(static_cast<CommOp>(op))] = {{"calls_per_token", o[0]}, {"bytes_per_token", o[1]}, {"ms_per_token", o[2] * 1e3}};
      comm_s += o[2];
      comm_bytes += o[1];
    }
    nlohmann::json j{{"rank", static_cast<int>(v[0])},
                     {"group", static_cast<int>(v[1])},
                     {"tp_rank", static_cast<int>(v[2])},
                     {"rss_bytes", v[3]},
                     {"peak_rss_bytes", v[4]},
                     {"weight_bytes_per_token", v[5]},
                     {"decode_ms", v[6] * 1e3},
                     {"per_layer_us", {{"pre", v[7] * 1e6}, {"attention", v[8] * 1e6}, {"post", v[9] * 1e6}, {"layer", v[10] * 1e6}}},
                     {"comm_ms_per_token", comm_s * 1e3},
                     {"comm_bytes_per_token", comm_bytes},
                     {"decode_mean_ms", v[11] * 1e3},
                     {"comm_share", v[11] > 0 ? comm_s / v[11] : 0.0},
                     {"comm", ops}};
    ranks.push_back(j);
    if (text) {
      std::printf("  rank %d (group %d, tp %d): RSS %.1f MB (peak %.1f), weights %.2f MB/token, decode %.3f ms, "
                  "per layer pre %.1f attn %.1f post %.1f us; comm %.3f ms/token (%.0f%% of the mean step), %.0f bytes/token:",
                  static_cast<int>(v[0]), static_cast<int>(v[1]), static_cast<int>(v[2]), v[3] / 1e6, v[4] / 1e6, v[5] / 1e6,
                  v[6] * 1e3, v[7] * 1e6, v[8] * 1e6, v[9] * 1e6, comm_s * 1e3, v[11] > 0 ? 100 * comm_s / v[11] : 0.0,
                  comm_bytes);
      for (auto it = ops.begin(); it != ops.end(); ++it) {
        std::printf(" %s %.1fx %.0fB %.3fms", it.key().c_str(), it.value()["calls_per_token"].get<double>(),
                    it.value()["bytes_per_token"].get<double>(), it.value()["ms_per_token"].get<double>());
      }
      std::printf("\n");
    }
  }
  return ranks;
}

// --ops: where a decode step's time goes. Replays the step's weight products (the fused Q/K/V
// and gate/up as the session runs them, o, down, the LM head) and its element-wise ops on the
// model's weights for n_gen steps, timing each; attention and the per-architecture extras
// (biases, QK-norm, RoPE) are left out. Medians per step; GB/s = the op's weight bytes / time.
// rows > 1 (--ops-rows): the pass of a batch of that many sequences (BatchForward: matmul and
// matmul_fused over all rows, element-wise ops per row).
void op_profile(const Model& model, int threads, int steps, double membw, bool json, ProcessGroups* groups,
                int64_t rows = 1) {
  const auto& c = model.config();
  Device dev({.name = "ops", .threads = threads, .cores = {}});
  const auto n = static_cast<size_t>(rows);
  std::vector<float> x(n * static_cast<size_t>(c.n_embd)), xn(x.size()), q(n * static_cast<size_t>(c.q_dim())),
      k(n * static_cast<size_t>(c.kv_dim())), v(k.size()), t(x.size()), g(n * static_cast<size_t>(c.n_ff)),
      u(g.size()), logits(n * static_cast<size_t>(c.n_vocab));
  const auto e = static_cast<size_t>(c.n_embd);
  auto norm_rows = [&](const float* in, const auto& weight, float* out) {
    for (size_t i = 0; i < n; ++i) rmsnorm(in + i * e, weight, out + i * e, c.n_embd, c.rms_eps);
  };
  // matmul_fused of one row and one target is matvec (the same kernels/matmul.cpp path).
  auto product = [&](std::initializer_list<MatvecTarget> ts, const float* in) {
    matmul_fused(dev, std::span<const MatvecTarget>(ts.begin(), ts.size()), in, rows);
  };
  auto bytes = [](std::initializer_list<const WeightMatrix*> ws) {
    double b = 0;
    for (const auto* w : ws) b += static_cast<double>(w->row_bytes) * static_cast<double>(w->rows);
    return b;
  };
  std::map<std::string, std::vector<double>> per_step;  // op -> seconds per step
  std::map<std::string, double> op_bytes;                // op -> weight bytes per step
  std::vector<double> step_s;
  for (int s = 0; s < steps; ++s) {
    for (size_t i = 0; i < n; ++i) {
      model.embed(1 + static_cast<int>((static_cast<size_t>(s) * n + i) % static_cast<size_t>(std::max(1, c.n_vocab - 1))),
                  x.data() + i * e);
    }
    std::map<std::string, double> acc;
    auto timed = [&](const char* name, double b, auto&& f) {
      const double t0 = now_seconds();
      f();
      acc[name] += now_seconds() - t0;
      if (s == 0) op_bytes[name] += b;
    };
    const double t_step = now_seconds();
    for (int l = 0; l < c.n_layers; ++l) {
      const auto& L = model.layer(l);
      timed("norms", 0, [&] { norm_rows(x.data(), L.attn_norm, xn.data()); });
      timed("qkv", bytes({&L.wq, &L.wk, &L.wv}),
            [&] { product({{&L.wq, q.data()}, {&L.wk, k.data()}, {&L.wv, v.data()}}, xn.data()); });
      timed("o", bytes({&L.wo}), [&] { product({{&L.wo, t.data()}}, q.data()); });
      timed("norms", 0, [&] {
        add_inplace(x.data(), t.data(), static_cast<int64_t>(x.size()));
        norm_rows(x.data(), L.ffn_norm, xn.data());
      });
      timed("gate_up", bytes({&L.w_gate, &L.w_up}),
            [&] { product({{&L.w_gate, g.data()}, {&L.w_up, u.data()}}, xn.data()); });
      timed("activation", 0, [&] { swiglu(g.data(), u.data(), g.data(), static_cast<int64_t>(g.size())); });
      timed("down", bytes({&L.w_down}), [&] { product({{&L.w_down, t.data()}}, g.data()); });
      timed("norms", 0, [&] { add_inplace(x.data(), t.data(), static_cast<int64_t>(x.size())); });
    }
    timed("norms", 0, [&] { norm_rows(x.data(), model.output_norm(), xn.data()); });
    timed("output", bytes({&model.output()}), [&] { product({{&model.output(), logits.data()}}, xn.data()); });
    step_s.push_back(now_seconds() - t_step);
    for (const auto& [name, sec] : acc) per_step[name].push_back(sec);
  }
  const double step = median(step_s);
  nlohmann::json j{{"threads", threads}, {"rows", rows}, {"membw_gbps", membw}, {"step_ms", step * 1e3}};
  if (!json) {
    std::printf("ops, %d thread(s), %lld row(s): step %.2f ms (no attention), bandwidth %.2f GB/s\n", threads,
                static_cast<long long>(rows), step * 1e3, membw);
  }
  for (const auto& [name, v] : per_step) {
    const double m = median(v), b = op_bytes[name];
    const double gbps = b > 0 ? b / m / 1e9 : 0.0;
    j["ops"][name] = {{"ms", m * 1e3}, {"share", m / step}, {"gbps", gbps}, {"bw_ratio", gbps / membw}};
    if (!json) {
      std::printf("  %-10s %8.3f ms %5.1f%%", name.c_str(), m * 1e3, 100 * m / step);
      if (b > 0) std::printf("  %6.2f GB/s  %.3f of bw", gbps, gbps / membw);
      std::printf("\n");
    }
  }
  if (groups != nullptr && groups->distributed()) {
    // Under mpirun: every rank's own shard, op by op (compute only: no collectives are replayed).
    static const char* const kOps[] = {"qkv", "o", "gate_up", "activation", "down", "output", "norms"};
    constexpr size_t kN = std::size(kOps);
    std::vector<double> mine(kN + 1), all((kN + 1) * static_cast<size_t>(groups->world_size));
    for (size_t i = 0; i < kN; ++i) mine[i] = per_step.count(kOps[i]) ? median(per_step[kOps[i]]) : 0.0;
    mine[kN] = step;
    groups->world->allgather(CommOp::kControl, mine, all);
    nlohmann::json ranks = nlohmann::json::array();
    for (int r = 0; r < groups->world_size; ++r) {
      const double* v = &all[(kN + 1) * static_cast<size_t>(r)];
      nlohmann::json o{{"rank", r}, {"step_ms", v[kN] * 1e3}};
      if (!json) std::printf("  rank %d: step %.3f ms:", r, v[kN] * 1e3);
      for (size_t i = 0; i < kN; ++i) {
        o["ops_ms"][kOps[i]] = v[i] * 1e3;
        if (!json) std::printf(" %s %.3f", kOps[i], v[i] * 1e3);
      }
      if (!json) std::printf(" ms\n");
      ranks.push_back(o);
    }
    j["ranks"] = ranks;
  }
  if (json) std::cout << nlohmann::json{{"op_profile", j}}.dump() << "\n" << std::flush;
}

int run(const BenchArgs& a) {
  auto model = a.engine.load_model();
  const auto& c = model->config();
  const auto& depths = a.depths;
  const auto& threads = a.threads;
  const auto& modes = a.modes;
  if (depths.empty() || threads.empty() || modes.empty()) {
    throw_invalid_argument("bench: --depth, --threads and --attention need at least one value");
  }
  if (a.fill != "random" && a.fill != "prefill") throw_invalid_argument("--fill must be random or prefill");
  if (a.n_gen < 1) throw_invalid_argument("--n-gen must be >= 1");
  if (a.reps < 1) throw_invalid_argument("--reps must be >= 1");
  for (const auto& m : modes) parse_attention_mode(m);
  const int64_t max_depth = *std::max_element(depths.begin(), depths.end());
  const int64_t need = std::max<int64_t>(max_depth, a.prompt_len) + a.n_gen + 1;
  if (need > c.context_length) {
    throw_invalid_argument("--depth " + std::to_string(max_depth) + " + --n-gen exceeds the model context " +
                           std::to_string(c.context_length));
  }
  const EngineArgs& ea = a.engine;
  const auto kv_type = ea.to_options().kv_type;
  const std::string cpu = cpu_model_name();
  const std::string simd(simd_level_name(simd_level()));
  const std::string matvec_variant = matmul_kernel_variant();
  const std::string attn_variant = attention_kernel_variant(kv_type, c.head_dim, prefer_key_blocks(kv_type, c.head_dim));
  if (!a.json) {
    std::printf("cpu: %s (features: %s)\nsimd level: %s (detected %s); matvec: %s; attention: %s\n", cpu.c_str(),
                cpu_feature_list().c_str(), simd.c_str(), std::string(simd_level_name(detected_simd_level())).c_str(),
                matvec_variant.c_str(), attn_variant.c_str());
    std::printf("model %s: %s, %d layers, weights %.1f MB read per token, KV %s\n", a.engine.model.c_str(),
                c.arch_name.c_str(), c.n_layers, static_cast<double>(model->weight_bytes_per_token()) / 1e6,
                ea.kv_type.c_str());
    std::printf("%7s %7s %9s %12s %11s %10s %8s %9s %8s\n", "threads", "depth", "mode", "prefill t/s", "decode ms/t",
                "decode t/s", "GB/s", "roofline", "hit rate");
  }
  for (int t : threads) {
    if (t < 1) throw_invalid_argument("--threads must be >= 1");
    double membw = 0;
    {
      Device dev({.name = "membw", .threads = t, .cores = {}});
      membw = measure_read_bandwidth(dev).gbps;
    }
    for (int64_t depth : depths) {
      std::map<std::string, PointResult> by_mode;
      for (const auto& mode : modes) {
        EngineOptions eo = ea.to_options();
        eo.spec.mode = parse_attention_mode(mode);
        eo.ctx_size = need;
        eo.profile = true;
        eo.threads = default_threads_per_device(t, default_device_count(eo.spec.mode));  // alspec: the same cores, split
        Engine engine(*model, eo);
        PointResult pr;
        std::vector<int32_t> prompt(static_cast<size_t>(a.prompt_len));
        for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 7919 + 13) % c.n_vocab);
        std::vector<double> decode_s, prefill_tps;
        // Per-step profiles: medians resist the outliers of a shared machine better than sums.
        std::vector<double> p_pre, p_ready, p_attn, p_post, p_layer;
        SpecStats stats;
        ProcessGroups* groups = eo.groups;
        CommStats comm;  // decode steps only
        for (int rep = 0; rep < a.reps; ++rep) {
          engine.reset();
          if (!prompt.empty()) {
            const double t0 = now_seconds();
            engine.prefill(prompt, PrefillLogits::kLast, [](int64_t, const float*) {});
            prefill_tps.push_back(static_cast<double>(prompt.size()) / (now_seconds() - t0));
          }
          if (a.fill == "random") {
            engine.fill_random(depth, 42);
          } else {
            engine.reset();
            std::vector<int32_t> ctx_tokens(static_cast<size_t>(depth));
            for (size_t i = 0; i < ctx_tokens.size(); ++i) ctx_tokens[i] = static_cast<int32_t>((i * 104729 + 7) % c.n_vocab);
            if (!ctx_tokens.empty()) engine.prefill(ctx_tokens, PrefillLogits::kNone, [](int64_t, const float*) {});
          }
          int32_t tok = c.n_vocab > 1 ? 1 : 0;
          const CommStats comm_before = job_comm_stats(groups);
          for (int i = 0; i < a.n_gen; ++i) {
            engine.reset_stats();
            const double t0 = now_seconds();
            const float* logits = engine.decode(tok);
            decode_s.push_back(now_seconds() - t0);
            tok = static_cast<int32_t>(std::max_element(logits, logits + c.n_vocab) - logits);
            stats.merge(engine.stats());
            const LayerProfile& p = engine.profile();
            p_pre.push_back(per_layer(p, p.pre));
            p_ready.push_back(per_layer(p, p.spec_ready));
            p_attn.push_back(per_layer(p, p.attention));
            p_post.push_back(per_layer(p, p.post));
            p_layer.push_back(per_layer(p, p.layer));
          }
          comm.merge(comm_delta(job_comm_stats(groups), comm_before));
        }
        pr.prefill_tps = median(prefill_tps);
        const double dt = median(decode_s);
        pr.decode_ms = dt * 1e3;
        // Bytes one decode step must read: every weight matrix once, plus K and V up to the position.
        const double mean_len = static_cast<double>(depth) + (a.n_gen + 1) / 2.0;
        const double kv_bytes =
            2.0 * c.n_layers * c.n_head_kv * static_cast<double>(row_bytes(kv_type, c.head_dim)) * mean_len;
        const double bytes = static_cast<double>(model->weight_bytes_per_token()) + kv_bytes;
        pr.gbps = bytes / dt / 1e9;
        pr.roofline = pr.gbps / membw;
        pr.hit_rate = stats.hit_rate();
        pr.checks = stats.checks();
        // A synthetic one-layer profile holding the per-layer medians.
        pr.prof = {1, median(p_pre), median(p_ready), median(p_attn), median(p_post), median(p_layer)};
        by_mode[mode] = pr;
        nlohmann::json j{{"model", a.engine.model},
                         {"threads", t},
                         {"depth", depth},
                         {"mode", mode},
                         {"kv_type", ea.kv_type},
                         {"prefill_tps", pr.prefill_tps},
                         {"decode_ms", pr.decode_ms},
                         {"decode_tps", 1e3 / pr.decode_ms},
                         {"gbps", pr.gbps},
                         {"membw_gbps", membw},
                         {"roofline_ratio", pr.roofline},
                         {"bytes_per_token", bytes},
                         {"checks", pr.checks},
                         {"hit_rate", pr.hit_rate},
                         {"spec_chunk", engine.spec_chunk()},
                         {"predictor", spec_predictor_name(eo.predictor)},
                         {"spec_budgets", ea.spec_budgets.empty() ? nlohmann::json() : nlohmann::json(ea.spec_budgets)},
                         {"lambda", eo.spec.lambda},
                         {"cpu", cpu},
                         {"simd", simd},
                         {"matvec_kernel", matvec_variant},
                         {"attention_kernel", attn_variant}};
        const auto& p = pr.prof;
        if (p.layers > 0) {
          j["per_layer_us"] = {{"pre", per_layer(p, p.pre) * 1e6},
                               {"spec_ready", per_layer(p, p.spec_ready) * 1e6},
                               {"attention", per_layer(p, p.attention) * 1e6},
                               {"post", per_layer(p, p.post) * 1e6},
                               {"layer", per_layer(p, p.layer) * 1e6}};
        }
        if (groups != nullptr && groups->distributed()) {
          j["tp"] = groups->tp;
          j["ranks_total"] = groups->world_size;
          j["tp_chunks"] = model->shard().chunks;
          if (!a.json) {
            std::printf("%7d %7lld %9s %12.1f %11.3f %10.1f   (per rank below; tp %d x %d group(s), C = %d)\n", t,
                        static_cast<long long>(depth), mode.c_str(), pr.prefill_tps, pr.decode_ms, 1e3 / pr.decode_ms,
                        groups->tp, groups->n_groups, model->shard().chunks);
          }
          double mean_s = 0;
          for (double x : decode_s) mean_s += x / static_cast<double>(decode_s.size());
          j["ranks"] = gather_rank_report(*groups, *model, dt, mean_s, pr.prof, comm,
                                          static_cast<double>(a.n_gen) * static_cast<double>(a.reps), !a.json);
          if (!a.json) {
            std::fflush(stdout);
            continue;
          }
        }
        if (a.json) {
          std::cout << j.dump() << "\n" << std::flush;
        } else {
          const std::string hr = eo.spec.mode == AttentionMode::kExact
                                     ? "-"
                                     : std::to_string(static_cast<int>(100 * pr.hit_rate + 0.5)) + "%";
          std::printf("%7d %7lld %9s %12.1f %11.3f %10.1f %8.2f %9.2f %8s\n", t, static_cast<long long>(depth),
                      mode.c_str(), pr.prefill_tps, pr.decode_ms, 1e3 / pr.decode_ms, pr.gbps, pr.roofline, hr.c_str());
          std::fflush(stdout);
        }
      }
      // How much attention time alspec hid: the measured per-layer critical path against the
      // exact layer and the ideal: T_pre + max(T_attn_exact, T_spec + T_post) on a hit,
      // T_pre + T_attn_exact + T_post on a miss, weighted by the measured hit rate.
      if (by_mode.count("alspec") && by_mode.count("exact") && by_mode.count("simulate")) {
        const auto& ex = by_mode["exact"].prof;
        const auto& sim = by_mode["simulate"].prof;
        const auto& al = by_mode["alspec"].prof;
        const double t_pre = per_layer(ex, ex.pre), t_post = per_layer(ex, ex.post);
        const double t_attn_exact = per_layer(ex, ex.attention);
        const double t_attn_spec_kernel = per_layer(sim, sim.attention);
        const double t_spec = per_layer(sim, sim.spec_ready);
        const double exact_layer = per_layer(ex, ex.layer);
        const double hit = by_mode["alspec"].hit_rate;
        const double ideal = t_pre + hit * std::max(t_attn_spec_kernel, t_spec + t_post) +
                             (1.0 - hit) * (t_attn_spec_kernel + t_post);
        const double measured = per_layer(al, al.layer);
        const double hidden = t_attn_exact > 0 ? (exact_layer - measured) / t_attn_exact : 0;
        const double hidden_ideal = t_attn_exact > 0 ? (exact_layer - ideal) / t_attn_exact : 0;
        nlohmann::json h{{"threads", t},
                         {"depth", depth},
                         {"overlap_us",
                          {{"pre", t_pre * 1e6},
                           {"attn_exact", t_attn_exact * 1e6},
                           {"attn_spec_kernel", t_attn_spec_kernel * 1e6},
                           {"spec_ready", t_spec * 1e6},
                           {"post", t_post * 1e6},
                           {"exact_layer", exact_layer * 1e6},
                           {"ideal_layer", ideal * 1e6},
                           {"alspec_layer", measured * 1e6}}},
                         {"attention_hidden_fraction", hidden},
                         {"attention_hidden_fraction_ideal", hidden_ideal},
                         {"alspec_hit_rate", by_mode["alspec"].hit_rate}};
        if (a.json) {
          std::cout << h.dump() << "\n";
        } else {
          std::printf(
              "  overlap @ depth %lld, per layer: exact %.1f us (pre %.1f + attention %.1f + post %.1f); spec ready "
              "after %.1f us; ideal alspec %.1f us; measured alspec %.1f us -> attention hidden %.0f%% (ideal %.0f%%) at "
              "hit rate %.0f%%\n",
              static_cast<long long>(depth), exact_layer * 1e6, t_pre * 1e6, t_attn_exact * 1e6, t_post * 1e6,
              t_spec * 1e6, ideal * 1e6, measured * 1e6, 100 * hidden, 100 * hidden_ideal,
              100 * by_mode["alspec"].hit_rate);
        }
      }
    }
    if (!a.json) std::printf("  (threads %d: measured memory read bandwidth %.2f GB/s)\n", t, membw);
    if (a.ops) {
      for (int64_t rows : a.ops_rows) op_profile(*model, t, a.n_gen, membw, a.json, ea.to_options().groups, rows);
    }
  }
  return 0;
}

}  // namespace

std::function<int()> setup_bench_model(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  app.add_option("-m,--model", a->engine.model, "GGUF model file");
  app.add_option("--kv-type", a->engine.kv_type, "KV cache element type")->capture_default_str();
  app.add_option("--lambda", a->engine.lambda, "Speculation threshold")->capture_default_str();
  app.add_option("--spec-chunk", a->engine.spec_chunk, "S (0 = auto)");
  app.add_option("--predictor", a->engine.predictor, "O_spec rows: sink-window or quest")->capture_default_str();
  app.add_option("--spec-budgets", a->engine.spec_budgets, "Per-layer S file (predictor-sweep --budgets-out); replaces --spec-chunk");
  app.add_option("--device-cores", a->engine.device_cores, "Core sets per device for alspec, e.g. '0;1'");
  a->engine.add_parallel_to(app);
  app.add_option("--depth", a->depths, "Comma-separated KV depths")
      ->delimiter(',')
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("-t,--threads", a->threads, "Comma-separated thread counts (alspec: split over 2 devices)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--attention", a->modes, "Comma-separated modes: exact,static,simulate,alspec")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--n-gen", a->n_gen, "Decode steps per point")->capture_default_str();
  app.add_option("--prompt-len", a->prompt_len, "Prefill length for the prefill measurement")->capture_default_str();
  app.add_option("--reps", a->reps, "Repetitions (medians are reported)")->capture_default_str();
  app.add_option("--fill", a->fill, "How the depth is filled: random K/V (fast) or prefill of tokens")
      ->capture_default_str();
  app.add_flag("--json", a->json, "One JSON object per point");
  app.add_flag("--ops", a->ops,
               "Also time each op of a decode step (weight products and element-wise ops replayed on the "
               "model's weights, no attention), per thread count");
  app.add_option("--ops-rows", a->ops_rows,
                 "With --ops: comma-separated batch sizes (a batched decode pass of that many sequences)")
      ->delimiter(',')
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  return [a] {
    if (a->engine.model.empty()) throw_invalid_argument("bench: give --model PATH (or use `alspec bench attention`)");
    return run(*a);
  };
}

}  // namespace alspec::cli
