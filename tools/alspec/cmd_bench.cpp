// `alspec bench`: `bench --model P ...` benchmarks a model (bench_model.cpp); `bench attention`
// benchmarks the attention kernels alone (bench_attention.cpp), `bench matmul` the weight
// products (bench_matmul.cpp).
#include "alspec/bench_attention.h"
#include "alspec/bench_matmul.h"
#include "alspec/bench_model.h"
#include "alspec/command.h"
#include "alspec/core/error.h"

namespace alspec::cli {
namespace {

const CommandRegistrar kBench({"bench", "Benchmark a model (--model), the attention kernels (bench attention) or matmul (bench matmul)",
                               [](CLI::App& app) {
  app.require_subcommand(0, 1);  // `bench` alone benchmarks a model
  CLI::App* attention = app.add_subcommand("attention", "Plain vs speculative flash-decode attention");
  std::function<int()> run_attention = setup_bench_attention(*attention);
  CLI::App* matmul = app.add_subcommand("matmul", "Weight products (matvec / matmul) at several token counts");
  std::function<int()> run_matmul = setup_bench_matmul(*matmul);
  std::function<int()> run_model = setup_bench_model(app);
  return std::function<int()>([attention, run_attention, matmul, run_matmul, run_model] {
    if (attention->parsed()) return run_attention();
    if (matmul->parsed()) return run_matmul();
    return run_model();
  });
}});

}  // namespace
}  // namespace alspec::cli
