// Hand-built GGUF byte images for tests of malformed input: every field is written explicitly,
// so a test can put any value (valid or not) anywhere.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/gguf/gguf_file.h"

namespace alspec::gguf::testing {

class RawGguf {
 public:
  std::vector<uint8_t> bytes;

  RawGguf& le(uint64_t v, size_t n) {
    for (size_t i = 0; i < n; ++i) bytes.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  RawGguf& u8(uint8_t v) { return le(v, 1); }
  RawGguf& u32(uint32_t v) { return le(v, 4); }
  RawGguf& u64(uint64_t v) { return le(v, 8); }
  RawGguf& raw(std::string_view s) {
    bytes.insert(bytes.end(), s.begin(), s.end());
    return *this;
  }
  RawGguf& str(std::string_view s) { return u64(s.size()).raw(s); }
  RawGguf& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return raw("GGUF").u32(version).u64(n_tensors).u64(n_kv);
  }
  RawGguf& kv_u32(std::string_view key, uint32_t v) { return str(key).u32(4).u32(v); }
  RawGguf& kv_string(std::string_view key, std::string_view v) { return str(key).u32(8).str(v); }
  RawGguf& tensor(std::string_view name, const std::vector<uint64_t>& dims, uint32_t type,
                  uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) u64(d);
    return u32(type).u64(offset);
  }
  RawGguf& pad(size_t alignment) {
    while (bytes.size() % alignment != 0) bytes.push_back(0);
    return *this;
  }
  RawGguf& zeros(size_t n) {
    bytes.resize(bytes.size() + n, 0);
    return *this;
  }
};

// Asserts that parsing fails with a one-line kInvalidModel error naming the input and
// containing `problem`.
inline void expect_invalid(std::vector<uint8_t> bytes, std::string_view problem) {
  try {
    GgufFile::from_bytes(std::move(bytes), "bad.gguf");
    ADD_FAILURE() << "malformed input accepted; expected error containing: " << problem;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidModel) << msg;
    EXPECT_EQ(msg.rfind("bad.gguf: ", 0), 0u) << msg;
    EXPECT_NE(msg.find(problem), std::string::npos) << "message: " << msg << "\nexpected: " << problem;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

}  // namespace alspec::gguf::testing
