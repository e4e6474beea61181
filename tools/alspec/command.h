// Subcommand registry: each tools/alspec/cmd_*.cpp registers itself, so front ends stay
// independent files that only call the public library API.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace alspec::cli {

struct Command {
  std::string name;
  std::string description;
  // Adds options to `sub` and returns the action to run once parsing succeeded (returns exit code).
  std::function<std::function<int()>(CLI::App& sub)> setup;
};

std::vector<Command>& command_registry();

struct CommandRegistrar {
  explicit CommandRegistrar(Command c) { command_registry().push_back(std::move(c)); }
};

}  // namespace alspec::cli
