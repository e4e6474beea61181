#include "alspec/gguf/gguf_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "alspec/core/error.h"
#include "alspec/gguf/gguf_file.h"
#include "alspec/gguf/utf8.h"

namespace alspec::gguf {
namespace {

constexpr std::string_view kAlignmentKey = "general.alignment";

void put_le(std::vector<uint8_t>& out, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void put_string(std::vector<uint8_t>& out, std::string_view s) {
  put_le(out, s.size(), 8);
  out.insert(out.end(), s.begin(), s.end());
}

void pad_to(std::vector<uint8_t>& out, size_t alignment) {
  out.resize(out.size() + (alignment - out.size() % alignment) % alignment, 0);
}

bool is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

// The writer only produces files the reader accepts, so it applies the reader's rules to
// names and string values up front.
void check_name(std::string_view what, std::string_view name) {
  if (name.empty()) throw_invalid_argument("gguf writer: empty " + std::string(what));
  if (!is_valid_utf8(name)) {
    throw_invalid_argument("gguf writer: " + std::string(what) + " '" + std::string(name) + "' is not valid UTF-8");
  }
}

void check_value(const std::string& key, const Value& v, size_t depth) {
  if (v.type() == ValueType::kString && !is_valid_utf8(v.as_string())) {
    throw_invalid_argument("gguf writer: key '" + key + "': string value is not valid UTF-8");
  }
  if (!v.is_array()) return;
  if (depth >= kMaxArrayDepth) {
    throw_invalid_argument("gguf writer: key '" + key + "': arrays nested deeper than " +
                           std::to_string(kMaxArrayDepth));
  }
  if (v.array_type() == ValueType::kString) {
    for (const auto& s : v.strings()) {
      if (!is_valid_utf8(s)) throw_invalid_argument("gguf writer: key '" + key + "': array string is not valid UTF-8");
    }
  } else if (v.array_type() == ValueType::kArray) {
    for (const auto& item : v.arrays()) check_value(key, item, depth + 1);
  }
}

}  // namespace

void GgufWriter::set_version(uint32_t version) {
  if (version != 2 && version != 3) {
    throw_invalid_argument("gguf writer: unsupported version " + std::to_string(version) + " (2 or 3)");
  }
  version_ = version;
}

void GgufWriter::set_alignment(size_t alignment) {
  if (!is_pow2(alignment) || alignment > UINT32_MAX) {
    throw_invalid_argument("gguf writer: alignment " + std::to_string(alignment) + " is not a power of two");
  }
  if (alignment == kDefaultAlignment) {
    remove(kAlignmentKey);
  } else {
    set(std::string(kAlignmentKey), Value::u32(static_cast<uint32_t>(alignment)));
  }
}

void GgufWriter::set(std::string key, Value value) {
  check_name("key", key);
  check_value(key, value, 0);
  if (key == kAlignmentKey) {  // the key and the layout must agree
    if (value.type() != ValueType::kUint32 || !is_pow2(value.as_u32())) {
      throw_invalid_argument("gguf writer: general.alignment must be a power-of-two uint32");
    }
    alignment_ = value.as_u32();
  }
  const auto it = std::find(keys_.begin(), keys_.end(), key);
  if (it != keys_.end()) {
    values_[static_cast<size_t>(it - keys_.begin())] = std::move(value);
    return;
  }
  keys_.push_back(std::move(key));
  values_.push_back(std::move(value));
}

void GgufWriter::remove(std::string_view key) {
  const auto it = std::find(keys_.begin(), keys_.end(), key);
  if (it == keys_.end()) return;
  if (key == kAlignmentKey) alignment_ = kDefaultAlignment;
  values_.erase(values_.begin() + (it - keys_.begin()));
  keys_.erase(it);
}

void GgufWriter::check_tensor(const std::string& name, DType type, const std::vector<uint64_t>& dims,
                              size_t nbytes) const {
  check_name("tensor name", name);
  for (const auto& t : tensors_) {
    if (t.name == name) throw_invalid_argument("gguf writer: duplicate tensor '" + name + "'");
  }
  if (dims.empty() || dims.size() > kMaxDims) {
    throw_invalid_argument("gguf writer: tensor '" + name + "' must have 1.." + std::to_string(kMaxDims) +
                           " dimensions");
  }
  // Rows saturate at data.size() + 1: any larger shape is wrong anyway, and this cannot overflow.
  const uint64_t size = nbytes;
  uint64_t rows = 1;
  for (size_t d = 0; d < dims.size(); ++d) {
    if (dims[d] == 0) throw_invalid_argument("gguf writer: tensor '" + name + "' has a zero dimension");
    if (d > 0) rows = rows > size / dims[d] ? size + 1 : rows * dims[d];
  }
  const auto row = row_bytes_checked(type, dims[0]);  // >= 1 byte when present
  if (!row || size % *row != 0 || size / *row != rows) {
    throw_invalid_argument("gguf writer: tensor '" + name + "': " + std::to_string(nbytes) +
                           " bytes of data do not match its " + std::string(dtype_name(type)) + " shape");
  }
}

void GgufWriter::add_tensor(std::string name, DType type, std::vector<uint64_t> dims,
                            std::span<const uint8_t> data) {
  check_tensor(name, type, dims, data.size());
  tensors_.push_back(Tensor{std::move(name), type, std::move(dims), {data.begin(), data.end()}});
}

void GgufWriter::add_tensor(std::string name, DType type, std::vector<uint64_t> dims,
                            std::vector<uint8_t>&& data) {
  check_tensor(name, type, dims, data.size());
  tensors_.push_back(Tensor{std::move(name), type, std::move(dims), std::move(data)});
}

std::vector<uint8_t> GgufWriter::header_bytes() const {
  std::vector<uint8_t> out;
  put_le(out, 0x46554747u, 4);  // "GGUF"
  put_le(out, version_, 4);
  put_le(out, tensors_.size(), 8);
  put_le(out, keys_.size(), 8);
  for (size_t i = 0; i < keys_.size(); ++i) {
    put_string(out, keys_[i]);
    put_le(out, static_cast<uint32_t>(values_[i].type()), 4);
    values_[i].encode(out);
  }
  // Tensors are laid out in insertion order, each starting on an alignment boundary.
  uint64_t next = 0;
  for (const Tensor& t : tensors_) {
    put_string(out, t.name);
    put_le(out, t.dims.size(), 4);
    for (uint64_t d : t.dims) put_le(out, d, 8);
    put_le(out, static_cast<uint32_t>(t.type), 4);
    put_le(out, next, 8);
    next += t.data.size();
    next += (alignment_ - next % alignment_) % alignment_;
  }
  if (!tensors_.empty()) pad_to(out, alignment_);
  return out;
}

size_t GgufWriter::padding_after(const Tensor& t) const {
  return (alignment_ - t.data.size() % alignment_) % alignment_;
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
  std::vector<uint8_t> out = header_bytes();
  for (const Tensor& t : tensors_) {
    out.insert(out.end(), t.data.begin(), t.data.end());
    out.resize(out.size() + padding_after(t), 0);
  }
  return out;
}

void GgufWriter::write_file(const std::string& path) const {
  // Streams the tensor data instead of building the whole image: models can be large.
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) throw Error(ErrorKind::kIo, path + ": cannot create: " + std::strerror(errno));
  const std::vector<uint8_t> header = header_bytes();
  const std::vector<uint8_t> zeros(alignment_, 0);
  bool ok = std::fwrite(header.data(), 1, header.size(), f) == header.size();
  for (const Tensor& t : tensors_) {
    if (!ok) break;
    ok = std::fwrite(t.data.data(), 1, t.data.size(), f) == t.data.size() &&
         std::fwrite(zeros.data(), 1, padding_after(t), f) == padding_after(t);
  }
  ok = ok && std::fflush(f) == 0;
  const int err = errno;
  if (std::fclose(f) != 0 || !ok) {
    throw Error(ErrorKind::kIo, path + ": write failed: " + std::strerror(err));
  }
}

}  // namespace alspec::gguf
