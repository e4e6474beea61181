// `alspec project`: the performance model (docs/performance-model.md). Predicts decode latency of
// exact and ALSpec attention for a model (GGUF or preset) on a hardware profile, per context
// length and hit rate (or replayed decision trace); `--calibrate` measures this machine's profile.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>
#include <nlohmann/json.hpp>

#include "alspec/command.h"
#include "alspec/core/error.h"
#include "alspec/model/model.h"
#include "alspec/perf/calibrate.h"
#include "alspec/perf/hardware_profile.h"
#include "alspec/perf/model_shape.h"
#include "alspec/perf/projection.h"
#include "alspec/perf/tp_split.h"
#include "parallel.h"
#include "plot_script.h"

namespace alspec::cli {
namespace {
namespace fs = std::filesystem;
using namespace alspec::perf;

struct ProjectArgs {
  std::string model, preset;
  std::string weight_type = "bf16", mlp_type, head_type, kv_type = "f16";
  double act_bytes = 0;
  std::string hardware;
  int tp = 1, sp = 1, spec_chunk = 128, exact_tp = 0;
  std::vector<int> threads;  // projection: each in turn (default 1); --calibrate: default 1,2
  std::vector<int64_t> ctx{4096, 16384, 65536, 131072};
  std::vector<double> hit_rates;
  std::string hit_trace, trace_config;
  uint64_t seed = 1;
  int64_t steps = 256;
  double rescale_bw = 0;
  bool json = false;
  std::string plot, python;
  bool calibrate = false, calibrate_mpi = false;
  int tp_chunks = 0;
  std::string out, name;
  std::vector<std::string> calibrate_models;
};

void make_plots(const ProjectArgs& a, const fs::path& results) {
  run_plot_script("alspec project", "scripts/plot_projection.py", results, a.plot, a.python);
}

int run_calibrate(const ProjectArgs& a) {
  if (a.out.empty()) throw_invalid_argument("--calibrate needs --out FILE");
  CalibrationOptions o;
  o.threads = a.threads.empty() ? std::vector<int>{1, 2} : a.threads;
  o.name = a.name;
  for (const auto& path : a.calibrate_models) {
    auto m = Model::load(path);
    ModelShape shape = shape_from_model(*m, a.kv_type);
    shape.name = fs::path(path).filename().string();
    // The shards of the tensor-parallel degrees this host can run (one rank per core).
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    for (int tp = 1; tp <= cores; tp *= 2) {
      try {
        o.shapes.push_back(shard(shape, tp, default_tp_chunks(shape.n_head_kv)));  // as alspec --tp runs it
      } catch (const Error&) {  // tp does not divide the heads: not a degree this model runs at
      }
    }
  }
  const HardwareProfile p = calibrate(o, [](const std::string& s) { std::fprintf(stderr, "calibrate: %s\n", s.c_str()); });
  std::ofstream f(a.out);
  if (!f) throw Error(ErrorKind::kIo, a.out + ": cannot open for writing");
  f << profile_to_json(p).dump(2) << "\n";
  std::fprintf(stderr, "calibrate: wrote %s\n", a.out.c_str());
  return 0;
}

// Every rank measures; rank 0 writes --hardware's profile with the MPI links to --out.
int run_calibrate_mpi(const ProjectArgs& a) {
  if (a.out.empty() || a.hardware.empty()) {
    throw_invalid_argument("--calibrate-mpi needs --hardware IN.json (a --calibrate profile of this host) and --out FILE");
  }
  HardwareProfile p = load_profile(a.hardware);
  if (p.kind != ProfileKind::kCpuThreads) throw_invalid_argument(a.hardware + ": --calibrate-mpi extends a cpu-threads profile");
  int ranks = 1;
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    if (const char* n = std::getenv(v)) ranks = std::atoi(n);
  }
  if (ranks < 2) throw_invalid_argument("--calibrate-mpi runs under mpirun with >= 2 ranks: mpirun -np 2 alspec project --calibrate-mpi ...");
  ProcessGroups& g = process_groups(ranks);
  calibrate_mpi_links(p, *g.world, [&](const std::string& s) {
    if (g.primary()) std::fprintf(stderr, "calibrate-mpi: %s\n", s.c_str());
  });
  if (!g.primary()) return 0;
  p.notes += (p.notes.empty() ? "" : " ") + std::string("Devices are MPI ranks on this host (collectives from --calibrate-mpi).");
  std::ofstream f(a.out);
  if (!f) throw Error(ErrorKind::kIo, a.out + ": cannot open for writing");
  f << profile_to_json(p).dump(2) << "\n";
  std::fprintf(stderr, "calibrate-mpi: wrote %s\n", a.out.c_str());
  return 0;
}

std::string fmt_opt(const std::optional<double>& v) {
  if (!v) return "never";
  char b[32];
  std::snprintf(b, sizeof b, "%.1f%%", 100 * *v);
  return b;
}

int run(const ProjectArgs& a) {
  if (!a.calibrate_models.empty() && !a.calibrate) throw_invalid_argument("--models is an option of --calibrate (projection takes --model FILE)");
  if (a.calibrate) return run_calibrate(a);
  if (a.calibrate_mpi) return run_calibrate_mpi(a);
  if (a.model.empty() == a.preset.empty()) throw_invalid_argument("give exactly one of --model FILE and --preset NAME");
  if (a.hardware.empty()) throw_invalid_argument("give --hardware PROFILE (a JSON file, see profiles/)");
  if (a.sp == 2 && a.hit_rates.empty() && a.hit_trace.empty()) throw_invalid_argument("--sp 2 needs --hit-rate or --hit-trace");
  if (!a.hit_rates.empty() && !a.hit_trace.empty()) throw_invalid_argument("give --hit-rate or --hit-trace, not both");
  const HardwareProfile hw = load_profile(a.hardware);
  ModelShape shape;
  if (!a.model.empty()) {
    auto m = Model::load(a.model);
    shape = shape_from_model(*m, a.kv_type);
  } else {
    shape = preset_shape(a.preset, a.weight_type, a.kv_type, a.mlp_type, a.head_type);
  }
  shape.act_bytes = a.act_bytes > 0 ? a.act_bytes : (hw.kind == ProfileKind::kCpuThreads ? 4.0 : 2.0);
  ProjectionOptions o;
  o.tp = a.tp;
  o.sp = a.sp;
  o.spec_chunk = a.spec_chunk;
  o.steps = a.steps;
  o.rescale_bw_gbps = a.rescale_bw;
  o.exact_tp = a.exact_tp;
  o.tp_chunks = a.tp_chunks;
  if (o.steps < 1) throw_invalid_argument("--steps must be >= 1");
  std::vector<Decisions> sources;
  if (!a.hit_trace.empty()) {
    sources.push_back(Decisions::load(a.hit_trace, a.trace_config, a.seed));
  } else if (!a.hit_rates.empty()) {
    for (double h : a.hit_rates) sources.push_back(Decisions::from_hit_rate(h, a.seed));
  } else {
    sources.push_back(Decisions::from_hit_rate(0.0, a.seed));  // --sp 1: unused
  }
  nlohmann::json all = nlohmann::json::array();
  if (!a.json) {
    std::printf("model %s: %d layers, %.2f GB weights/token, KV %s (%.0f B per token per layer)\n", shape.name.c_str(),
                shape.n_layers, shape.weight_bytes() / 1e9, shape.kv_type.c_str(), shape.kv_bytes_per_token_layer());
    std::printf("hardware %s (%s); tp %d, sp %d\n", hw.name.c_str(), a.hardware.c_str(), a.tp, a.sp);
  }
  const std::vector<int> thread_counts = a.threads.empty() ? std::vector<int>{1} : a.threads;
  std::vector<std::pair<int, const Decisions*>> runs;
  for (int threads : thread_counts) {
    for (const auto& d : sources) runs.emplace_back(threads, &d);
  }
  for (const auto& [threads, dp] : runs) {
    const Decisions& d = *dp;
    o.threads = threads;
    const auto results = project(shape, hw, o, a.ctx, d);
    if (!a.json) {
      if (hw.kind == ProfileKind::kCpuThreads) std::printf("threads %d\n", threads);
      if (a.sp == 2) std::printf("decisions: %s (mean hit rate %.1f%%)\n", d.description().c_str(), 100 * d.mean_hit_rate());
      std::printf("%8s %11s %9s", "ctx", "exact ms/t", "exact t/s");
      if (a.sp == 2) std::printf(" %11s %9s %8s %6s %8s", "alspec ms/t", "alspec t/s", "speedup", "hits", "break-even");
      std::printf(" %12s", "attn ovh ms");
      if (a.sp == 2) std::printf(" %13s %9s", "alspec ovh ms", "reduction");
      std::printf("\n");
    }
    for (const auto& r : results) {
      nlohmann::json j = to_json(r);
      j["model"] = shape.name;
      j["hardware"] = hw.name;
      j["tp"] = a.tp;
      j["sp"] = a.sp;
      if (hw.kind == ProfileKind::kCpuThreads) j["threads"] = threads;
      if (a.sp == 2) {
        j["decisions"] = d.description();
        j["hit_rate_target"] = d.mean_hit_rate();
      }
      all.push_back(j);
      if (a.json) {
        std::cout << j.dump() << "\n";
        continue;
      }
      std::printf("%8lld %11.3f %9.2f", static_cast<long long>(r.ctx), r.exact.ms_per_token, r.exact.tokens_per_s);
      if (r.alspec) {
        std::printf(" %11.3f %9.2f %7.3fx %5.0f%% %8s", r.alspec->ms_per_token, r.alspec->tokens_per_s, r.speedup,
                    100 * r.alspec->hit_rate, fmt_opt(r.break_even_hit_rate).c_str());
      }
      std::printf(" %12.3f", r.exact_attention_overhead_ms);
      if (r.alspec) {
        std::printf(" %13.3f %8.2fx", r.alspec_attention_overhead_ms,
                    r.alspec_attention_overhead_ms > 0 ? r.exact_attention_overhead_ms / r.alspec_attention_overhead_ms : 0.0);
      }
      std::printf("\n");
    }
  }
  if (!a.plot.empty()) {
    fs::create_directories(a.plot);
    const fs::path results = fs::path(a.plot) / "projection.json";
    std::ofstream f(results);
    if (!f) throw Error(ErrorKind::kIo, results.string() + ": cannot open for writing");
    f << all.dump(1) << "\n";
    f.close();
    make_plots(a, results);
  }
  return 0;
}

const CommandRegistrar kProject({"project", "Performance model: predicted decode latency of exact and ALSpec on a hardware profile",
                                 [](CLI::App& app) {
  auto a = std::make_shared<ProjectArgs>();
  app.add_option("-m,--model", a->model, "GGUF model whose shapes and tensor types to model");
  app.add_option("--preset", a->preset, "Named model shape: llama-3.1-8b, llama-3.2-1b, qwen2.5-0.5b, qwen2.5-1.5b");
  app.add_option("--weight-type", a->weight_type, "Preset weight type (f16, bf16, q8_0, q4_0, bfp8, bfp4, ...)")->capture_default_str();
  app.add_option("--mlp-type", a->mlp_type, "Preset type of the MLP gate and up projections (FF1, FF3; default: --weight-type)");
  app.add_option("--head-type", a->head_type, "Preset LM head weight type (default: --weight-type)");
  app.add_option("--kv-type", a->kv_type, "KV cache type (f16, bf16, f32, q8_0, bfp8)")->capture_default_str();
  app.add_option("--act-bytes", a->act_bytes, "Bytes per activation element in messages (default 4 on cpu-threads, 2 otherwise)");
  app.add_option("--hardware", a->hardware, "Hardware profile JSON (profiles/*.json)");
  app.add_option("--tp", a->tp, "Tensor-parallel devices per side")->capture_default_str();
  app.add_option("--exact-tp", a->exact_tp,
                 "TP degree of the exact baseline (default tp x sp: the same devices; e.g. --tp 1 --sp 2 --exact-tp 1 "
                 "compares ALSpec on two devices with exact on one)");
  app.add_option("--sp", a->sp, "Speculation sides: 1 (exact only) or 2 (exact on tp x 2 devices vs ALSpec 2 x tp)")->capture_default_str();
  app.add_option("-t,--threads", a->threads,
                 "cpu-threads profiles: threads of the exact device (ALSpec: half per device; MPI profiles: of every rank), comma-separated; "
                 "--calibrate: thread counts to measure (default 1,2)")
      ->delimiter(',');
  app.add_option("--ctx", a->ctx, "Context lengths (cached tokens)")->delimiter(',')->capture_default_str();
  app.add_option("--hit-rate", a->hit_rates, "Hit rate(s) in [0, 1], comma-separated")->delimiter(',');
  app.add_option("--hit-trace", a->hit_trace, "Decision trace: `alspec generate --trace` stderr or `alspec eval` items.jsonl");
  app.add_option("--trace-config", a->trace_config, "Eval config to read from items.jsonl, e.g. simulate/S128/l0.1");
  app.add_option("--spec-chunk", a->spec_chunk, "S: sink and window rows")->capture_default_str();
  app.add_option("--seed", a->seed, "Seed of the drawn decisions")->capture_default_str();
  app.add_option("--steps", a->steps, "Simulated decode steps per point")->capture_default_str();
  app.add_option("--rescale-bw", a->rescale_bw,
                 "Scale the profile's memory rates to this read bandwidth (GB/s) measured now (shared machines)");
  app.add_flag("--json", a->json, "One JSON object per context (and hit rate)");
  app.add_option("--plot", a->plot, "Write projection.json and PNG plots (scripts/plot_projection.py) into DIR");
  app.add_option("--python", a->python, "Python with matplotlib for --plot");
  app.add_flag("--calibrate", a->calibrate, "Measure this machine and write a cpu-threads profile to --out");
  app.add_flag("--calibrate-mpi", a->calibrate_mpi,
               "Under mpirun (>= 2 ranks): measure the MPI links and write --hardware's profile with them to --out "
               "(devices become MPI ranks of --threads threads each)");
  app.add_option("--tp-chunks", a->tp_chunks,
                 "MPI profiles: C, the column chunks the o/down products are all-gathered in (default: as alspec --tp)");
  app.add_option("--out", a->out, "Profile file written by --calibrate / --calibrate-mpi");
  app.add_option("--name", a->name, "Profile name for --calibrate (default: CPU model)");
  app.add_option("--models", a->calibrate_models,
                 "--calibrate: GGUF files whose own matvec shapes and attention heads (--kv-type; and their TP shards) are "
                 "measured too")
      ->delimiter(',');
  return std::function<int()>([a] { return run(*a); });
}});

}  // namespace
}  // namespace alspec::cli
