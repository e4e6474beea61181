// Typed getters: integer conversions when in range, clear errors naming file and key otherwise.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/gguf/gguf_file.h"
#include "alspec/gguf/gguf_writer.h"

namespace alspec::gguf {
namespace {

std::unique_ptr<GgufFile> sample() {
  GgufWriter w;
  w.set_u8("u8", 7);
  w.set_i8("neg", -1);
  w.set_u64("big", 1ull << 40);
  w.set_u64("huge", std::numeric_limits<uint64_t>::max());
  w.set_i32("i32", 123);
  w.set_f64("f64", 0.25);
  w.set_f32("f32", 1.5f);
  w.set_string("s", "text");
  w.set_bool("b", true);
  w.set_array("u8s", ValueType::kUint8, {Value::u8(1), Value::u8(2)});
  w.set_array("i64s", ValueType::kInt64, {Value::i64(5), Value::i64(1ll << 40)});
  w.set_array("f64s", ValueType::kFloat64, {Value::f64(0.5)});
  w.set_string_array("strs", {"a"});
  return GgufFile::from_bytes(w.to_bytes(), "g.gguf");
}

// Runs fn, expecting Error(kInvalidModel) with exactly `message`.
template <typename F>
void expect_error(F fn, const std::string& message) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected: " << message;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidModel);
    EXPECT_EQ(std::string(e.what()), message);
  }
}

TEST(GgufGetters, AbsentKeys) {
  const auto f = sample();
  EXPECT_EQ(f->find("nope"), nullptr);
  EXPECT_FALSE(f->get_string("nope"));
  EXPECT_FALSE(f->get_u64("nope"));
  EXPECT_FALSE(f->get_i64("nope"));
  EXPECT_FALSE(f->get_u32("nope"));
  EXPECT_FALSE(f->get_f32("nope"));
  EXPECT_FALSE(f->get_bool("nope"));
  EXPECT_TRUE(f->get_string_array("nope").empty());
  EXPECT_TRUE(f->get_f32_array("nope").empty());
  EXPECT_TRUE(f->get_i32_array("nope").empty());
}

TEST(GgufGetters, IntegerConversionsInRange) {
  const auto f = sample();
  EXPECT_EQ(f->get_u64("u8"), 7u);
  EXPECT_EQ(f->get_i64("u8"), 7);
  EXPECT_EQ(f->get_u32("u8"), 7u);
  EXPECT_EQ(f->get_i64("neg"), -1);
  EXPECT_EQ(f->get_u64("i32"), 123u);
  EXPECT_EQ(f->get_u64("big"), 1ull << 40);
  EXPECT_EQ(f->get_i64("big"), 1ll << 40);
  EXPECT_EQ(f->get_f32("u8"), 7.0f);  // integers are acceptable floats
  EXPECT_EQ(f->get_f32("f64"), 0.25f);
  EXPECT_EQ(f->get_f32("f32"), 1.5f);
  EXPECT_EQ(f->get_i32_array("u8s"), (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(f->get_f32_array("u8s"), (std::vector<float>{1, 2}));
  EXPECT_EQ(f->get_f32_array("f64s"), (std::vector<float>{0.5f}));
}

TEST(GgufGetters, IntegersOutOfRange) {
  const auto f = sample();
  expect_error([&] { (void)f->get_u32("big"); }, "g.gguf: key 'big': value 1099511627776 out of range for uint32");
  expect_error([&] { (void)f->get_u64("neg"); },
               "g.gguf: key 'neg': value -1 out of range for unsigned integer");
  expect_error([&] { (void)f->get_u32("neg"); }, "g.gguf: key 'neg': value -1 out of range for uint32");
  expect_error([&] { (void)f->get_i64("huge"); },
               "g.gguf: key 'huge': value 18446744073709551615 out of range for int64");
  expect_error([&] { (void)f->get_i32_array("i64s"); },
               "g.gguf: key 'i64s'[1]: value 1099511627776 out of range for int32");
}

TEST(GgufGetters, WrongTypes) {
  const auto f = sample();
  expect_error([&] { (void)f->get_u32("s"); }, "g.gguf: key 's': expected uint32, got string");
  expect_error([&] { (void)f->get_u64("f32"); }, "g.gguf: key 'f32': expected unsigned integer, got float32");
  expect_error([&] { (void)f->get_i64("b"); }, "g.gguf: key 'b': expected integer, got bool");
  expect_error([&] { (void)f->get_f32("s"); }, "g.gguf: key 's': expected float32, got string");
  expect_error([&] { (void)f->get_bool("u8"); }, "g.gguf: key 'u8': expected bool, got uint8");
  expect_error([&] { (void)f->get_string("u8s"); }, "g.gguf: key 'u8s': expected string, got array of uint8");
  expect_error([&] { (void)f->get_string_array("u8s"); },
               "g.gguf: key 'u8s': expected array of string, got array of uint8");
  expect_error([&] { (void)f->get_f32_array("strs"); },
               "g.gguf: key 'strs': expected array of float32, got array of string");
  expect_error([&] { (void)f->get_i32_array("f64s"); },
               "g.gguf: key 'f64s': expected array of int32, got array of float64");
  expect_error([&] { (void)f->get_i32_array("s"); }, "g.gguf: key 's': expected array of int32, got string");
  expect_error([&] { (void)f->find("s")->array_size(); }, "g.gguf: key 's': expected array, got string");
  expect_error([&] { (void)f->find("strs")->arrays(); },
               "g.gguf: key 'strs': expected array of array, got array of string");
}

TEST(GgufGetters, ValueTypeNames) {
  EXPECT_EQ(value_type_name(ValueType::kFloat64), "float64");
  EXPECT_EQ(value_type_name(static_cast<ValueType>(77)), "unknown");
  EXPECT_TRUE(is_valid_value_type(12));
  EXPECT_FALSE(is_valid_value_type(13));
}

}  // namespace
}  // namespace alspec::gguf
