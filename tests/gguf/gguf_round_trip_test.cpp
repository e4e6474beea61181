// Writer -> reader round trips: every value type (including nested arrays), versions 2 and 3,
// default and custom alignment, tensor data byte for byte.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include <unistd.h>

#include "alspec/core/error.h"
#include "alspec/gguf/gguf_file.h"
#include "alspec/gguf/gguf_writer.h"

namespace alspec::gguf {
namespace {

// One key per value type, plus arrays of every element type and nested arrays.
GgufWriter every_type_writer() {
  GgufWriter w;
  w.set_u8("t.u8", 200);
  w.set_i8("t.i8", -100);
  w.set_u16("t.u16", 60000);
  w.set_i16("t.i16", -30000);
  w.set_u32("t.u32", 4000000000u);
  w.set_i32("t.i32", -2000000000);
  w.set_u64("t.u64", std::numeric_limits<uint64_t>::max());
  w.set_i64("t.i64", std::numeric_limits<int64_t>::min());
  w.set_f32("t.f32", 3.5f);
  w.set_f64("t.f64", -1e300);
  w.set_bool("t.bool_true", true);
  w.set_bool("t.bool_false", false);
  w.set_string("t.string", "h\xC3\xA9llo \xF0\x9F\x98\x80");  // multi-byte UTF-8
  w.set_string("t.empty", "");
  w.set_array("a.u8", ValueType::kUint8, {Value::u8(0), Value::u8(255)});
  w.set_array("a.i8", ValueType::kInt8, {Value::i8(-128), Value::i8(127)});
  w.set_array("a.u16", ValueType::kUint16, {Value::u16(1), Value::u16(65535)});
  w.set_array("a.i16", ValueType::kInt16, {Value::i16(-32768)});
  w.set_array("a.u32", ValueType::kUint32, {Value::u32(7), Value::u32(0xffffffffu)});
  w.set_i32_array("a.i32", std::vector<int32_t>{-1, 0, 1, std::numeric_limits<int32_t>::max()});
  w.set_array("a.u64", ValueType::kUint64, {Value::u64(1ull << 63)});
  w.set_array("a.i64", ValueType::kInt64, {Value::i64(-5), Value::i64(5)});
  w.set_f32_array("a.f32", std::vector<float>{0.5f, -0.0f, std::numeric_limits<float>::infinity()});
  w.set_array("a.f64", ValueType::kFloat64, {Value::f64(0.1), Value::f64(-2.5)});
  w.set_array("a.bool", ValueType::kBool, {Value::boolean(true), Value::boolean(false)});
  w.set_string_array("a.string", {"a", "", "\xE2\x96\x81the", "<0x0A>"});
  w.set_array("a.empty", ValueType::kUint32, {});
  w.set_array("a.nested", ValueType::kArray,
              {Value::i32_array(std::vector<int32_t>{1, 2, 3}), Value::string_array({"x", "y"}),
               Value::array(ValueType::kArray, {Value::f32_array(std::vector<float>{9.0f})}),
               Value::array(ValueType::kBool, {})});
  return w;
}

void expect_same_metadata(const GgufWriter& w, const GgufFile& f) {
  // Re-read the writer's own image as the expected side, key by key.
  const auto expected = GgufFile::from_bytes(w.to_bytes(), "expected.gguf");
  ASSERT_EQ(f.keys(), expected->keys());
  for (const auto& k : f.keys()) {
    EXPECT_EQ(*f.find(k), *expected->find(k)) << k;
  }
}

class GgufRoundTrip : public ::testing::TestWithParam<uint32_t> {};

TEST_P(GgufRoundTrip, EveryValueType) {
  GgufWriter w = every_type_writer();
  w.set_version(GetParam());
  const auto f = GgufFile::from_bytes(w.to_bytes(), "rt.gguf");
  EXPECT_EQ(f->version(), GetParam());
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_TRUE(f->tensors().empty());
  ASSERT_EQ(f->keys().size(), 28u);
  EXPECT_EQ(f->keys().front(), "t.u8");
  EXPECT_EQ(f->keys().back(), "a.nested");

  EXPECT_EQ(f->find("t.u8")->type(), ValueType::kUint8);
  EXPECT_EQ(f->get_u32("t.u8"), 200u);
  EXPECT_EQ(f->get_i64("t.i8"), -100);
  EXPECT_EQ(f->get_u32("t.u16"), 60000u);
  EXPECT_EQ(f->get_i64("t.i16"), -30000);
  EXPECT_EQ(f->get_u32("t.u32"), 4000000000u);
  EXPECT_EQ(f->get_i64("t.i32"), -2000000000);
  EXPECT_EQ(f->get_u64("t.u64"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(f->get_i64("t.i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f->get_f32("t.f32"), 3.5f);
  EXPECT_EQ(f->find("t.f64")->as_f64(), -1e300);
  EXPECT_EQ(f->get_bool("t.bool_true"), true);
  EXPECT_EQ(f->get_bool("t.bool_false"), false);
  EXPECT_EQ(f->get_string("t.string"), "h\xC3\xA9llo \xF0\x9F\x98\x80");
  EXPECT_EQ(f->get_string("t.empty"), "");

  EXPECT_EQ(f->find("a.u8")->to_u64_vector(), (std::vector<uint64_t>{0, 255}));
  EXPECT_EQ(f->find("a.i8")->to_i64_vector(), (std::vector<int64_t>{-128, 127}));
  EXPECT_EQ(f->find("a.u16")->to_u64_vector(), (std::vector<uint64_t>{1, 65535}));
  EXPECT_EQ(f->find("a.i16")->to_i64_vector(), (std::vector<int64_t>{-32768}));
  EXPECT_EQ(f->find("a.u32")->to_u64_vector(), (std::vector<uint64_t>{7, 0xffffffffu}));
  EXPECT_EQ(f->get_i32_array("a.i32"), (std::vector<int32_t>{-1, 0, 1, std::numeric_limits<int32_t>::max()}));
  EXPECT_EQ(f->find("a.u64")->to_u64_vector(), (std::vector<uint64_t>{1ull << 63}));
  EXPECT_EQ(f->find("a.i64")->to_i64_vector(), (std::vector<int64_t>{-5, 5}));
  const auto f32s = f->get_f32_array("a.f32");
  ASSERT_EQ(f32s.size(), 3u);
  EXPECT_EQ(f32s[0], 0.5f);
  EXPECT_TRUE(f32s[1] == 0.0f && std::signbit(f32s[1]));
  EXPECT_TRUE(std::isinf(f32s[2]));
  EXPECT_EQ(f->find("a.f64")->at(0).as_f64(), 0.1);
  EXPECT_EQ(f->find("a.f64")->at(1).as_f64(), -2.5);
  EXPECT_TRUE(f->find("a.bool")->at(0).as_bool());
  EXPECT_FALSE(f->find("a.bool")->at(1).as_bool());
  EXPECT_EQ(f->get_string_array("a.string"), (std::vector<std::string>{"a", "", "\xE2\x96\x81the", "<0x0A>"}));
  EXPECT_EQ(f->find("a.empty")->array_type(), ValueType::kUint32);
  EXPECT_EQ(f->find("a.empty")->array_size(), 0u);

  const Value* nested = f->find("a.nested");
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(nested->array_type(), ValueType::kArray);
  ASSERT_EQ(nested->array_size(), 4u);
  EXPECT_EQ(nested->arrays()[0].to_i32_vector(), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(nested->arrays()[1].strings(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(nested->arrays()[2].arrays()[0].to_f32_vector(), (std::vector<float>{9.0f}));
  EXPECT_EQ(nested->arrays()[3].array_type(), ValueType::kBool);
  EXPECT_EQ(nested->arrays()[3].array_size(), 0u);
  EXPECT_EQ(nested->at(1).where(), "rt.gguf: key 'a.nested'[1]");

  // Writing what was read reproduces the same bytes.
  GgufWriter again;
  again.set_version(GetParam());
  for (const auto& k : f->keys()) again.set(k, *f->find(k));
  EXPECT_EQ(again.to_bytes(), w.to_bytes());
}

TEST_P(GgufRoundTrip, TensorsByteForByte) {
  GgufWriter w;
  w.set_version(GetParam());
  w.set_string("general.architecture", "llama");
  std::vector<uint8_t> a(4 * 3 * 5), b(34 * 2), c(2 * 7);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<uint8_t>(i * 7 + 1);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(255 - i);
  for (size_t i = 0; i < c.size(); ++i) c[i] = static_cast<uint8_t>(i ^ 0x5a);
  w.add_tensor("blk.0.attn_q.weight", DType::F32, {3, 5}, a);
  w.add_tensor("q8", DType::Q8_0, {64}, b);
  w.add_tensor("f16.vec", DType::F16, {7, 1, 1, 1}, c);
  const auto f = GgufFile::from_bytes(w.to_bytes(), "t.gguf");
  ASSERT_EQ(f->tensors().size(), 3u);
  EXPECT_EQ(f->data_offset() % 32, 0u);

  const TensorInfo* ta = f->find_tensor("blk.0.attn_q.weight");
  ASSERT_NE(ta, nullptr);
  EXPECT_EQ(ta->type, DType::F32);
  EXPECT_EQ(ta->dims, (std::vector<uint64_t>{3, 5}));
  EXPECT_EQ(ta->n_elements, 15u);
  EXPECT_EQ(ta->nbytes, a.size());
  EXPECT_EQ(std::vector<uint8_t>(ta->data, ta->data + ta->nbytes), a);

  const TensorInfo* tb = f->find_tensor("q8");
  ASSERT_NE(tb, nullptr);
  EXPECT_EQ(tb->type, DType::Q8_0);
  EXPECT_EQ(tb->n_elements, 64u);
  EXPECT_EQ(tb->nbytes, b.size());
  EXPECT_EQ(std::vector<uint8_t>(tb->data, tb->data + tb->nbytes), b);

  const TensorInfo* tc = f->find_tensor("f16.vec");
  ASSERT_NE(tc, nullptr);
  EXPECT_EQ(tc->dims.size(), 4u);
  EXPECT_EQ(std::vector<uint8_t>(tc->data, tc->data + tc->nbytes), c);

  EXPECT_EQ(f->tensors()[0].name, "blk.0.attn_q.weight");  // file order kept
  EXPECT_EQ(f->tensors()[2].name, "f16.vec");
  EXPECT_EQ(f->find_tensor("missing"), nullptr);
  for (const auto& t : f->tensors()) EXPECT_EQ(t.offset % 32, 0u);
}

TEST_P(GgufRoundTrip, CustomAlignment) {
  for (const size_t alignment : {1u, 8u, 64u, 4096u}) {
    GgufWriter w;
    w.set_version(GetParam());
    w.set_alignment(alignment);
    std::vector<uint8_t> a(12, 3), b(8, 4);
    w.add_tensor("a", DType::F32, {3}, a);
    w.add_tensor("b", DType::I16, {4}, b);
    const auto f = GgufFile::from_bytes(w.to_bytes(), "al.gguf");
    EXPECT_EQ(f->alignment(), alignment);
    EXPECT_EQ(f->get_u32("general.alignment"), static_cast<uint32_t>(alignment));
    EXPECT_EQ(f->data_offset() % alignment, 0u);
    for (const auto& t : f->tensors()) {
      EXPECT_EQ(t.offset % alignment, 0u);
      EXPECT_EQ(static_cast<uint64_t>(t.data - f->tensors()[0].data), t.offset - f->tensors()[0].offset);
    }
    EXPECT_EQ(std::vector<uint8_t>(f->tensors()[1].data, f->tensors()[1].data + 8), b);
  }
  GgufWriter w;
  w.set_alignment(64);
  w.set_alignment(32);  // back to the default: the key disappears
  EXPECT_EQ(GgufFile::from_bytes(w.to_bytes(), "d.gguf")->find("general.alignment"), nullptr);
}

INSTANTIATE_TEST_SUITE_P(Versions, GgufRoundTrip, ::testing::Values(2u, 3u),
                         [](const auto& info) { return "v" + std::to_string(info.param); });

TEST(GgufRoundTripFile, WriteFileAndOpen) {
  GgufWriter w = every_type_writer();
  std::vector<uint8_t> data(4 * 8);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i);
  w.add_tensor("w", DType::F32, {8}, data);
  const std::string path =
      (std::filesystem::temp_directory_path() / ("alspec_gguf_rt_" + std::to_string(::getpid()) + ".gguf")).string();
  std::vector<uint8_t> moved(4 * 4, 9);
  w.add_tensor("moved", DType::I32, {4}, std::move(moved));  // ownership-taking overload
  w.write_file(path);
  {
    std::ifstream in(path, std::ios::binary);
    const std::vector<uint8_t> on_disk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(on_disk, w.to_bytes());  // streaming writer == in-memory image
  }
  {
    const auto f = GgufFile::open(path);
    EXPECT_EQ(f->path(), path);
    expect_same_metadata(w, *f);
    const TensorInfo* t = f->find_tensor("w");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(std::vector<uint8_t>(t->data, t->data + t->nbytes), data);
    const TensorInfo* m = f->find_tensor("moved");
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(std::vector<uint8_t>(m->data, m->data + m->nbytes), std::vector<uint8_t>(16, 9));
  }
  std::remove(path.c_str());
}

TEST(GgufWriterChecks, RejectsInconsistentInput) {
  GgufWriter w;
  const std::vector<uint8_t> d(32);
  EXPECT_THROW(w.set_version(1), Error);
  EXPECT_THROW(w.set_alignment(24), Error);
  EXPECT_THROW(w.add_tensor("x", DType::F32, {7}, d), Error);    // 28 bytes expected
  EXPECT_THROW(w.add_tensor("x", DType::Q4_0, {16}, d), Error);  // not whole blocks
  EXPECT_THROW(w.add_tensor("x", DType::F32, {}, d), Error);
  w.add_tensor("x", DType::F32, {8}, d);
  EXPECT_THROW(w.add_tensor("x", DType::F32, {8}, d), Error);  // duplicate
  EXPECT_THROW(Value::array(ValueType::kInt32, {Value::u8(1)}), Error);
  const uint8_t two[4] = {2, 0, 0, 0};
  EXPECT_THROW(Value::scalar_from_raw(ValueType::kBool, two), Error);
  EXPECT_THROW(Value::scalar_from_raw(ValueType::kString, two), Error);
  EXPECT_THROW(Value::numeric_array_from_raw(ValueType::kUint32, {1, 2, 3}), Error);
  EXPECT_THROW(Value::numeric_array_from_raw(ValueType::kBool, {0, 1, 2}), Error);
  EXPECT_THROW(Value::numeric_array_from_raw(ValueType::kArray, {}), Error);
  EXPECT_EQ(Value::numeric_array_from_raw(ValueType::kUint16, {1, 0, 2, 1}).to_u64_vector(),
            (std::vector<uint64_t>{1, 258}));
  EXPECT_THROW(w.add_tensor("z", DType::F32, {8, 0}, d), Error);
  EXPECT_THROW(w.add_tensor("z", DType::F32, {1, 1, 1, 1, 8}, d), Error);
  EXPECT_THROW(w.add_tensor("z", DType::F32, {2, 1ull << 62, 1ull << 62}, d), Error);  // no overflow
  EXPECT_THROW(w.add_tensor("", DType::F32, {8}, d), Error);
  EXPECT_THROW(w.add_tensor("bad\xC0\x80", DType::F32, {8}, d), Error);
}

// The writer refuses what the reader would reject, so its output always loads.
TEST(GgufWriterChecks, RejectsWhatTheReaderWouldReject) {
  GgufWriter w;
  EXPECT_THROW(w.set_u32("", 1), Error);
  EXPECT_THROW(w.set_u32("k\xED\xA0\x80", 1), Error);
  EXPECT_THROW(w.set_string("k", "\xFF"), Error);
  EXPECT_THROW(w.set_string_array("k", {"ok", "\xC1\xBF"}), Error);
  EXPECT_THROW(w.set_array("k", ValueType::kArray, {Value::string_array({"\x80"})}), Error);
  Value deep = Value::i32_array(std::vector<int32_t>{1});
  for (size_t i = 0; i + 1 < kMaxArrayDepth; ++i) deep = Value::array(ValueType::kArray, {deep});
  EXPECT_NO_THROW(w.set("deep", deep));  // exactly at the limit
  EXPECT_THROW(w.set("deeper", Value::array(ValueType::kArray, {deep})), Error);
  EXPECT_THROW(w.set_u64("general.alignment", 64), Error);  // must be uint32
  EXPECT_THROW(w.set_u32("general.alignment", 48), Error);  // must be a power of two
  EXPECT_TRUE(w.to_bytes().size() > 0);
  EXPECT_NO_THROW(GgufFile::from_bytes(w.to_bytes(), "w.gguf"));
}

TEST(GgufWriterChecks, AlignmentKeyDrivesTheLayout) {
  GgufWriter w;
  w.set_u32("general.alignment", 128);  // same effect as set_alignment(128)
  const std::vector<uint8_t> a(4, 1), b(4, 2);
  w.add_tensor("a", DType::F32, {1}, a);
  w.add_tensor("b", DType::F32, {1}, b);
  const auto f = GgufFile::from_bytes(w.to_bytes(), "a.gguf");
  EXPECT_EQ(f->alignment(), 128u);
  EXPECT_EQ(f->find_tensor("b")->offset, 128u);
  w.remove("general.alignment");  // back to 32
  const auto g = GgufFile::from_bytes(w.to_bytes(), "b.gguf");
  EXPECT_EQ(g->alignment(), 32u);
  EXPECT_EQ(g->find_tensor("b")->offset, 32u);
}

TEST(GgufFromBytes, TensorDataIsAlignedInMemory) {
  for (const size_t alignment : {32u, 64u, 4096u}) {
    GgufWriter w;
    w.set_alignment(alignment);
    const std::vector<uint8_t> a(12, 1), b(8, 2);
    w.add_tensor("a", DType::F32, {3}, a);
    w.add_tensor("b", DType::F32, {2}, b);
    const auto f = GgufFile::from_bytes(w.to_bytes(), "m.gguf");
    for (const auto& t : f->tensors()) EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % alignment, 0u) << t.name;
  }
}

TEST(GgufWriterChecks, SetReplacesInPlace) {
  GgufWriter w;
  w.set_u32("a", 1);
  w.set_u32("b", 2);
  w.set_string("a", "now a string");
  const auto f = GgufFile::from_bytes(w.to_bytes(), "r.gguf");
  EXPECT_EQ(f->keys(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(f->get_string("a"), "now a string");
}

}  // namespace
}  // namespace alspec::gguf
