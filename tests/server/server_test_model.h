// The small real model the server tests run on (loaded once per test binary).
#pragma once

#include <memory>
#include <string>

#include "alspec/model/model.h"

namespace alspec::server::testing {

inline const Model& stories260k() {
  static std::unique_ptr<Model> m = Model::load(std::string(ALSPEC_SOURCE_DIR) + "/assets/models/stories260K.gguf");
  return *m;
}

}  // namespace alspec::server::testing
