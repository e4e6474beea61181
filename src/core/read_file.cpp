#include "alspec/core/read_file.h"

#include <fstream>
#include <sstream>

#include "alspec/core/error.h"

namespace alspec {

std::string read_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  if (in) s << in.rdbuf();
  if (!in) throw Error(ErrorKind::kIo, path + ": cannot open" + (what.empty() ? "" : " " + what));
  return s.str();
}

}  // namespace alspec
