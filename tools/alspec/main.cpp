// alspec: command-line front end. Errors become one line on stderr and an exit code:
// 2 for bad input (malformed model, impossible option), 1 for runtime failures.
#include <cstdio>
#include <exception>
#include <iostream>
#include <map>
#include <memory>

#include "alspec/core/error.h"
#include "alspec/command.h"

namespace alspec::cli {
std::vector<Command>& command_registry() {
  static std::vector<Command> registry;
  return registry;
}
}  // namespace alspec::cli

int main(int argc, char** argv) {
  using namespace alspec;
  CLI::App app{"alspec: LLM inference with attention-level speculation"};
  app.set_version_flag("--version", std::string("alspec ") + ALSPEC_VERSION);
  app.require_subcommand(1);
  std::map<CLI::App*, std::function<int()>> actions;
  for (auto& cmd : cli::command_registry()) {
    CLI::App* sub = app.add_subcommand(cmd.name, cmd.description);
    actions[sub] = cmd.setup(*sub);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    for (auto& [sub, action] : actions) {
      if (sub->parsed()) return action();
    }
  } catch (const Error& e) {
    std::cerr << "alspec: error: " << e.what() << "\n";
    return e.kind() == ErrorKind::kRuntime ? 1 : 2;
  } catch (const std::exception& e) {
    std::cerr << "alspec: error: " << e.what() << "\n";
    return 1;
  }
  return 2;
}
