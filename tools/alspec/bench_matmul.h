// `alspec bench matmul`: matmul (matvec at one token) on random weights of one type and shape,
// cycled so that the weights stream from memory as in a decode pass, at several token counts.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace alspec::cli {

// Adds the benchmark's options to `sub`; the returned action runs it (exit code).
std::function<int()> setup_bench_matmul(CLI::App& sub);

}  // namespace alspec::cli
