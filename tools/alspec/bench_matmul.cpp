#include "alspec/bench_matmul.h"

#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "alspec/core/dtype.h"
#include "alspec/core/error.h"
#include "alspec/kernels/cpu_features.h"
#include "alspec/kernels/matmul.h"
#include "alspec/kernels/matvec_benchmark.h"
#include "alspec/runtime/device.h"

namespace alspec::cli {
namespace {

struct MatmulOptions {
  std::vector<std::string> types = {"q5_0", "q8_0", "q4_k", "q6_k"};
  // Qwen2.5 0.5B: gate/up (rows x K), down, and the 151936-row LM head.
  std::vector<std::string> shapes = {"4864x896"};
  std::vector<int64_t> tokens = {1, 2, 4, 8, 16};
  std::vector<int> threads = {2};
  int reps = 5;
  size_t mib = 256;  // cycled weights: well past the L3, so every call streams from memory
  bool json = false;
};

std::pair<int64_t, int64_t> parse_shape(const std::string& s) {
  const size_t x = s.find('x');
  if (x == std::string::npos) throw_invalid_argument("--shape: expected ROWSxCOLS, got '" + s + "'");
  return {std::stoll(s.substr(0, x)), std::stoll(s.substr(x + 1))};
}

int run(const MatmulOptions& o) {
  if (!o.json) {
    std::printf("bench matmul: %s; %s\n", cpu_model_name().c_str(), matmul_kernel_variant().c_str());
    std::printf("%-6s %-12s %7s %7s %10s %9s %10s %9s\n", "type", "shape", "threads", "tokens", "ms", "GMAC/s",
                "us/token", "best ms");
  }
  for (int threads : o.threads) {
    Device dev({.name = "bench-matmul", .threads = threads, .cores = {}});
    for (const auto& ts : o.types) {
      const auto type = dtype_from_name(ts);
      if (!type) throw_invalid_argument("--type: unknown type '" + ts + "'");
      for (const auto& ss : o.shapes) {
        const auto [rows, cols] = parse_shape(ss);
        if (!row_bytes_checked(*type, static_cast<uint64_t>(cols))) continue;  // K-quants need K % 256 == 0
        for (int64_t n : o.tokens) {
          const MatvecBenchmarkResult r = benchmark_matvec(dev, *type, rows, cols, o.mib << 20, o.reps, n);
          const double gmacs = static_cast<double>(rows * cols * n) / r.seconds / 1e9;
          const double best = static_cast<double>(r.matrix_bytes) / r.best_gbps / 1e9;  // fastest call, seconds
          if (o.json) {
            std::cout << nlohmann::json{{"type", ts},       {"rows", rows},   {"cols", cols},
                                        {"threads", threads}, {"tokens", n},  {"ms", r.seconds * 1e3},
                                        {"gmacs", gmacs},   {"gbps", r.gbps}, {"best_ms", best * 1e3}}
                             .dump()
                      << "\n";
          } else {
            std::printf("%-6s %-12s %7d %7lld %10.3f %9.1f %10.1f %9.3f\n", ts.c_str(), ss.c_str(), threads,
                        static_cast<long long>(n), r.seconds * 1e3, gmacs, r.seconds * 1e6 / static_cast<double>(n),
                        best * 1e3);
          }
          std::fflush(stdout);
        }
      }
    }
  }
  return 0;
}

}  // namespace

std::function<int()> setup_bench_matmul(CLI::App& sub) {
  auto o = std::make_shared<MatmulOptions>();
  sub.add_option("--type", o->types, "Comma-separated weight types")->delimiter(',')->capture_default_str();
  sub.add_option("--shape", o->shapes, "Comma-separated ROWSxCOLS (output x input features)")
      ->delimiter(',')
      ->capture_default_str();
  sub.add_option("--tokens", o->tokens, "Comma-separated token counts (activation rows)")
      ->delimiter(',')
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub.add_option("-t,--threads", o->threads, "Comma-separated thread counts")->delimiter(',')->capture_default_str();
  sub.add_option("--reps", o->reps, "Passes over the cycled matrices (the median call is reported)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub.add_option("--mib", o->mib, "MiB of distinct matrices cycled")->check(CLI::PositiveNumber)->capture_default_str();
  sub.add_flag("--json", o->json, "One JSON object per point");
  return [o] { return run(*o); };
}

}  // namespace alspec::cli
