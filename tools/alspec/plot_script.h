// Runs one of scripts/plot_*.py on a results file, for the commands that offer PNG plots
// (eval, project). Plots are a convenience: when the script or a Python with matplotlib is
// missing, a note on stderr says how to make them later, and the command still succeeds.
#pragma once

#include <filesystem>
#include <string>

namespace alspec::cli {

// `command` names the caller in messages ("alspec eval"); `script` is relative to the source
// root (e.g. "scripts/plot_eval.py"), found above the executable or the working directory;
// `python` is the interpreter to use, or empty to try the source tree's .venv then python3.
void run_plot_script(const std::string& command, const std::string& script, const std::filesystem::path& results,
                     const std::string& out_dir, const std::string& python);

}  // namespace alspec::cli
