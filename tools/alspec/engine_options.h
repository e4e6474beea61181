// Options shared by every front end that runs a model: model path, threads, context, KV type,
// attention mode and speculation knobs, devices.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "alspec/spec/engine.h"

namespace alspec::cli {

struct EngineArgs {
  std::string model;
  int threads = 0;
  int64_t ctx_size = 0;
  std::string kv_type = "f16";
  std::string attention = "exact";
  float lambda = 0.1f;
  int spec_chunk = 0;
  int devices = 0;
  std::string device_cores;

  // Registers the options on `app`; `model_default` is used when --model is not given.
  void add_to(CLI::App& app, bool with_attention = true);
  // Validates and converts; throws Error(kInvalidArgument) on impossible values.
  EngineOptions to_options() const;
};

// Parses "1,2,3" into token ids; Error(kInvalidArgument) naming `option` otherwise.
std::vector<int32_t> parse_token_ids(const std::string& s, const std::string& option);

}  // namespace alspec::cli
