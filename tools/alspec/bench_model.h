// `alspec bench --model ...`: decode/prefill throughput vs the measured memory roofline, per
// depth, thread count and attention mode (with the alspec overlap analysis).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace alspec::cli {

// Adds the model-benchmark options to `app`; the returned action runs it (requires --model).
std::function<int()> setup_bench_model(CLI::App& app);

}  // namespace alspec::cli
