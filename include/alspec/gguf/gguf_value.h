// A GGUF metadata value: a scalar, a string, or an array of one element type (arrays may nest).
// Values remember where they came from ("<path>: key 'k'") so that a wrong-type access
// produces an error naming the file and the key.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace alspec::gguf {

// Type ids as stored in the file.
enum class ValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6,
  kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};

// "uint8", "string", "array", ...; "unknown" for an id outside the enum.
std::string_view value_type_name(ValueType t);
bool is_valid_value_type(uint32_t id);
bool is_integer_type(ValueType t);
bool is_float_type(ValueType t);
// Encoded size of a scalar of type t (bool: 1); 0 for string and array.
size_t scalar_size(ValueType t);

class Value {
 public:
  Value() = default;  // uint8 0; only useful as a placeholder

  // Scalars. The writer and tests build values with these.
  static Value u8(uint8_t v);
  static Value i8(int8_t v);
  static Value u16(uint16_t v);
  static Value i16(int16_t v);
  static Value u32(uint32_t v);
  static Value i32(int32_t v);
  static Value u64(uint64_t v);
  static Value i64(int64_t v);
  static Value f32(float v);
  static Value f64(double v);
  static Value boolean(bool v);
  static Value string(std::string v);
  // Arrays. `items` must all have type `elem`, else Error(kInvalidArgument).
  static Value array(ValueType elem, std::vector<Value> items);
  static Value string_array(std::vector<std::string> items);
  static Value f32_array(std::span<const float> items);
  static Value i32_array(std::span<const int32_t> items);

  ValueType type() const { return type_; }
  bool is_array() const { return type_ == ValueType::kArray; }
  // Element type / length of an array; Error(kInvalidModel) naming the key if not an array.
  ValueType array_type() const;
  size_t array_size() const;

  // Context used in error messages, e.g. "model.gguf: key 'general.name'".
  const std::string& where() const { return where_; }
  void set_where(std::string where);

  // Typed scalar accessors. Integers of any integer type convert when the value is in range;
  // otherwise (or on a wrong type) Error(kInvalidModel, "<where>: expected X, got Y").
  uint64_t as_u64() const;
  int64_t as_i64() const;
  uint32_t as_u32() const;
  int32_t as_i32() const;
  double as_f64() const;  // floats and integers
  float as_f32() const;   // floats and integers
  bool as_bool() const;
  const std::string& as_string() const;

  // Array element i as a standalone value (copied; strings are copied too).
  Value at(size_t i) const;
  // Whole-array accessors with the same conversion rules as the scalar accessors.
  const std::vector<std::string>& strings() const;  // array of string only
  const std::vector<Value>& arrays() const;         // array of arrays only
  std::vector<float> to_f32_vector() const;
  std::vector<int32_t> to_i32_vector() const;
  std::vector<int64_t> to_i64_vector() const;
  std::vector<uint64_t> to_u64_vector() const;

  // Serialised form as stored after the type id (little-endian).
  void encode(std::vector<uint8_t>& out) const;

  // Build values from little-endian bytes (the reader's path: one copy of array data). t/elem
  // must be a numeric or bool type, raw a whole number of elements, bools 0 or 1; else
  // Error(kInvalidArgument).
  static Value scalar_from_raw(ValueType t, const uint8_t* raw);
  static Value numeric_array_from_raw(ValueType elem, std::vector<uint8_t> raw);

  bool operator==(const Value& other) const;  // ignores where()

 private:
  [[noreturn]] void type_error(std::string_view expected) const;
  void require_array(std::string_view expected) const;
  uint64_t raw_scalar_at(size_t i) const;  // numeric/bool array element bits

  ValueType type_ = ValueType::kUint8;
  ValueType elem_ = ValueType::kUint8;  // arrays only
  uint64_t bits_ = 0;                   // scalars: raw little-endian bits, zero-extended
  std::string str_;                     // kString
  std::vector<uint8_t> raw_;            // arrays of numbers/bools: packed elements
  std::vector<std::string> strs_;       // arrays of strings
  std::vector<Value> items_;            // arrays of arrays
  std::string where_;
};

}  // namespace alspec::gguf
