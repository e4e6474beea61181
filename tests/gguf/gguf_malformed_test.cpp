// One test per class of malformed input: each must be rejected with a one-line kInvalidModel
// error that names the file and the problem — never a crash, an out-of-bounds read or a
// huge allocation.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <unistd.h>

#include "alspec/gguf/gguf_file.h"
#include "alspec/gguf/gguf_writer.h"
#include "gguf/raw_gguf.h"
#include "repo_paths.h"

namespace alspec::gguf {
namespace {

using testing::expect_invalid;
using testing::RawGguf;

constexpr uint64_t kMax64 = std::numeric_limits<uint64_t>::max();
constexpr uint32_t kF32 = 0, kQ4_0 = 2;

// One-tensor image: F32 tensor "t" of `n` elements at data offset 0, 32-byte alignment.
std::vector<uint8_t> one_tensor(uint64_t n) {
  RawGguf r;
  r.header(1, 0).tensor("t", {n}, kF32, 0).pad(32).zeros(n * 4);
  return r.bytes;
}

TEST(GgufMalformed, AcceptsTheBaselineImages) {
  EXPECT_NO_THROW(GgufFile::from_bytes(one_tensor(8), "ok.gguf"));
  EXPECT_NO_THROW(GgufFile::from_bytes(RawGguf().header(0, 0).bytes, "ok.gguf"));
}

TEST(GgufMalformed, BadMagic) {
  RawGguf r;
  r.raw("GGML").u32(3).u64(0).u64(0);
  expect_invalid(r.bytes, "bad magic");
}

TEST(GgufMalformed, TooShortForHeader) { expect_invalid({'G', 'G'}, "too short for a GGUF header"); }

TEST(GgufMalformed, EmptyFile) { expect_invalid({}, "too short"); }

TEST(GgufMalformed, Version1Rejected) {
  expect_invalid(RawGguf().header(0, 0, 1).bytes, "unsupported GGUF version 1");
}

TEST(GgufMalformed, FutureVersionRejected) {
  expect_invalid(RawGguf().header(0, 0, 4).bytes, "unsupported GGUF version 4");
}

TEST(GgufMalformed, BigEndianRejected) {
  expect_invalid(RawGguf().header(0, 0, 0x03000000).bytes, "big-endian");
}

// Every proper prefix of a valid file with metadata of all kinds and two tensors must fail.
TEST(GgufMalformed, TruncatedAnywhere) {
  GgufWriter w;
  w.set_string("general.name", "trunc");
  w.set_u64("a.u64", 7);
  w.set_bool("a.bool", true);
  w.set_f32_array("a.f32s", std::vector<float>{1, 2, 3});
  w.set_string_array("a.strs", {"x", "yz"});
  w.set_array("a.nested", ValueType::kArray, {Value::i32_array(std::vector<int32_t>{1, 2})});
  const std::vector<uint8_t> d1(16, 1), d2(34, 2);
  w.add_tensor("t1", DType::F32, {4}, d1);
  w.add_tensor("t2", DType::Q8_0, {32}, d2);
  const std::vector<uint8_t> full = w.to_bytes();
  // The file ends with t2's data plus padding; the last byte of t2's data is the last byte
  // that matters.
  const auto f = GgufFile::from_bytes(full, "full.gguf");
  const size_t needed = f->data_offset() + f->find_tensor("t2")->offset + 34;
  for (size_t n = 0; n < needed; ++n) {
    SCOPED_TRACE("prefix of " + std::to_string(n) + " bytes");
    std::vector<uint8_t> prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    expect_invalid(std::move(prefix), "");  // any problem, but one-line, kInvalidModel, named
  }
  // Spot-check the messages of a few cut points.
  expect_invalid(std::vector<uint8_t>(full.begin(), full.begin() + 10), "truncated at offset 8 reading tensor count");
  expect_invalid(std::vector<uint8_t>(full.begin(), full.begin() + 30), "metadata count 6 exceeds");
  expect_invalid(std::vector<uint8_t>(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(needed - 1)),
                 "outside the file");
}

TEST(GgufMalformed, HugeMetadataCount) {
  expect_invalid(RawGguf().header(0, kMax64).bytes, "metadata count 18446744073709551615 exceeds");
}

TEST(GgufMalformed, HugeTensorCount) {
  expect_invalid(RawGguf().header(kMax64, 0).bytes, "tensor count 18446744073709551615 exceeds");
}

TEST(GgufMalformed, HugeKeyLength) {
  RawGguf r;
  r.header(0, 1).u64(kMax64).u32(4).u32(0);
  expect_invalid(r.bytes, "metadata key #0: length 18446744073709551615");
}

TEST(GgufMalformed, HugeStringValueLength) {
  RawGguf r;
  r.header(0, 1).str("k").u32(8).u64(1ull << 40).raw("abc");
  expect_invalid(r.bytes, "key 'k': length 1099511627776");
}

TEST(GgufMalformed, HugeArrayCountOverflowingByteSize) {
  // 2^62 uint32 elements: count * 4 overflows 64 bits.
  RawGguf r;
  r.header(0, 1).str("k").u32(9).u32(4).u64(1ull << 62).u32(0);
  expect_invalid(r.bytes, "key 'k': array of 4611686018427387904 uint32 elements exceeds");
}

TEST(GgufMalformed, HugeStringArrayCount) {
  RawGguf r;
  r.header(0, 1).str("k").u32(9).u32(8).u64(kMax64 / 2).zeros(64);
  expect_invalid(r.bytes, "array of 9223372036854775807 string elements exceeds");
}

TEST(GgufMalformed, InvalidValueType) {
  RawGguf r;
  r.header(0, 1).str("k").u32(13).u32(0);
  expect_invalid(r.bytes, "key 'k': invalid value type 13");
}

TEST(GgufMalformed, InvalidArrayElementType) {
  RawGguf r;
  r.header(0, 1).str("k").u32(9).u32(99).u64(0);
  expect_invalid(r.bytes, "key 'k': invalid array element type 99");
}

TEST(GgufMalformed, ArraysNestedTooDeep) {
  RawGguf r;
  r.header(0, 1).str("deep").u32(9);
  for (size_t i = 0; i < kMaxArrayDepth + 1; ++i) r.u32(9).u64(1);  // array of array of ...
  r.u32(0).u64(0);
  expect_invalid(r.bytes, "key 'deep'[0][0][0][0][0][0][0][0]: arrays nested deeper than 8");
}

TEST(GgufMalformed, NestedArraysAtTheDepthLimitAreAccepted) {
  // Depth counts array levels: the key's array plus kMaxArrayDepth - 1 nested levels.
  RawGguf r;
  r.header(0, 1).str("deep").u32(9);
  for (size_t i = 0; i + 1 < kMaxArrayDepth; ++i) r.u32(9).u64(1);
  r.u32(0).u64(0);
  EXPECT_NO_THROW(GgufFile::from_bytes(r.bytes, "ok.gguf"));
}

TEST(GgufMalformed, DuplicateKey) {
  RawGguf r;
  r.header(0, 2).kv_u32("general.x", 1).kv_u32("general.x", 2);
  expect_invalid(r.bytes, "duplicate key 'general.x'");
}

TEST(GgufMalformed, EmptyKey) {
  RawGguf r;
  r.header(0, 1).kv_u32("", 1);
  expect_invalid(r.bytes, "metadata key #0: empty key");
}

TEST(GgufMalformed, InvalidBoolByte) {
  RawGguf r;
  r.header(0, 1).str("flag").u32(7).u8(2);
  expect_invalid(r.bytes, "key 'flag': invalid bool byte 2");
}

TEST(GgufMalformed, InvalidBoolByteInArray) {
  RawGguf r;
  r.header(0, 1).str("flags").u32(9).u32(7).u64(3).u8(0).u8(1).u8(255);
  expect_invalid(r.bytes, "key 'flags'[2]: invalid bool byte 255");
}

TEST(GgufMalformed, AlignmentNotPowerOfTwo) {
  RawGguf r;
  r.header(0, 1).kv_u32("general.alignment", 48);
  expect_invalid(r.bytes, "'general.alignment': 48 is not a power of two");
}

TEST(GgufMalformed, AlignmentZero) {
  RawGguf r;
  r.header(0, 1).kv_u32("general.alignment", 0);
  expect_invalid(r.bytes, "'general.alignment': 0 is not a power of two");
}

TEST(GgufMalformed, AlignmentWrongType) {
  RawGguf r;
  r.header(0, 1).str("general.alignment").u32(10).u64(32);
  expect_invalid(r.bytes, "'general.alignment': expected uint32, got uint64");
}

// Invalid UTF-8 sequences: overlong, surrogate, above U+10FFFF, stray continuation, cut short.
const std::vector<std::string> kBadUtf8 = {"a\xC0\xAF", "\xE0\x80\xAF", "x\xED\xA0\x80", "\xF4\x90\x80\x80",
                                           "\x80", "ab\xE2\x82", "\xF8\x88\x80\x80\x80", "\xFF"};

TEST(GgufMalformed, KeyNotUtf8) {
  for (const auto& bad : kBadUtf8) {
    RawGguf r;
    r.header(0, 1).kv_u32(bad, 1);
    expect_invalid(r.bytes, "metadata key #0: invalid UTF-8");
  }
}

TEST(GgufMalformed, StringValueNotUtf8) {
  for (const auto& bad : kBadUtf8) {
    RawGguf r;
    r.header(0, 1).kv_string("general.name", bad);
    expect_invalid(r.bytes, "key 'general.name': invalid UTF-8");
  }
}

TEST(GgufMalformed, StringArrayElementNotUtf8) {
  RawGguf r;
  r.header(0, 1).str("tokenizer.ggml.tokens").u32(9).u32(8).u64(3).str("ok").str("fine").str("\xED\xBF\xBF");
  expect_invalid(r.bytes, "key 'tokenizer.ggml.tokens'[2]: invalid UTF-8 at byte 0");
}

TEST(GgufMalformed, TensorNameNotUtf8) {
  RawGguf r;
  r.header(1, 0).tensor("w\xC1\x81", {8}, kF32, 0).pad(32).zeros(32);
  expect_invalid(r.bytes, "tensor #0 name: invalid UTF-8 at byte 1");
}

TEST(GgufMalformed, EmptyTensorName) {
  RawGguf r;
  r.header(1, 0).tensor("", {8}, kF32, 0).pad(32).zeros(32);
  expect_invalid(r.bytes, "tensor #0 name: empty name");
}

TEST(GgufMalformed, DuplicateTensorName) {
  RawGguf r;
  r.header(2, 0).tensor("w", {8}, kF32, 0).tensor("w", {8}, kF32, 32).pad(32).zeros(64);
  expect_invalid(r.bytes, "duplicate tensor 'w'");
}

TEST(GgufMalformed, TooManyDims) {
  RawGguf r;
  r.header(1, 0).tensor("w", {1, 1, 1, 1, 1}, kF32, 0).pad(32).zeros(32);
  expect_invalid(r.bytes, "tensor 'w': n_dims 5 outside 1..4");
}

TEST(GgufMalformed, ZeroDims) {
  RawGguf r;
  r.header(1, 0).tensor("w", {}, kF32, 0).pad(32).zeros(32);
  expect_invalid(r.bytes, "tensor 'w': n_dims 0 outside 1..4");
}

TEST(GgufMalformed, ZeroDimension) {
  RawGguf r;
  r.header(1, 0).tensor("w", {8, 0}, kF32, 0).pad(32).zeros(32);
  expect_invalid(r.bytes, "tensor 'w': dimension 1 is zero");
}

TEST(GgufMalformed, ElementCountOverflows) {
  RawGguf r;
  r.header(1, 0).tensor("w", {1ull << 32, 1ull << 32}, kF32, 0).pad(32).zeros(32);
  expect_invalid(r.bytes, "tensor 'w': element count overflows");
}

TEST(GgufMalformed, DimensionAboveInt64) {
  RawGguf r;
  r.header(1, 0).tensor("w", {kMax64}, 24, 0).pad(32).zeros(32);  // I8
  expect_invalid(r.bytes, "tensor 'w': element count overflows");
}

TEST(GgufMalformed, ByteSizeExceedsFile) {
  // Element count fits in int64 but the byte size of F32 data is far beyond the file.
  RawGguf r;
  r.header(1, 0).tensor("w", {1ull << 40}, kF32, 0).pad(32).zeros(32);
  expect_invalid(r.bytes, "tensor 'w': data size exceeds the file size");
}

TEST(GgufMalformed, UnknownTensorType) {
  for (const uint32_t id : {4u, 5u, 31u, 40u, 1000u}) {
    RawGguf r;
    r.header(1, 0).tensor("w", {32}, id, 0).pad(32).zeros(256);
    expect_invalid(r.bytes, "tensor 'w': unknown tensor type id " + std::to_string(id));
  }
}

TEST(GgufMalformed, RowNotMultipleOfBlockSize) {
  RawGguf r;
  r.header(1, 0).tensor("w", {16, 2}, kQ4_0, 0).pad(32).zeros(64);
  expect_invalid(r.bytes, "tensor 'w': row of 16 elements is not a multiple of the Q4_0 block size 32");
}

TEST(GgufMalformed, TensorDataPastEndOfFile) {
  std::vector<uint8_t> b = one_tensor(8);
  b.pop_back();
  expect_invalid(b, "tensor 't': data at offset 0 + 32 bytes");
}

TEST(GgufMalformed, TensorOffsetHuge) {
  RawGguf r;
  r.header(1, 0).tensor("w", {8}, kF32, kMax64 - 31).pad(32).zeros(32);
  expect_invalid(r.bytes, "is outside the file");
}

TEST(GgufMalformed, TensorOffsetMisaligned) {
  RawGguf r;
  r.header(1, 0).tensor("w", {8}, kF32, 4).pad(32).zeros(64);
  expect_invalid(r.bytes, "tensor 'w': data offset 4 is not a multiple of the alignment 32");
}

TEST(GgufMalformed, TensorOffsetMisalignedForCustomAlignment) {
  RawGguf r;
  r.header(1, 1).kv_u32("general.alignment", 64).tensor("w", {8}, kF32, 32).pad(64).zeros(128);
  expect_invalid(r.bytes, "not a multiple of the alignment 64");
}

TEST(GgufMalformed, OverlappingTensors) {
  RawGguf r;
  r.header(2, 0).tensor("a", {16}, kF32, 0).tensor("b", {8}, kF32, 32).pad(32).zeros(128);
  expect_invalid(r.bytes, "tensor 'b': data overlaps tensor 'a'");
}

TEST(GgufMalformed, OverlapDetectedWhateverTheFileOrder) {
  RawGguf r;
  r.header(2, 0).tensor("b", {8}, kF32, 32).tensor("a", {16}, kF32, 0).pad(32).zeros(128);
  expect_invalid(r.bytes, "tensor 'b': data overlaps tensor 'a'");
}

TEST(GgufMalformed, LongNamesAreCutInMessages) {
  const std::string key(5000, 'k');
  RawGguf r;
  r.header(0, 2).kv_u32(key, 1).kv_u32(key, 2);
  try {
    GgufFile::from_bytes(r.bytes, "bad.gguf");
    ADD_FAILURE() << "duplicate accepted";
  } catch (const Error& e) {
    EXPECT_LT(std::string(e.what()).size(), 200u);
  }
}

TEST(GgufMalformed, ControlCharactersInNamesAreEscapedInMessages) {
  RawGguf r;
  r.header(0, 2).kv_u32("a\nb", 1).kv_u32("a\nb", 2);
  expect_invalid(r.bytes, "duplicate key 'a\\x0ab'");  // and expect_invalid checks: no newline
}

TEST(GgufMalformed, OpenNamesThePathOfATruncatedRealModel) {
  const std::string src = testing_paths::stories260k_gguf();
  std::ifstream in(src, std::ios::binary);
  std::vector<char> head(100000);
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  ASSERT_EQ(in.gcount(), static_cast<std::streamsize>(head.size()));
  const std::string path =
      (std::filesystem::temp_directory_path() / ("alspec_gguf_trunc_" + std::to_string(::getpid()) + ".gguf")).string();
  {
    std::ofstream out(path, std::ios::binary);
    out.write(head.data(), static_cast<std::streamsize>(head.size()));
  }
  try {
    GgufFile::open(path);
    ADD_FAILURE() << "truncated model accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidModel);
    EXPECT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0u) << e.what();
    // The first tensor is already larger than the 100000 bytes that remain.
    EXPECT_NE(std::string(e.what()).find("tensor 'token_embd.weight': data size exceeds the file size 100000"),
              std::string::npos)
        << e.what();
  }
  std::remove(path.c_str());
}

// A deterministic miniature of the fuzzer that runs with every (sanitized) test build: each
// byte of a small valid model, replaced by a few values, must either parse or raise Error.
TEST(GgufMalformed, SingleByteCorruptionsNeverCrash) {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", 1);
  w.set_string_array("tokenizer.ggml.tokens", {"<s>", "\xE2\x96\x81" "a"});
  w.set_array("n", ValueType::kArray, {Value::f32_array(std::vector<float>{1})});
  w.set_bool("b", true);
  const std::vector<uint8_t> d(34, 1);
  w.add_tensor("q", DType::Q8_0, {32}, d);
  w.add_tensor("f", DType::F32, {2, 2}, std::vector<uint8_t>(16, 2));
  const std::vector<uint8_t> good = w.to_bytes();
  size_t accepted = 0, rejected = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    for (const uint8_t x : {uint8_t{0x00}, uint8_t{0x01}, uint8_t{0x7f}, uint8_t{0x80}, uint8_t{0xff}}) {
      if (good[i] == x) continue;
      std::vector<uint8_t> bad = good;
      bad[i] = x;
      try {
        const auto f = GgufFile::from_bytes(std::move(bad), "mut.gguf");
        for (const auto& t : f->tensors()) ASSERT_LE(f->data_offset() + t.offset + t.nbytes, f->file_size());
        ++accepted;
      } catch (const Error& e) {
        ASSERT_EQ(e.kind(), ErrorKind::kInvalidModel) << e.what();
        ++rejected;
      }
    }
  }
  EXPECT_GT(rejected, 0u);
  EXPECT_GT(accepted, 0u);  // e.g. changes inside tensor data
}

TEST(GgufMalformed, OpenReportsMissingFileAsIoError) {
  try {
    GgufFile::open("/nonexistent/dir/model.gguf");
    ADD_FAILURE() << "opened a missing file";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/model.gguf"), std::string::npos);
  }
}

}  // namespace
}  // namespace alspec::gguf
