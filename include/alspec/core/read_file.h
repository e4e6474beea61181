// A whole file into a string (model-independent inputs: task files, texts, hardware profiles).
#pragma once

#include <string>

namespace alspec {

// The bytes of `path`. Throws Error(kIo) "PATH: cannot open[ WHAT]" when it cannot be opened
// or read; `what` names the file's role for the message (e.g. "hardware profile").
std::string read_file(const std::string& path, const std::string& what = "");

}  // namespace alspec
