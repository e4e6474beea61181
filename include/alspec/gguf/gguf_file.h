// Read-only view of a GGUF file (v2 or v3). Everything is validated when the file is opened,
// so later accesses never read out of bounds; tensor data is used in place (mmap).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "alspec/gguf/gguf_value.h"
#include "alspec/gguf/tensor_info.h"

namespace alspec {
class MappedFile;
}

namespace alspec::gguf {

inline constexpr size_t kDefaultAlignment = 32;
inline constexpr size_t kMaxArrayDepth = 8;  // nested arrays deeper than this are rejected
inline constexpr size_t kMaxDims = 4;

// Tensor data pointers are aligned in memory to min(alignment(), 4096): files are mapped at a
// page boundary and the data section starts at a multiple of alignment().
class GgufFile {
 public:
  // Maps the file. Error(kIo) if it cannot be read, Error(kInvalidModel, "<path>: <problem>")
  // if it is not a well-formed GGUF file.
  static std::unique_ptr<GgufFile> open(const std::string& path);
  // Parses an in-memory image; `name` stands for the path in error messages. The bytes are
  // copied into a page-aligned buffer so tensor data is aligned in memory as with open().
  static std::unique_ptr<GgufFile> from_bytes(std::vector<uint8_t> bytes, std::string name);

  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }
  size_t data_offset() const { return data_offset_; }  // start of the data section in the file
  size_t file_size() const { return size_; }

  const std::vector<std::string>& keys() const { return keys_; }  // in file order
  const Value* find(std::string_view key) const;                  // nullptr if absent

  // Typed getters: std::nullopt when absent; Error(kInvalidModel, "<path>: key '<k>': ...")
  // on a wrong type or an integer out of range of the requested type.
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<uint64_t> get_u64(std::string_view key) const;
  std::optional<int64_t> get_i64(std::string_view key) const;
  std::optional<uint32_t> get_u32(std::string_view key) const;
  std::optional<float> get_f32(std::string_view key) const;  // f32, f64 and integers
  std::optional<bool> get_bool(std::string_view key) const;
  // Arrays: empty when absent.
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<float> get_f32_array(std::string_view key) const;
  std::vector<int32_t> get_i32_array(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in file order
  const TensorInfo* find_tensor(std::string_view name) const;          // nullptr if absent

 private:
  GgufFile() = default;
  void parse(const uint8_t* data, size_t size);

  std::string path_;
  std::unique_ptr<MappedFile> mapped_;
  struct AlignedFree {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t, AlignedFree> owned_;
  size_t size_ = 0;
  uint32_t version_ = 0;
  size_t alignment_ = kDefaultAlignment;
  size_t data_offset_ = 0;
  std::vector<std::string> keys_;
  std::vector<Value> values_;  // parallel to keys_
  std::map<std::string, size_t, std::less<>> key_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace alspec::gguf
