// alspec: command-line front end. Errors become one line on stderr and an exit code:
// 2 for bad input (malformed model, impossible option), 1 for runtime failures.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <iostream>
#include <map>
#include <memory>

#include "alspec/core/error.h"
#include "alspec/command.h"
#include "alspec/runtime/process_groups.h"
#include "parallel.h"

namespace alspec::cli {
std::vector<Command>& command_registry() {
  static std::vector<Command> registry;
  return registry;
}
}  // namespace alspec::cli

namespace {

// Under mpirun every rank runs the command; only rank 0 prints to stdout.
void quiet_stdout_unless_primary() {
  if (alspec::cli::primary_rank()) return;
  std::fflush(stdout);
  const int fd = ::open("/dev/null", O_WRONLY);
  if (fd >= 0) {
    ::dup2(fd, STDOUT_FILENO);
    ::close(fd);
  }
}

// Rank prefix for messages of a job with several ranks.
std::string rank_prefix() {
  const auto* g = alspec::cli::current_process_groups();
  if (g == nullptr || !g->distributed()) return "";
  return "rank " + std::to_string(g->world_rank) + "/" + std::to_string(g->world_size) + ": ";
}

int finish(int rc) {
  alspec::finalize_mpi();
  return rc;
}

// An error on one rank must stop the whole job (the other ranks may wait in a collective).
int fail(const std::string& msg, int rc) {
  std::cerr << "alspec: error: " << rank_prefix() << msg << "\n" << std::flush;
  const auto* g = alspec::cli::current_process_groups();
  if (g != nullptr && g->distributed()) alspec::abort_job("", rc);  // the message is printed above
  return finish(rc);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace alspec;
  cli::set_command_line(argc, argv);
  try {
    init_mpi(&argc, &argv);
  } catch (const Error& e) {
    std::cerr << "alspec: error: " << e.what() << "\n";
    return 1;
  }
  quiet_stdout_unless_primary();
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
    return finish(rc == 0 ? 0 : 2);
  }
  try {
    for (auto& [sub, action] : actions) {
      if (sub->parsed()) return finish(action());
    }
  } catch (const Error& e) {
    return fail(e.what(), e.kind() == ErrorKind::kRuntime ? 1 : 2);
  } catch (const std::exception& e) {
    return fail(e.what(), 1);
  }
  return finish(2);
}
