#include "alspec/gguf/gguf_file.h"

#include <algorithm>
#include <limits>
#include <new>
#include <numeric>

#include "alspec/core/error.h"
#include "alspec/core/mapped_file.h"
#include "alspec/gguf/utf8.h"
#include "gguf/byte_cursor.h"

namespace alspec::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr std::align_val_t kBufferAlignment{4096};

// Keys and names are shown in messages: cap them (a hostile 1 MB key stays one short line) and
// escape control characters so the message stays on one line.
std::string quoted(std::string_view s) {
  constexpr size_t kMax = 80;
  size_t n = std::min(s.size(), kMax);
  while (n < s.size() && n > 0 && (static_cast<uint8_t>(s[n]) & 0xC0) == 0x80) --n;  // whole characters
  std::string out = "'";
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (n < s.size()) out += "...";
  return out + "'";
}

void check_utf8(ByteCursor& in, std::string_view s, const std::string& what) {
  const size_t bad = first_invalid_utf8(s);
  if (bad != s.size()) in.fail(what + ": invalid UTF-8 at byte " + std::to_string(bad));
}

// Smallest encoding of one array element, used to bound counts by the bytes left.
size_t min_encoded_size(ValueType t) {
  if (t == ValueType::kString) return 8;
  if (t == ValueType::kArray) return 12;
  return scalar_size(t);
}

Value read_value(ByteCursor& in, ValueType type, size_t depth, const std::string& what) {
  switch (type) {
    case ValueType::kString: {
      const std::string_view s = in.string(what);
      check_utf8(in, s, what);
      return Value::string(std::string(s));
    }
    case ValueType::kArray: {
      if (depth >= kMaxArrayDepth) {
        in.fail(what + ": arrays nested deeper than " + std::to_string(kMaxArrayDepth));
      }
      const uint32_t elem_id = in.u32(what + " element type");
      if (!is_valid_value_type(elem_id)) {
        in.fail(what + ": invalid array element type " + std::to_string(elem_id));
      }
      const auto elem = static_cast<ValueType>(elem_id);
      const uint64_t count = in.u64(what + " array length");
      if (count > in.remaining() / min_encoded_size(elem)) {
        in.fail(what + ": array of " + std::to_string(count) + " " +
                std::string(value_type_name(elem)) + " elements exceeds the " +
                std::to_string(in.remaining()) + " bytes left in the file");
      }
      const auto n = static_cast<size_t>(count);
      if (elem == ValueType::kString) {
        std::vector<std::string> items;
        items.reserve(n);
        for (size_t i = 0; i < n; ++i) {
          const std::string item_what = what + "[" + std::to_string(i) + "]";
          const std::string_view s = in.string(item_what);
          const size_t bad = first_invalid_utf8(s);
          if (bad != s.size()) in.fail(item_what + ": invalid UTF-8 at byte " + std::to_string(bad));
          items.emplace_back(s);
        }
        return Value::string_array(std::move(items));
      }
      if (elem == ValueType::kArray) {
        std::vector<Value> items;
        items.reserve(n);
        for (size_t i = 0; i < n; ++i) {
          items.push_back(read_value(in, ValueType::kArray, depth + 1, what + "[" + std::to_string(i) + "]"));
        }
        return Value::array(ValueType::kArray, std::move(items));
      }
      const size_t w = scalar_size(elem);
      const uint8_t* p = in.take(count * w, what + " array data");
      if (elem == ValueType::kBool) {
        for (size_t i = 0; i < n; ++i) {
          if (p[i] > 1) {
            in.fail(what + "[" + std::to_string(i) + "]: invalid bool byte " + std::to_string(p[i]));
          }
        }
      }
      return Value::numeric_array_from_raw(elem, std::vector<uint8_t>(p, p + n * w));
    }
    default: {
      const uint8_t* p = in.take(scalar_size(type), what);
      if (type == ValueType::kBool && *p > 1) in.fail(what + ": invalid bool byte " + std::to_string(*p));
      return Value::scalar_from_raw(type, p);
    }
  }
}

bool checked_mul(uint64_t a, uint64_t b, uint64_t& out) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return false;
  out = a * b;
  return true;
}

}  // namespace

GgufFile::~GgufFile() = default;

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = path;
  f->mapped_ = std::make_unique<MappedFile>(path);
  f->parse(f->mapped_->data(), f->mapped_->size());
  return f;
}

void GgufFile::AlignedFree::operator()(uint8_t* p) const { ::operator delete(p, kBufferAlignment); }

std::unique_ptr<GgufFile> GgufFile::from_bytes(std::vector<uint8_t> bytes, std::string name) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = std::move(name);
  f->owned_.reset(static_cast<uint8_t*>(::operator new(std::max<size_t>(bytes.size(), 1), kBufferAlignment)));
  std::copy(bytes.begin(), bytes.end(), f->owned_.get());
  const size_t size = bytes.size();
  std::vector<uint8_t>().swap(bytes);  // release the caller's copy before parsing allocates more
  f->parse(f->owned_.get(), size);
  return f;
}

void GgufFile::parse(const uint8_t* data, size_t size) {
  size_ = size;
  ByteCursor in(data, size, path_);
  if (size < 4) in.fail("file of " + std::to_string(size) + " bytes is too short for a GGUF header");
  const uint32_t magic = in.u32("magic");
  if (magic != kMagic) {
    in.fail("bad magic (first bytes are not \"GGUF\"); not a GGUF file");
  }
  version_ = in.u32("version");
  if (version_ != 2 && version_ != 3) {
    const uint32_t swapped = __builtin_bswap32(version_);
    if (swapped == 2 || swapped == 3) in.fail("big-endian GGUF files are not supported");
    in.fail("unsupported GGUF version " + std::to_string(version_) + " (supported: 2, 3)");
  }
  const uint64_t n_tensors = in.u64("tensor count");
  const uint64_t n_kv = in.u64("metadata key/value count");
  // Each entry needs at least a length and a type, so a count larger than this cannot fit.
  if (n_kv > in.remaining() / 12) {
    in.fail("metadata count " + std::to_string(n_kv) + " exceeds what the file can hold");
  }

  keys_.reserve(static_cast<size_t>(n_kv));
  values_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string key_what = "metadata key #" + std::to_string(i);
    const std::string_view key = in.string(key_what);
    if (key.empty()) in.fail(key_what + ": empty key");
    check_utf8(in, key, key_what);
    const std::string where = "key " + quoted(key);
    if (key_index_.count(key) != 0) in.fail("duplicate " + where);
    const uint32_t type_id = in.u32(where + " type");
    if (!is_valid_value_type(type_id)) in.fail(where + ": invalid value type " + std::to_string(type_id));
    Value v = read_value(in, static_cast<ValueType>(type_id), 0, where);
    v.set_where(path_ + ": " + where);
    key_index_.emplace(std::string(key), keys_.size());
    keys_.emplace_back(key);
    values_.push_back(std::move(v));
  }

  if (const Value* a = find("general.alignment")) {
    if (a->type() != ValueType::kUint32) {
      in.fail("key 'general.alignment': expected uint32, got " + std::string(value_type_name(a->type())));
    }
    const uint32_t al = a->as_u32();
    if (al == 0 || (al & (al - 1)) != 0) {
      in.fail("key 'general.alignment': " + std::to_string(al) + " is not a power of two");
    }
    alignment_ = al;
  }

  // Each tensor description needs at least name length, n_dims, one dim, type and offset.
  if (n_tensors > in.remaining() / 32) {
    in.fail("tensor count " + std::to_string(n_tensors) + " exceeds what the file can hold");
  }
  tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    const std::string name_what = "tensor #" + std::to_string(i) + " name";
    const std::string_view name = in.string(name_what);
    if (name.empty()) in.fail(name_what + ": empty name");
    check_utf8(in, name, name_what);
    const std::string where = "tensor " + quoted(name);
    if (tensor_index_.count(name) != 0) in.fail("duplicate " + where);

    TensorInfo t;
    t.name = std::string(name);
    const uint32_t n_dims = in.u32(where + " n_dims");
    if (n_dims == 0 || n_dims > kMaxDims) {
      in.fail(where + ": n_dims " + std::to_string(n_dims) + " outside 1.." + std::to_string(kMaxDims));
    }
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = in.u64(where + " dimension");
      if (ne == 0) in.fail(where + ": dimension " + std::to_string(d) + " is zero");
      if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          !checked_mul(n_elements, ne, n_elements) ||
          n_elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        in.fail(where + ": element count overflows");
      }
      t.dims.push_back(ne);
    }
    t.n_elements = n_elements;
    const uint32_t type_id = in.u32(where + " type");
    const auto info = dtype_info(type_id);
    if (!info) in.fail(where + ": unknown tensor type id " + std::to_string(type_id));
    t.type = info->type;
    const auto row = row_bytes_checked(t.type, t.dims[0]);
    if (!row) {
      in.fail(where + ": row of " + std::to_string(t.dims[0]) + " elements is not a multiple of the " +
              std::string(info->name) + " block size " + std::to_string(info->block_size));
    }
    uint64_t nbytes = 0;
    if (!checked_mul(*row, n_elements / t.dims[0], nbytes) || nbytes > size) {
      in.fail(where + ": data size exceeds the file size " + std::to_string(size));
    }
    t.nbytes = static_cast<size_t>(nbytes);
    t.offset = in.u64(where + " offset");
    if (t.offset % alignment_ != 0) {
      in.fail(where + ": data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
              std::to_string(alignment_));
    }
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  data_offset_ = in.pos() + (alignment_ - in.pos() % alignment_) % alignment_;
  for (auto& t : tensors_) {
    // data_offset_ <= size + alignment and nbytes <= size, so only offset can overflow.
    if (t.offset > size || data_offset_ + t.offset + t.nbytes > size) {
      in.fail("tensor " + quoted(t.name) + ": data at offset " + std::to_string(t.offset) + " + " +
              std::to_string(t.nbytes) + " bytes (data section at " + std::to_string(data_offset_) +
              ") is outside the file of " + std::to_string(size) + " bytes");
    }
    t.data = data + data_offset_ + t.offset;
  }
  std::vector<size_t> order(tensors_.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return tensors_[a].offset < tensors_[b].offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const TensorInfo& prev = tensors_[order[k - 1]];
    const TensorInfo& cur = tensors_[order[k]];
    if (prev.offset + prev.nbytes > cur.offset) {
      in.fail("tensor " + quoted(cur.name) + ": data overlaps tensor " + quoted(prev.name));
    }
  }
}

const Value* GgufFile::find(std::string_view key) const {
  const auto it = key_index_.find(key);
  return it == key_index_.end() ? nullptr : &values_[it->second];
}

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  return v->as_string();
}

std::optional<uint64_t> GgufFile::get_u64(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  return v->as_u64();
}

std::optional<int64_t> GgufFile::get_i64(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  return v->as_i64();
}

std::optional<uint32_t> GgufFile::get_u32(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  return v->as_u32();
}

std::optional<float> GgufFile::get_f32(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  return v->as_f32();
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::nullopt;
  return v->as_bool();
}

std::vector<std::string> GgufFile::get_string_array(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return {};
  return v->strings();
}

std::vector<float> GgufFile::get_f32_array(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return {};
  return v->to_f32_vector();
}

std::vector<int32_t> GgufFile::get_i32_array(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return {};
  return v->to_i32_vector();
}

const TensorInfo* GgufFile::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace alspec::gguf
