// `alspec bench attention`: plain vs speculative flash decode on Llama-3-8B layer shapes, with the
// memory read bandwidth measured in the same run as the yardstick.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace alspec::cli {

// Adds the benchmark's options to `sub`; the returned action runs it (exit code).
std::function<int()> setup_bench_attention(CLI::App& sub);

}  // namespace alspec::cli
