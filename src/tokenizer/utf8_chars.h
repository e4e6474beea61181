// Minimal UTF-8 stepping for tokenisation. Invalid input must never be lost or read past the
// end, so a bad lead byte or an incomplete sequence counts as a one-byte character.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace alspec::tokenizer_detail {

inline size_t utf8_char_len(std::string_view s, size_t pos) {
  const auto b = static_cast<uint8_t>(s[pos]);
  size_t n = 1;
  if (b >= 0xF0 && b <= 0xF7) {
    n = 4;
  } else if (b >= 0xE0) {
    n = b <= 0xEF ? 3 : 1;
  } else if (b >= 0xC0) {
    n = 2;
  }
  if (n > s.size() - pos) return 1;
  // A lead byte without its continuation bytes stands alone, so that it cannot swallow the
  // start of the next (valid) character.
  for (size_t i = 1; i < n; ++i) {
    if ((static_cast<uint8_t>(s[pos + i]) & 0xC0) != 0x80) return 1;
  }
  return n;
}

// Decodes the character at pos (length from utf8_char_len); invalid bytes give 0xFFFFFFFF.
inline uint32_t utf8_decode(std::string_view s, size_t pos, size_t len) {
  const auto b0 = static_cast<uint8_t>(s[pos]);
  if (len == 1) return b0 < 0x80 ? b0 : 0xFFFFFFFFu;
  uint32_t cp = b0 & (0x7F >> len);
  for (size_t i = 1; i < len; ++i) {
    const auto b = static_cast<uint8_t>(s[pos + i]);
    if ((b & 0xC0) != 0x80) return 0xFFFFFFFFu;
    cp = (cp << 6) | (b & 0x3F);
  }
  return cp;
}

inline void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace alspec::tokenizer_detail
