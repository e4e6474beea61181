// `alspec bench <what>`: benchmarks. Each nested subcommand lives in its own bench_*.cpp.
#include "alspec/bench_attention.h"
#include "alspec/command.h"

namespace alspec::cli {
namespace {

const CommandRegistrar kBench({"bench", "Benchmarks", [](CLI::App& app) {
  app.require_subcommand(1);
  CLI::App* attention = app.add_subcommand("attention", "Plain vs speculative flash-decode attention");
  std::function<int()> run_attention = setup_bench_attention(*attention);
  return std::function<int()>([attention, run_attention] {
    if (attention->parsed()) return run_attention();
    return 2;
  });
}});

}  // namespace
}  // namespace alspec::cli
