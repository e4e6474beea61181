// `alspec bench`: `bench --model P ...` benchmarks a model (bench_model.cpp); `bench attention`
// benchmarks the attention kernels alone (bench_attention.cpp).
#include "alspec/bench_attention.h"
#include "alspec/bench_model.h"
#include "alspec/command.h"
#include "alspec/core/error.h"

namespace alspec::cli {
namespace {

const CommandRegistrar kBench({"bench", "Benchmark a model (--model) or the attention kernels (bench attention)",
                               [](CLI::App& app) {
  app.require_subcommand(0, 1);  // `bench` alone benchmarks a model
  CLI::App* attention = app.add_subcommand("attention", "Plain vs speculative flash-decode attention");
  std::function<int()> run_attention = setup_bench_attention(*attention);
  std::function<int()> run_model = setup_bench_model(app);
  return std::function<int()>([attention, run_attention, run_model] {
    if (attention->parsed()) return run_attention();
    return run_model();
  });
}});

}  // namespace
}  // namespace alspec::cli
