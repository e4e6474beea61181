// Cross-check against the reference Python `gguf` package (tests/gguf/gguf_py_crosscheck.py):
// files written here must parse identically in Python, and files written by Python must parse
// identically here. Skipped when the project venv is absent.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "alspec/gguf/gguf_file.h"
#include "alspec/gguf/gguf_writer.h"

namespace alspec::gguf {
namespace {

namespace fs = std::filesystem;

const fs::path kPython = fs::path(ALSPEC_SOURCE_DIR) / ".venv/bin/python";
const fs::path kScript = fs::path(ALSPEC_SOURCE_DIR) / "tests/gguf/gguf_py_crosscheck.py";

std::string hex(const void* p, size_t n) {
  std::ostringstream s;
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) s << std::hex << std::setw(2) << std::setfill('0') << int(b[i]);
  return s.str();
}

std::string fnv1a64(const uint8_t* p, size_t n) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001B3ull;
  std::ostringstream s;
  s << std::hex << std::setw(16) << std::setfill('0') << h;
  return s.str();
}

// Same text as value_text() in the Python helper.
std::string value_text(const Value& v) {
  const std::string name(value_type_name(v.type()));
  std::ostringstream s;
  s << name << ':';
  switch (v.type()) {
    case ValueType::kString: s << hex(v.as_string().data(), v.as_string().size()); break;
    case ValueType::kFloat32:
      s << std::hex << std::setw(8) << std::setfill('0') << std::bit_cast<uint32_t>(v.as_f32());
      break;
    case ValueType::kFloat64:
      s << std::hex << std::setw(16) << std::setfill('0') << std::bit_cast<uint64_t>(v.as_f64());
      break;
    case ValueType::kBool: s << (v.as_bool() ? 1 : 0); break;
    case ValueType::kArray: {
      s.str("");
      s << "array:" << value_type_name(v.array_type()) << '[';
      for (size_t i = 0; i < v.array_size(); ++i) s << (i ? ";" : "") << value_text(v.at(i));
      s << ']';
      break;
    }
    case ValueType::kInt8: case ValueType::kInt16: case ValueType::kInt32: case ValueType::kInt64:
      s << v.as_i64();
      break;
    default: s << v.as_u64(); break;
  }
  return s.str();
}

std::string dump(const GgufFile& f) {
  std::ostringstream s;
  s << "version " << f.version() << "\nalignment " << f.alignment() << '\n';
  for (const auto& k : f.keys()) s << "kv " << k << ' ' << value_text(*f.find(k)) << '\n';
  for (const auto& t : f.tensors()) {
    s << "tensor " << t.name << " type=" << static_cast<uint32_t>(t.type) << " dims=";
    for (size_t d = 0; d < t.dims.size(); ++d) s << (d ? "," : "") << t.dims[d];
    s << " offset=" << t.offset << " nbytes=" << t.nbytes << " fnv=" << fnv1a64(t.data, t.nbytes) << '\n';
  }
  return s.str();
}

class PythonCrossCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kPython)) GTEST_SKIP() << "no venv python at " << kPython;
    dir_ = fs::temp_directory_path() / ("alspec_gguf_py_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  // Runs the helper; returns its stdout, failing the test on a non-zero exit.
  std::string run(const std::string& mode, const fs::path& file) {
    const fs::path out = dir_ / "out.txt";
    std::ostringstream c;  // (built by stream: GCC 12 warns falsely on long string concatenations)
    c << '\'' << kPython.string() << "' '" << kScript.string() << "' " << mode << " '" << file.string()
      << "' > '" << out.string() << "' 2>&1";
    const std::string cmd = c.str();
    const int rc = std::system(cmd.c_str());
    std::ifstream in(out);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(rc, 0) << cmd << "\n" << text.str();
    return text.str();
  }
  fs::path dir_;
};

TEST_F(PythonCrossCheck, PythonReadsWhatWeWrite) {
  for (const uint32_t version : {2u, 3u}) {
    for (const size_t alignment : {32u, 64u}) {
      GgufWriter w;
      w.set_version(version);
      w.set_alignment(alignment);
      w.set_string("general.architecture", "llama");
      w.set_u8("t.u8", 200);
      w.set_i8("t.i8", -100);
      w.set_u16("t.u16", 60000);
      w.set_i16("t.i16", -30000);
      w.set_u32("t.u32", 4000000000u);
      w.set_i32("t.i32", -2000000000);
      w.set_u64("t.u64", ~0ull);
      w.set_i64("t.i64", -(1ll << 62));
      w.set_f32("t.f32", -0.1f);
      w.set_f64("t.f64", 1e-300);
      w.set_bool("t.bool", false);
      w.set_string("t.string", "\xE2\x96\x81h\xC3\xA9");
      w.set_string_array("a.strings", {"a", "", "\xF0\x9F\x98\x80"});
      w.set_f32_array("a.f32", std::vector<float>{1.25f, -3.0f});
      w.set_i32_array("a.i32", std::vector<int32_t>{-7, 9});
      w.set_array("a.u64", ValueType::kUint64, {Value::u64(1), Value::u64(1ull << 63)});
      w.set_array("a.bool", ValueType::kBool, {Value::boolean(true), Value::boolean(false)});
      w.set_array("a.nested", ValueType::kArray,
                  {Value::i32_array(std::vector<int32_t>{1, 2}), Value::i32_array(std::vector<int32_t>{3})});
      std::vector<uint8_t> f32(4 * 6), q4(18 * 2), i8(5);
      for (size_t i = 0; i < f32.size(); ++i) f32[i] = static_cast<uint8_t>(i * 13);
      for (size_t i = 0; i < q4.size(); ++i) q4[i] = static_cast<uint8_t>(i * 5 + 3);
      for (size_t i = 0; i < i8.size(); ++i) i8[i] = static_cast<uint8_t>(250 - i);
      w.add_tensor("w.f32", DType::F32, {3, 2}, f32);
      w.add_tensor("w.q4", DType::Q4_0, {32, 2}, q4);
      w.add_tensor("w.i8", DType::I8, {5}, i8);
      const fs::path file = dir_ / ("ours_v" + std::to_string(version) + "_a" + std::to_string(alignment) + ".gguf");
      w.write_file(file.string());
      SCOPED_TRACE(file.string());
      EXPECT_EQ(run("dump", file), dump(*GgufFile::open(file.string())));
    }
  }
}

TEST_F(PythonCrossCheck, WeReadWhatPythonWrites) {
  const fs::path file = dir_ / "python.gguf";
  run("write", file);
  const auto f = GgufFile::open(file.string());
  EXPECT_EQ(run("dump", file), dump(*f));
  // And spot-check through the typed API.
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get_u64("t.u64"), ~0ull);
  EXPECT_EQ(f->get_string("t.string"), "h\xC3\xA9llo \xF0\x9F\x98\x80");
  EXPECT_EQ(f->get_string_array("a.strings"), (std::vector<std::string>{"\xE2\x96\x81the", "<0x0A>", "x"}));
  EXPECT_EQ(f->get_i32_array("a.i32"), (std::vector<int32_t>{-1, 0, 7}));
  EXPECT_EQ(f->find("a.nested")->arrays()[1].to_i32_vector(), (std::vector<int32_t>{3}));
  const TensorInfo* t = f->find_tensor("w.f32");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dims, (std::vector<uint64_t>{4, 3}));  // numpy (3, 4) -> ne = {4, 3}
  for (int i = 0; i < 12; ++i) {
    float x;
    std::memcpy(&x, t->data + 4 * i, 4);
    EXPECT_EQ(x, static_cast<float>(i));
  }
  const TensorInfo* q8 = f->find_tensor("w.q8");
  ASSERT_NE(q8, nullptr);
  EXPECT_EQ(q8->type, DType::Q8_0);
  EXPECT_EQ(q8->n_elements, 64u);
  EXPECT_EQ(q8->nbytes, 68u);
}

}  // namespace
}  // namespace alspec::gguf
