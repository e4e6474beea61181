// JSON and one-line summaries shared by the front ends.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "alspec/spec/engine.h"
#include "alspec/spec/generate.h"

namespace alspec::cli {

nlohmann::json timings_json(const GenerateResult& r);
std::string speculation_summary(const Engine& engine, const GenerateResult& r);

}  // namespace alspec::cli
