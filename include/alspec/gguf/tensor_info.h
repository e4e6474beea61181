// Description of one tensor in a GGUF file, validated against the file it points into.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "alspec/core/dtype.h"

namespace alspec::gguf {

struct TensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // ne[0] (innermost, contiguous) first; 1..4 entries, all > 0
  DType type = DType::F32;
  uint64_t offset = 0;          // relative to the start of the data section; aligned
  size_t nbytes = 0;            // bytes of data (whole blocks)
  const uint8_t* data = nullptr;  // into the file's bytes; valid while the GgufFile lives
  uint64_t n_elements = 0;
};

}  // namespace alspec::gguf
