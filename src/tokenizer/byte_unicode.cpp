#include "tokenizer/byte_unicode.h"

#include "tokenizer/utf8_chars.h"

namespace alspec::tokenizer_detail {

const ByteUnicode& ByteUnicode::get() {
  static const ByteUnicode instance;
  return instance;
}

ByteUnicode::ByteUnicode() {
  cp_to_byte_.fill(-1);
  // Printable Latin-1 bytes stand for themselves; the rest (controls, space, 0x7F-0xA0, soft
  // hyphen) are assigned 256, 257, ... in byte order.
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    const uint32_t cp = printable ? b : next++;
    utf8_append(byte_to_text_[b], cp);
    cp_to_byte_[cp] = static_cast<int16_t>(b);
  }
}

std::string ByteUnicode::encode(std::string_view bytes) const {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += byte_to_text_[static_cast<uint8_t>(c)];
  return out;
}

std::string ByteUnicode::decode(std::string_view text) const {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const size_t len = utf8_char_len(text, pos);
    const uint32_t cp = utf8_decode(text, pos, len);
    if (cp < cp_to_byte_.size() && cp_to_byte_[cp] >= 0) {
      out += static_cast<char>(cp_to_byte_[cp]);
    } else {
      out.append(text.substr(pos, len));
    }
    pos += len;
  }
  return out;
}

}  // namespace alspec::tokenizer_detail
