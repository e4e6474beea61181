#include "alspec/gguf/gguf_value.h"

#include <bit>
#include <cstring>
#include <limits>
#include <string>

#include "alspec/core/error.h"

namespace alspec::gguf {
namespace {

bool is_signed_type(ValueType t) {
  return t == ValueType::kInt8 || t == ValueType::kInt16 || t == ValueType::kInt32 ||
         t == ValueType::kInt64;
}

// Sign-extends the raw bits of a signed integer of type t.
int64_t signed_value(ValueType t, uint64_t bits) {
  switch (t) {
    case ValueType::kInt8: return static_cast<int8_t>(static_cast<uint8_t>(bits));
    case ValueType::kInt16: return static_cast<int16_t>(static_cast<uint16_t>(bits));
    case ValueType::kInt32: return static_cast<int32_t>(static_cast<uint32_t>(bits));
    default: return static_cast<int64_t>(bits);
  }
}

double float_value(ValueType t, uint64_t bits) {
  if (t == ValueType::kFloat32) return std::bit_cast<float>(static_cast<uint32_t>(bits));
  return std::bit_cast<double>(bits);
}

uint64_t load_le(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

void store_le(std::vector<uint8_t>& out, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

std::string describe(ValueType type, ValueType elem) {
  if (type != ValueType::kArray) return std::string(value_type_name(type));
  return "array of " + std::string(value_type_name(elem));
}

}  // namespace

std::string_view value_type_name(ValueType t) {
  switch (t) {
    case ValueType::kUint8: return "uint8";
    case ValueType::kInt8: return "int8";
    case ValueType::kUint16: return "uint16";
    case ValueType::kInt16: return "int16";
    case ValueType::kUint32: return "uint32";
    case ValueType::kInt32: return "int32";
    case ValueType::kFloat32: return "float32";
    case ValueType::kBool: return "bool";
    case ValueType::kString: return "string";
    case ValueType::kArray: return "array";
    case ValueType::kUint64: return "uint64";
    case ValueType::kInt64: return "int64";
    case ValueType::kFloat64: return "float64";
  }
  return "unknown";
}

bool is_valid_value_type(uint32_t id) { return id <= static_cast<uint32_t>(ValueType::kFloat64); }

bool is_integer_type(ValueType t) {
  switch (t) {
    case ValueType::kUint8: case ValueType::kInt8: case ValueType::kUint16: case ValueType::kInt16:
    case ValueType::kUint32: case ValueType::kInt32: case ValueType::kUint64: case ValueType::kInt64:
      return true;
    default:
      return false;
  }
}

bool is_float_type(ValueType t) { return t == ValueType::kFloat32 || t == ValueType::kFloat64; }

size_t scalar_size(ValueType t) {
  switch (t) {
    case ValueType::kUint8: case ValueType::kInt8: case ValueType::kBool: return 1;
    case ValueType::kUint16: case ValueType::kInt16: return 2;
    case ValueType::kUint32: case ValueType::kInt32: case ValueType::kFloat32: return 4;
    case ValueType::kUint64: case ValueType::kInt64: case ValueType::kFloat64: return 8;
    default: return 0;
  }
}

namespace {
// Scalar from raw bits (already zero-extended to 64 bits), independent of host byte order.
Value make_scalar(ValueType t, uint64_t bits) {
  uint8_t le[8];
  for (size_t i = 0; i < 8; ++i) le[i] = static_cast<uint8_t>(bits >> (8 * i));
  return Value::scalar_from_raw(t, le);
}
}  // namespace

Value Value::scalar_from_raw(ValueType t, const uint8_t* raw) {
  if (scalar_size(t) == 0) {
    throw_invalid_argument("gguf value: " + std::string(value_type_name(t)) + " is not a scalar type");
  }
  if (t == ValueType::kBool && raw[0] > 1) throw_invalid_argument("gguf value: bool byte must be 0 or 1");
  Value v;
  v.type_ = t;
  v.bits_ = load_le(raw, scalar_size(t));
  return v;
}

Value Value::u8(uint8_t x) { return make_scalar(ValueType::kUint8, x); }
Value Value::i8(int8_t x) { return make_scalar(ValueType::kInt8, static_cast<uint8_t>(x)); }
Value Value::u16(uint16_t x) { return make_scalar(ValueType::kUint16, x); }
Value Value::i16(int16_t x) { return make_scalar(ValueType::kInt16, static_cast<uint16_t>(x)); }
Value Value::u32(uint32_t x) { return make_scalar(ValueType::kUint32, x); }
Value Value::i32(int32_t x) { return make_scalar(ValueType::kInt32, static_cast<uint32_t>(x)); }
Value Value::u64(uint64_t x) { return make_scalar(ValueType::kUint64, x); }
Value Value::i64(int64_t x) { return make_scalar(ValueType::kInt64, static_cast<uint64_t>(x)); }
Value Value::f32(float x) { return make_scalar(ValueType::kFloat32, std::bit_cast<uint32_t>(x)); }
Value Value::f64(double x) { return make_scalar(ValueType::kFloat64, std::bit_cast<uint64_t>(x)); }
Value Value::boolean(bool x) { return make_scalar(ValueType::kBool, x ? 1 : 0); }

Value Value::string(std::string s) {
  Value v;
  v.type_ = ValueType::kString;
  v.str_ = std::move(s);
  return v;
}

Value Value::array(ValueType elem, std::vector<Value> items) {
  if (!is_valid_value_type(static_cast<uint32_t>(elem))) {
    throw_invalid_argument("gguf array: invalid element type " +
                           std::to_string(static_cast<uint32_t>(elem)));
  }
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].type_ != elem) {
      throw_invalid_argument("gguf array: item " + std::to_string(i) + " is " +
                             describe(items[i].type_, items[i].elem_) + ", expected " +
                             std::string(value_type_name(elem)));
    }
  }
  Value v;
  v.type_ = ValueType::kArray;
  v.elem_ = elem;
  if (elem == ValueType::kArray) {
    v.items_ = std::move(items);
  } else if (elem == ValueType::kString) {
    v.strs_.reserve(items.size());
    for (auto& it : items) v.strs_.push_back(std::move(it.str_));
  } else {
    const size_t w = scalar_size(elem);
    v.raw_.reserve(items.size() * w);
    for (const auto& it : items) store_le(v.raw_, it.bits_, w);
  }
  return v;
}

Value Value::string_array(std::vector<std::string> items) {
  Value v;
  v.type_ = ValueType::kArray;
  v.elem_ = ValueType::kString;
  v.strs_ = std::move(items);
  return v;
}

Value Value::f32_array(std::span<const float> items) {
  Value v;
  v.type_ = ValueType::kArray;
  v.elem_ = ValueType::kFloat32;
  v.raw_.reserve(items.size() * 4);
  for (float f : items) store_le(v.raw_, std::bit_cast<uint32_t>(f), 4);
  return v;
}

Value Value::i32_array(std::span<const int32_t> items) {
  Value v;
  v.type_ = ValueType::kArray;
  v.elem_ = ValueType::kInt32;
  v.raw_.reserve(items.size() * 4);
  for (int32_t x : items) store_le(v.raw_, static_cast<uint32_t>(x), 4);
  return v;
}

Value Value::numeric_array_from_raw(ValueType elem, std::vector<uint8_t> raw) {
  const size_t w = scalar_size(elem);
  if (w == 0 || raw.size() % w != 0) {
    throw_invalid_argument("gguf value: " + std::to_string(raw.size()) + " bytes are not an array of " +
                           std::string(value_type_name(elem)));
  }
  if (elem == ValueType::kBool) {
    for (uint8_t b : raw) {
      if (b > 1) throw_invalid_argument("gguf value: bool byte must be 0 or 1");
    }
  }
  Value v;
  v.type_ = ValueType::kArray;
  v.elem_ = elem;
  v.raw_ = std::move(raw);
  return v;
}

void Value::set_where(std::string where) {
  where_ = std::move(where);
  for (size_t i = 0; i < items_.size(); ++i) items_[i].set_where(where_ + "[" + std::to_string(i) + "]");
}

void Value::type_error(std::string_view expected) const {
  throw_invalid_model((where_.empty() ? std::string("gguf value") : where_) + ": expected " +
                      std::string(expected) + ", got " + describe(type_, elem_));
}

void Value::require_array(std::string_view expected) const {
  if (type_ != ValueType::kArray) type_error(expected);
}

ValueType Value::array_type() const {
  require_array("array");
  return elem_;
}

size_t Value::array_size() const {
  require_array("array");
  switch (elem_) {
    case ValueType::kArray: return items_.size();
    case ValueType::kString: return strs_.size();
    default: return raw_.size() / scalar_size(elem_);
  }
}

uint64_t Value::as_u64() const {
  if (!is_integer_type(type_)) type_error("unsigned integer");
  if (is_signed_type(type_)) {
    const int64_t s = signed_value(type_, bits_);
    if (s < 0) {
      throw_invalid_model(where_ + ": value " + std::to_string(s) + " out of range for unsigned integer");
    }
    return static_cast<uint64_t>(s);
  }
  return bits_;
}

int64_t Value::as_i64() const {
  if (!is_integer_type(type_)) type_error("integer");
  if (is_signed_type(type_)) return signed_value(type_, bits_);
  if (bits_ > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    throw_invalid_model(where_ + ": value " + std::to_string(bits_) + " out of range for int64");
  }
  return static_cast<int64_t>(bits_);
}

uint32_t Value::as_u32() const {
  if (!is_integer_type(type_)) type_error("uint32");
  if (is_signed_type(type_)) {
    const int64_t s = signed_value(type_, bits_);
    if (s < 0 || s > static_cast<int64_t>(std::numeric_limits<uint32_t>::max())) {
      throw_invalid_model(where_ + ": value " + std::to_string(s) + " out of range for uint32");
    }
    return static_cast<uint32_t>(s);
  }
  if (bits_ > std::numeric_limits<uint32_t>::max()) {
    throw_invalid_model(where_ + ": value " + std::to_string(bits_) + " out of range for uint32");
  }
  return static_cast<uint32_t>(bits_);
}

int32_t Value::as_i32() const {
  if (!is_integer_type(type_)) type_error("int32");
  if (is_signed_type(type_)) {
    const int64_t s = signed_value(type_, bits_);
    if (s < std::numeric_limits<int32_t>::min() || s > std::numeric_limits<int32_t>::max()) {
      throw_invalid_model(where_ + ": value " + std::to_string(s) + " out of range for int32");
    }
    return static_cast<int32_t>(s);
  }
  if (bits_ > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
    throw_invalid_model(where_ + ": value " + std::to_string(bits_) + " out of range for int32");
  }
  return static_cast<int32_t>(bits_);
}

double Value::as_f64() const {
  if (is_float_type(type_)) return float_value(type_, bits_);
  if (is_integer_type(type_)) {
    return is_signed_type(type_) ? static_cast<double>(signed_value(type_, bits_))
                                 : static_cast<double>(bits_);
  }
  type_error("number");
}

float Value::as_f32() const {
  if (!is_float_type(type_) && !is_integer_type(type_)) type_error("float32");
  return static_cast<float>(as_f64());
}

bool Value::as_bool() const {
  if (type_ != ValueType::kBool) type_error("bool");
  return bits_ != 0;
}

const std::string& Value::as_string() const {
  if (type_ != ValueType::kString) type_error("string");
  return str_;
}

uint64_t Value::raw_scalar_at(size_t i) const {
  const size_t w = scalar_size(elem_);
  return load_le(raw_.data() + i * w, w);
}

Value Value::at(size_t i) const {
  const size_t n = array_size();
  if (i >= n) {
    throw_invalid_argument(where_ + ": index " + std::to_string(i) + " out of range (size " +
                           std::to_string(n) + ")");
  }
  Value v;
  switch (elem_) {
    case ValueType::kArray: return items_[i];
    case ValueType::kString: v = string(strs_[i]); break;
    default: v = make_scalar(elem_, raw_scalar_at(i)); break;
  }
  v.where_ = where_ + "[" + std::to_string(i) + "]";
  return v;
}

const std::vector<std::string>& Value::strings() const {
  if (type_ != ValueType::kArray || elem_ != ValueType::kString) type_error("array of string");
  return strs_;
}

const std::vector<Value>& Value::arrays() const {
  if (type_ != ValueType::kArray || elem_ != ValueType::kArray) type_error("array of array");
  return items_;
}

std::vector<float> Value::to_f32_vector() const {
  if (type_ != ValueType::kArray || !(is_float_type(elem_) || is_integer_type(elem_))) {
    type_error("array of float32");
  }
  const size_t n = array_size();
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) {
    const uint64_t b = raw_scalar_at(i);
    if (is_float_type(elem_)) {
      out[i] = static_cast<float>(float_value(elem_, b));
    } else {
      out[i] = is_signed_type(elem_) ? static_cast<float>(signed_value(elem_, b)) : static_cast<float>(b);
    }
  }
  return out;
}

namespace {
// Element conversion through a temporary scalar so range errors name the index.
template <typename T, typename F>
std::vector<T> convert_ints(const Value& v, size_t n, F get) {
  std::vector<T> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = get(v.at(i));
  return out;
}
}  // namespace

std::vector<int32_t> Value::to_i32_vector() const {
  if (type_ != ValueType::kArray || !is_integer_type(elem_)) type_error("array of int32");
  if (elem_ == ValueType::kInt32) {  // fast path: the common token-type array
    std::vector<int32_t> out(array_size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<int32_t>(static_cast<uint32_t>(raw_scalar_at(i)));
    return out;
  }
  return convert_ints<int32_t>(*this, array_size(), [](const Value& e) { return e.as_i32(); });
}

std::vector<int64_t> Value::to_i64_vector() const {
  if (type_ != ValueType::kArray || !is_integer_type(elem_)) type_error("array of int64");
  return convert_ints<int64_t>(*this, array_size(), [](const Value& e) { return e.as_i64(); });
}

std::vector<uint64_t> Value::to_u64_vector() const {
  if (type_ != ValueType::kArray || !is_integer_type(elem_)) type_error("array of uint64");
  return convert_ints<uint64_t>(*this, array_size(), [](const Value& e) { return e.as_u64(); });
}

void Value::encode(std::vector<uint8_t>& out) const {
  switch (type_) {
    case ValueType::kString:
      store_le(out, str_.size(), 8);
      out.insert(out.end(), str_.begin(), str_.end());
      return;
    case ValueType::kArray:
      store_le(out, static_cast<uint32_t>(elem_), 4);
      store_le(out, array_size(), 8);
      if (elem_ == ValueType::kArray) {
        for (const auto& it : items_) it.encode(out);
      } else if (elem_ == ValueType::kString) {
        for (const auto& s : strs_) {
          store_le(out, s.size(), 8);
          out.insert(out.end(), s.begin(), s.end());
        }
      } else {
        out.insert(out.end(), raw_.begin(), raw_.end());
      }
      return;
    default:
      store_le(out, bits_, scalar_size(type_));
      return;
  }
}

bool Value::operator==(const Value& o) const {
  return type_ == o.type_ && elem_ == o.elem_ && bits_ == o.bits_ && str_ == o.str_ &&
         raw_ == o.raw_ && strs_ == o.strs_ && items_ == o.items_;
}

}  // namespace alspec::gguf
