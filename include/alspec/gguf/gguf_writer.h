// Builds a GGUF file image (v3 by default, v2 on request). Used by tests, the fuzz corpus
// generator and converters; the reader accepts everything it writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "alspec/core/dtype.h"
#include "alspec/gguf/gguf_value.h"

namespace alspec::gguf {

class GgufWriter {
 public:
  GgufWriter() = default;

  // 2 or 3; Error(kInvalidArgument) otherwise.
  void set_version(uint32_t version);
  // Power of two; writes general.alignment (uint32) when it differs from 32.
  void set_alignment(size_t alignment);

  // Setting an existing key replaces its value and keeps its position.
  void set(std::string key, Value value);
  void set_u8(std::string key, uint8_t v) { set(std::move(key), Value::u8(v)); }
  void set_i8(std::string key, int8_t v) { set(std::move(key), Value::i8(v)); }
  void set_u16(std::string key, uint16_t v) { set(std::move(key), Value::u16(v)); }
  void set_i16(std::string key, int16_t v) { set(std::move(key), Value::i16(v)); }
  void set_u32(std::string key, uint32_t v) { set(std::move(key), Value::u32(v)); }
  void set_i32(std::string key, int32_t v) { set(std::move(key), Value::i32(v)); }
  void set_u64(std::string key, uint64_t v) { set(std::move(key), Value::u64(v)); }
  void set_i64(std::string key, int64_t v) { set(std::move(key), Value::i64(v)); }
  void set_f32(std::string key, float v) { set(std::move(key), Value::f32(v)); }
  void set_f64(std::string key, double v) { set(std::move(key), Value::f64(v)); }
  void set_bool(std::string key, bool v) { set(std::move(key), Value::boolean(v)); }
  void set_string(std::string key, std::string v) { set(std::move(key), Value::string(std::move(v))); }
  void set_string_array(std::string key, const std::vector<std::string>& v) {
    set(std::move(key), Value::string_array(v));
  }
  void set_f32_array(std::string key, std::span<const float> v) { set(std::move(key), Value::f32_array(v)); }
  void set_i32_array(std::string key, std::span<const int32_t> v) { set(std::move(key), Value::i32_array(v)); }
  // Generic array of any element type, including nested arrays (items built with Value::*).
  void set_array(std::string key, ValueType elem, std::vector<Value> items) {
    set(std::move(key), Value::array(elem, std::move(items)));
  }
  void remove(std::string_view key);

  // data.size() must equal the size implied by type and dims (dims[0] a whole number of
  // blocks); names must be unique. Error(kInvalidArgument) otherwise. Data is copied.
  void add_tensor(std::string name, DType type, std::vector<uint64_t> dims, std::span<const uint8_t> data);
  // As above, taking ownership of the bytes instead of copying them.
  void add_tensor(std::string name, DType type, std::vector<uint64_t> dims, std::vector<uint8_t>&& data);

  std::vector<uint8_t> to_bytes() const;
  // Streams the image to `path` (no second in-memory copy of the tensor data); Error(kIo) on failure.
  void write_file(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    DType type;
    std::vector<uint64_t> dims;
    std::vector<uint8_t> data;
  };
  void check_tensor(const std::string& name, DType type, const std::vector<uint64_t>& dims, size_t nbytes) const;
  std::vector<uint8_t> header_bytes() const;  // everything before the tensor data, padded
  size_t padding_after(const Tensor& t) const;

  uint32_t version_ = 3;
  size_t alignment_ = 32;  // kDefaultAlignment; kept equal to general.alignment when set
  std::vector<std::string> keys_;
  std::vector<Value> values_;
  std::vector<Tensor> tensors_;
};

}  // namespace alspec::gguf
