#include "alspec/gguf/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace alspec::gguf {
namespace {

TEST(Utf8, AcceptsWellFormed) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii \x01\x7f"));
  EXPECT_TRUE(is_valid_utf8(std::string("nul\0inside", 10)));
  EXPECT_TRUE(is_valid_utf8("\xC2\x80"));              // U+0080, smallest 2-byte
  EXPECT_TRUE(is_valid_utf8("\xDF\xBF"));              // U+07FF
  EXPECT_TRUE(is_valid_utf8("\xE0\xA0\x80"));          // U+0800, smallest 3-byte
  EXPECT_TRUE(is_valid_utf8("\xED\x9F\xBF"));          // U+D7FF, just below surrogates
  EXPECT_TRUE(is_valid_utf8("\xEE\x80\x80"));          // U+E000, just above surrogates
  EXPECT_TRUE(is_valid_utf8("\xEF\xBF\xBF"));          // U+FFFF
  EXPECT_TRUE(is_valid_utf8("\xF0\x90\x80\x80"));      // U+10000, smallest 4-byte
  EXPECT_TRUE(is_valid_utf8("\xF4\x8F\xBF\xBF"));      // U+10FFFF, largest
  EXPECT_TRUE(is_valid_utf8("\xE2\x96\x81Hello"));     // SentencePiece space marker
}

TEST(Utf8, RejectsIllFormedAtTheRightOffset) {
  EXPECT_EQ(first_invalid_utf8("ab\x80"), 2u);             // stray continuation
  EXPECT_EQ(first_invalid_utf8("\xC0\x80"), 0u);           // overlong NUL
  EXPECT_EQ(first_invalid_utf8("a\xC1\xBF"), 1u);          // overlong 2-byte
  EXPECT_EQ(first_invalid_utf8("\xE0\x9F\xBF"), 0u);       // overlong 3-byte
  EXPECT_EQ(first_invalid_utf8("\xF0\x8F\xBF\xBF"), 0u);   // overlong 4-byte
  EXPECT_EQ(first_invalid_utf8("x\xED\xA0\x80"), 1u);      // high surrogate U+D800
  EXPECT_EQ(first_invalid_utf8("\xED\xBF\xBF"), 0u);       // low surrogate U+DFFF
  EXPECT_EQ(first_invalid_utf8("\xF4\x90\x80\x80"), 0u);   // U+110000
  EXPECT_EQ(first_invalid_utf8("\xF5\x80\x80\x80"), 0u);   // lead byte F5
  EXPECT_EQ(first_invalid_utf8("\xFF"), 0u);
  EXPECT_EQ(first_invalid_utf8("ok\xE2\x82"), 2u);         // cut short at end
  EXPECT_EQ(first_invalid_utf8("\xE2\x28\xA1"), 0u);       // bad continuation
  EXPECT_EQ(first_invalid_utf8("\xF0\x90\x80\x41"), 0u);   // bad last continuation
}

// Exhaustive over all code points: encoding then validating must agree with the definition.
TEST(Utf8, AllCodePoints) {
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xE0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
    ASSERT_EQ(is_valid_utf8(s), !surrogate) << "U+" << std::hex << cp;
  }
}

}  // namespace
}  // namespace alspec::gguf
