#include "plot_script.h"

#include <cstdio>
#include <cstdlib>
#include <system_error>
#include <vector>

namespace alspec::cli {
namespace fs = std::filesystem;
namespace {

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The ancestor of the executable (build trees live inside or next to the source tree) or of
// the working directory that holds `script`.
fs::path find_source_root(const std::string& script) {
  std::error_code ec;
  std::vector<fs::path> starts{fs::read_symlink("/proc/self/exe", ec).parent_path(), fs::current_path()};
  for (fs::path dir : starts) {
    for (; !dir.empty(); dir = dir.parent_path()) {
      if (fs::exists(dir / script)) return dir;
      if (dir == dir.parent_path()) break;
    }
  }
  return {};
}

}  // namespace

void run_plot_script(const std::string& command, const std::string& script, const fs::path& results,
                     const std::string& out_dir, const std::string& python) {
  const fs::path root = find_source_root(script);
  if (root.empty()) {
    std::fprintf(stderr, "%s: plots skipped: %s not found near the executable or the working directory\n",
                 command.c_str(), script.c_str());
    return;
  }
  std::vector<std::string> pythons;
  if (!python.empty()) pythons.push_back(python);
  else pythons = {(root / ".venv" / "bin" / "python").string(), "python3"};
  for (const auto& py : pythons) {
    if (py.find('/') != std::string::npos && !fs::exists(py)) continue;
    if (std::system((shell_quote(py) + " -c 'import matplotlib' >/dev/null 2>&1").c_str()) != 0) continue;
    const std::string cmd = shell_quote(py) + " " + shell_quote((root / script).string()) + " " +
                            shell_quote(results.string()) + " --out " + shell_quote(out_dir);
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "%s: plots failed: %s\n", command.c_str(), cmd.c_str());
    return;
  }
  std::string tried;
  for (const auto& p : pythons) tried += (tried.empty() ? "" : ", ") + p;
  std::fprintf(stderr, "%s: plots skipped: no Python with matplotlib found (tried %s); run %s %s later\n",
               command.c_str(), tried.c_str(), script.c_str(), results.c_str());
}

}  // namespace alspec::cli
