// Bounds-checked little-endian reader over an untrusted byte image. Every failure throws
// Error(kInvalidModel, "<path>: ...") naming what was being read and where.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "alspec/core/error.h"

namespace alspec::gguf {

class ByteCursor {
 public:
  ByteCursor(const uint8_t* data, size_t size, const std::string& path)
      : data_(data), size_(size), path_(path) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  const uint8_t* here() const { return data_ + pos_; }

  [[noreturn]] void fail(const std::string& problem) const { throw_invalid_model(path_ + ": " + problem); }

  // Consumes n bytes, returning a pointer to them.
  const uint8_t* take(uint64_t n, std::string_view what) {
    if (n > remaining()) {
      fail("truncated at offset " + std::to_string(pos_) + " reading " + std::string(what) + " (" +
           std::to_string(n) + " bytes needed, " + std::to_string(remaining()) + " left)");
    }
    const uint8_t* p = data_ + pos_;
    pos_ += static_cast<size_t>(n);
    return p;
  }

  uint64_t uint(size_t width, std::string_view what) {
    const uint8_t* p = take(width, what);
    uint64_t v = 0;
    for (size_t i = 0; i < width; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
    return v;
  }
  uint32_t u32(std::string_view what) { return static_cast<uint32_t>(uint(4, what)); }
  uint64_t u64(std::string_view what) { return uint(8, what); }

  // A GGUF string: uint64 length then bytes (no terminator). The length is checked against
  // the bytes left before anything is allocated.
  std::string_view string(std::string_view what) {
    const uint64_t len = u64(what);
    if (len > remaining()) {
      fail(std::string(what) + ": length " + std::to_string(len) + " at offset " +
           std::to_string(pos_ - 8) + " exceeds the " + std::to_string(remaining()) +
           " bytes left in the file");
    }
    const uint8_t* p = take(len, what);
    return {reinterpret_cast<const char*>(p), static_cast<size_t>(len)};
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& path_;
};

}  // namespace alspec::gguf
